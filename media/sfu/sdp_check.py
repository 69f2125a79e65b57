"""Reject SDP that aiortc would choke on or silently mis-apply, before it touches a peer connection.

Every SDP the SFU receives comes from a client (a page's browser via our server, or any Calls client): it is bounded
here in one linear pass over its lines *before* aiortc parses it. aiortc's own work is not linear in what a client
controls (an offer with duplicated codec lines makes it echo n² `a=rtcp-fb` lines, and one parse per m-line elsewhere
made that cubic), and everything runs on the one event loop every room shares.
"""

from __future__ import annotations

from aiortc.sdp import SessionDescription

# Far above what a browser sends (Chromium: ~2.5 KB and ~40 payload types per video section; our pages publish at most
# 16 cameras), far below what stalls the loop (measured: 100 duplicated rtpmap lines blocked it for 77 s).
MAX_SDP_BYTES = 128 * 1024
MAX_LINE_BYTES = 4096
MAX_MEDIA_SECTIONS = 64
MAX_PAYLOAD_TYPES_PER_SECTION = 64
MAX_LINES_PER_SECTION = 512
MAX_HEADER_EXTENSIONS_PER_SECTION = 32


def check_bounds(sdp: str) -> str | None:
    """The size and shape limits of a client's SDP, checked without parsing it; a problem description or None."""
    if len(sdp) > MAX_SDP_BYTES:
        return f'SDP is too large ({len(sdp)} bytes; at most {MAX_SDP_BYTES})'
    sections = 0
    lines_in_section = 0
    payload_types: set[str] = set()
    extensions: set[str] = set()
    mids: set[str] = set()
    for line in sdp.split('\n'):
        if len(line) > MAX_LINE_BYTES:
            return f'SDP line too long ({len(line)} bytes; at most {MAX_LINE_BYTES})'
        if line.startswith('m='):
            sections += 1
            if sections > MAX_MEDIA_SECTIONS:
                return f'SDP has too many media sections (at most {MAX_MEDIA_SECTIONS})'
            lines_in_section = 0
            payload_types.clear()
            extensions.clear()
            formats = line.split()[3:]
            if len(formats) > MAX_PAYLOAD_TYPES_PER_SECTION:
                return f'media section {sections} lists too many formats (at most {MAX_PAYLOAD_TYPES_PER_SECTION})'
            if len(set(formats)) != len(formats):
                return f'media section {sections} lists a payload type twice'
            continue
        lines_in_section += 1
        if lines_in_section > MAX_LINES_PER_SECTION:
            return f'media section {sections} has too many lines (at most {MAX_LINES_PER_SECTION})'
        if line.startswith('a=rtpmap:'):
            pt = line[9:].split(' ', 1)[0]
            if pt in payload_types:
                return f'media section {sections} maps payload type {pt} twice'
            payload_types.add(pt)
        elif line.startswith('a=extmap:'):
            ext_id = line[9:].split(' ', 1)[0].split('/', 1)[0]
            if ext_id in extensions:
                return f'media section {sections} maps header extension id {ext_id} twice'
            extensions.add(ext_id)
            if len(extensions) > MAX_HEADER_EXTENSIONS_PER_SECTION:
                return f'media section {sections} has too many header extensions'
        elif line.startswith('a=mid:'):
            mid = line[6:].strip()
            if mid in mids:
                return f'mid {mid!r} is used by two media sections'
            mids.add(mid)
    return None


def check_sdp(sdp: str, local_offer: str | None) -> str | None:
    """Return a problem description, or None if ``sdp`` looks applicable.

    :param local_offer: for an answer, the SFU offer it answers (its mids must match, in order).
    """
    if not sdp.startswith('v=0'):
        return 'Unable to parse SDP: it must start with v=0'
    if not sdp.endswith('\n'):
        return 'Unable to parse SDP: missing termination at the end (CRLF)'
    problem = check_bounds(sdp)
    if problem is not None:
        return problem
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        return f'Unable to parse SDP: {exc or type(exc).__name__}'
    if not parsed.media:
        return 'SDP has no media sections'
    for media in parsed.media:
        if media.kind in ('audio', 'video') and (
            media.ice is None or not media.ice.usernameFragment or media.dtls is None
        ):
            if media.port != 0:
                return f'media section {media.rtp.muxId!r} lacks ICE credentials or a DTLS fingerprint'
    if local_offer is not None:
        offered = [m.rtp.muxId for m in SessionDescription.parse(local_offer).media]
        answered = [m.rtp.muxId for m in parsed.media]
        if offered != answered:
            return f'answer media sections {answered} do not match the offer {offered}'
    return None
