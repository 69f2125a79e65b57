"""Stable numbering (issue 12 item 1), replaying Chromium offers captured from partytracks.

A session whose first offer came from the client (push, then pull on the same session: partytracks' one session per
tab) gets SFU offers that keep, for every negotiated m-line, the payload types and header extension ids the client
chose; a new m-line takes the BUNDLE group's numbering. aiortc's own ``createOffer`` renumbers both to its defaults,
which Chromium refuses ("RTP extension ID reassignment not supported").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiortc import sdp

from media.sfu.forwarder import Counters
from media.sfu.session import PeerSession

FIXTURES = Path(__file__).parent / 'fixtures'


def load(name: str) -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / name).read_text())['exchanges'])


def numbering(text: str) -> dict[str, tuple[dict[int, str], dict[int, str]]]:
    """Per mid: payload type -> codec name (with apt for RTX), extension id -> URI."""
    out = {}
    for media in sdp.SessionDescription.parse(text).media:
        codecs = {
            c.payloadType: c.mimeType.lower() + (f'/apt={c.parameters["apt"]}' if 'apt' in c.parameters else '')
            for c in media.rtp.codecs
            if c.payloadType is not None
        }
        extensions = {e.id: e.uri for e in media.rtp.headerExtensions}
        out[media.rtp.muxId] = (codecs, extensions)
    return out


@pytest.fixture
async def peer() -> Any:
    session = PeerSession('s', ice_servers=[], counters=Counters(), on_state=lambda *_: None, now=lambda: 0.0)
    yield session
    await session.close()


async def test_a_pull_on_a_pushing_session_keeps_chromiums_numbering(peer: PeerSession) -> None:
    exchanges = load('chromium_push_mic_camera.json')
    for exchange in exchanges:
        await peer.answer(exchange['sdp'])
    client = numbering(exchanges[-1]['sdp'])
    camera = peer.publish('1')
    microphone = peer.publish('0')
    await peer.subscribe(camera)
    await peer.subscribe(microphone)
    offer = numbering(await peer.offer())
    peer.assign_mids()

    for mid in ('0', '1'):  # negotiated: every payload type and extension id as the client numbered it
        codecs, extensions = offer[mid]
        assert codecs, mid
        for pt, name in codecs.items():
            assert client[mid][0].get(pt) == name, (mid, pt, name, client[mid][0].get(pt))
        for ext_id, uri in extensions.items():
            assert client[mid][1].get(ext_id) == uri, (mid, ext_id, uri)
    # new m-lines: the group's numbering (VP8 and its RTX, Opus, sdes:mid, abs-send-time, audio level)
    bundle = {**client['0'][0], **client['1'][0]}
    group_ext = {**client['0'][1], **client['1'][1]}
    new = [mid for mid in offer if mid not in ('0', '1')]
    assert len(new) == 2
    for mid in new:
        codecs, extensions = offer[mid]
        for pt, name in codecs.items():
            assert bundle.get(pt) == name, (mid, pt, name, bundle.get(pt))
        for ext_id, uri in extensions.items():
            assert group_ext.get(ext_id) == uri, (mid, ext_id, uri)
        assert 'urn:ietf:params:rtp-hdrext:sdes:mid' in extensions.values()


async def test_a_second_sfu_offer_keeps_the_first_ones_numbering(peer: PeerSession) -> None:
    for exchange in load('chromium_push_mic_camera.json'):
        await peer.answer(exchange['sdp'])
    await peer.subscribe(peer.publish('1'))
    first = numbering(await peer.offer())
    peer.assign_mids()
    await peer.subscribe(peer.publish('0'))
    second = numbering(await peer.offer())
    for mid, (codecs, extensions) in first.items():
        assert second[mid] == (codecs, extensions), mid
