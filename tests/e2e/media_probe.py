"""Read from a page whether received media really flows (inbound-rtp stats of the page's MediaClient)."""

from __future__ import annotations

import time
from typing import Any

STATS_JS = '() => globalThis.orangeMedia ? globalThis.orangeMedia.stats() : null'


def inbound(page: Any) -> dict[str, dict[str, float]]:
    stats = page.evaluate(STATS_JS)
    return dict((stats or {}).get('inbound', {}))


def wait_media_flowing(page: Any, *, video: int = 0, audio: int = 0, timeout: float = 10.0) -> dict[str, Any]:
    """Wait until `video` received video tracks decode new frames and `audio` audio tracks gain energy."""
    deadline = time.monotonic() + timeout
    before = inbound(page)
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = inbound(page)
        decoding = [
            k
            for k, s in now.items()
            if s['kind'] == 'video' and s['framesDecoded'] > before.get(k, {}).get('framesDecoded', 0)
        ]
        hearing = [
            k
            for k, s in now.items()
            if s['kind'] == 'audio' and s['totalAudioEnergy'] > before.get(k, {}).get('totalAudioEnergy', 0)
        ]
        last = {'decoding': decoding, 'hearing': hearing, 'stats': now}
        if len(decoding) >= video and len(hearing) >= audio:
            return last
        before = now
    raise AssertionError(f'media not flowing after {timeout} s (want {video} video, {audio} audio): {last}')
