"""Rejected (port 0) media sections: aiortc ignores them, browsers insist on them.

When a browser stops a transceiver, its next offer carries that m-section with port 0 and leaves its mid out of the
BUNDLE group. aiortc answers it like any other section (port 9, still bundled), which Chromium refuses, and its
later offers would revive the section, which JSEP forbids (a rejected mid is never reused). The SFU therefore
remembers every rejected mid of a session and writes it as rejected into every answer and offer it sends.

The SFU also rejects, in its answer, an m-line whose track the client closed (``tracks/close``) but still offers as
sending or receiving: partytracks 0.0.54 stops only the first transceiver of a batched close, so without this the
browser would keep encoding every other closed camera and grow its SDP by one full section per close, for ever.
Rejected, the browser stops that transceiver and recycles its m-line for the next one (``release_recycled_mlines``).
"""

from __future__ import annotations

import re

_MID = re.compile(r'^a=mid:(\S+)', re.MULTILINE)
_INACTIVE = re.compile(r'^a=inactive\s*$', re.MULTILINE)


def _sections(sdp: str) -> tuple[str, list[str]]:
    """The session part and the media sections of `sdp` (each starting with "m=")."""
    head, *media = re.split(r'(?m)^(?=m=)', sdp)
    return head, media


def rejected_mids(sdp: str) -> set[str]:
    """The mids of the media sections that `sdp` rejects (port 0)."""
    found: set[str] = set()
    for section in _sections(sdp)[1]:
        mid = _MID.search(section)
        if mid and section.split(' ', 2)[1] == '0':
            found.add(mid.group(1))
    return found


def live_mids(sdp: str) -> set[str]:
    """The mids of the media sections that `sdp` neither rejects (port 0) nor marks ``inactive``."""
    found: set[str] = set()
    for section in _sections(sdp)[1]:
        mid = _MID.search(section)
        if mid and section.split(' ', 2)[1] != '0' and not _INACTIVE.search(section):
            found.add(mid.group(1))
    return found


def mark_rejected(sdp: str, mids: set[str]) -> str:
    """Return `sdp` with the sections of `mids` rejected (port 0) and left out of every BUNDLE group."""
    if not mids:
        return sdp
    head, media = _sections(sdp)
    out: list[str] = []
    for section in media:
        mid = _MID.search(section)
        if mid and mid.group(1) in mids:
            section = re.sub(r'^(m=\S+) \d+ ', r'\1 0 ', section, count=1)
        out.append(section)

    def regroup(match: re.Match[str]) -> str:
        kept = [mid for mid in match.group(1).split() if mid not in mids]
        return 'a=group:BUNDLE ' + ' '.join(kept) if kept else ''

    head = re.sub(r'(?m)^a=group:BUNDLE ?([^\r\n]*)', regroup, head)
    head = re.sub(r'(?m)^\r?\n', '', head)  # a group left empty is dropped with its line
    return head + ''.join(out)
