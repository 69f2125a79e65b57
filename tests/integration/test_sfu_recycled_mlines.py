"""A stopped m-line that the client recycles under a new mid (issue 12 item 2), replaying Chromium offers captured
from partytracks: a hospital station pushes three cameras, removes one (``transceiver.stop()``, negotiated close)
and adds another, which Chromium puts on the stopped m-line under a new mid.

aiortc alone gives the new mid to the old, stopped transceiver at that m-line index, so the SFU tapped a receiver
that never gets media: a 200, then ``empty_track_error`` for every subscriber.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiortc import sdp

from media.sfu.forwarder import Counters
from media.sfu.session import PeerSession, SdpError

from .test_sfu_numbering import load


@pytest.fixture
async def peer() -> Any:
    session = PeerSession('s', ice_servers=[], counters=Counters(), on_state=lambda *_: None, now=lambda: 0.0)
    yield session
    await session.close()


def sections(text: str) -> list[tuple[str, int, str | None]]:
    return [(m.rtp.muxId, m.port, m.direction) for m in sdp.SessionDescription.parse(text).media]


async def test_a_recycled_mline_gets_its_own_transceiver_under_its_new_mid(peer: PeerSession) -> None:
    pushes = load('chromium_recycled_mline.json')
    assert [e['endpoint'] for e in pushes] == ['tracks/new'] * 3 + ['tracks/close', 'tracks/new']
    for exchange in pushes[:3]:
        await peer.answer(exchange['sdp'])
        peer.publish(exchange['tracks'][0]['mid'])
    assert peer.pc is not None
    old = peer._transceiver('1')
    assert old is not None

    await peer.answer(pushes[3]['sdp'])  # camera mid 1 stopped: port 0
    peer.stop_publication('1')
    answer, mids = await peer.answer(pushes[4]['sdp'])  # the new camera on m-line 1, mid 3

    assert sections(answer)[1][:2] == ('3', sections(answer)[1][1]) and sections(answer)[1][1] != 0
    assert sections(answer)[1][2] == 'recvonly'
    assert '3' in mids
    new = peer._transceiver('3')
    assert new is not None and new is not old and not new.stopped
    assert [t.mid for t in peer.pc.getTransceivers()].count('3') == 1
    assert new.receiver is not old.receiver
    assert peer.offered_kind('3') == 'video'
    forwarder = peer.publish('3')
    assert peer.publications['3'] is forwarder and not forwarder.closed

    # a later SFU offer (a pull on this session) shows the slot under its new mid, at its index
    await peer.subscribe(forwarder)
    offer = sections(await peer.offer())
    assert [mid for mid, _, _ in offer[:3]] == ['0', '3', '2']
    assert '1' not in [mid for mid, _, _ in offer]


async def test_moving_an_mline_that_was_not_rejected_is_refused(peer: PeerSession) -> None:
    pushes = load('chromium_recycled_mline.json')
    for exchange in pushes[:3]:
        await peer.answer(exchange['sdp'])
    moved = pushes[2]['sdp'].replace('a=mid:1\r\n', 'a=mid:7\r\n').replace('BUNDLE 0 1 2', 'BUNDLE 0 7 2')
    with pytest.raises(SdpError, match='without being rejected'):
        await peer.answer(moved)
