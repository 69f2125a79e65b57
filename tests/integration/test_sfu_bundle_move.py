"""Closing the m-line that carries the BUNDLE tag (issue 12 item 5), replaying Chromium offers captured from
partytracks: mid 0 (a microphone) is stopped and the group moves to mid 1 on a new transport. The SFU answers with mid
0 rejected and the group on mid 1, and restarts its DTLS handshake for the new transport (media resumes: see
tests/e2e/test_partytracks.py::test_closing_mid_0_keeps_media_flowing); an ordinary offer restarts nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from media.sfu import aiortc_glue
from media.sfu.forwarder import Counters
from media.sfu.sdp_rejected import rejected_mids
from media.sfu.session import PeerSession

from .test_sfu_numbering import load


@pytest.fixture
async def peer() -> Any:
    session = PeerSession('s', ice_servers=[], counters=Counters(), on_state=lambda *_: None, now=lambda: 0.0)
    yield session
    await session.close()


async def test_a_bundle_tag_move_restarts_the_dtls_handshake(peer: PeerSession, monkeypatch: Any) -> None:
    restarts: list[Any] = []

    async def restart(pc: Any) -> bool:
        restarts.append(pc)
        return True

    monkeypatch.setattr(aiortc_glue, 'restart_dtls', restart)
    exchanges = load('chromium_bundle_tag_move.json')
    assert [e['endpoint'] for e in exchanges] == ['tracks/new', 'tracks/new', 'tracks/close']
    for exchange in exchanges[:2]:
        await peer.answer(exchange['sdp'])
    assert restarts == []  # pushes on the same transport restart nothing
    close = exchanges[2]['sdp']
    assert re.search(r'(?m)^a=group:BUNDLE 1\b', close) and rejected_mids(close) == {'0'}
    answer, _ = await peer.answer(close)
    assert restarts == [peer.pc]
    assert rejected_mids(answer) == {'0'}
    assert re.search(r'(?m)^a=group:BUNDLE 1\b', answer)
    # a later offer keeps the group where it is now: no second restart
    await peer.answer(close)
    assert len(restarts) == 1
