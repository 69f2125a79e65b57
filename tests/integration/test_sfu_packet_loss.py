"""SFU_SIMULATE_LOSS through real peers: the subscriber's own stats count the dropped packets as lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from aiortc.contrib.media import MediaBlackhole

from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU
from media.sfu.session import Subscription

from .conftest import APP_ID, APP_SECRET, make_config
from .sfu_peers import new_subscriber, publish, pull, track_for

RECEIVE_S = 2.5


@pytest.fixture(params=[0.0, 0.2], ids=['no-loss', 'loss-0.2'])
async def lossy_sfu(request: pytest.FixtureRequest) -> AsyncIterator[EmbeddedSFU]:
    server = EmbeddedSFU(make_config(simulate_loss=request.param))
    yield server
    await server.close()


async def test_subscriber_counts_the_simulated_loss(lossy_sfu: EmbeddedSFU, monkeypatch: pytest.MonkeyPatch) -> None:
    fraction = lossy_sfu.config.simulate_loss
    reported: list[float] = []  # the subscriber's receiver reports, as the SFU reads them (priorityOrdering)
    original = Subscription.on_loss
    monkeypatch.setattr(Subscription, 'on_loss', lambda self, f: (reported.append(f), original(self, f)))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=lossy_sfu.asgi_app), base_url='http://sfu')
    client = CallsClient(http, APP_ID, APP_SECRET)
    publisher = await publish(client)
    sub = await new_subscriber(client)
    response = await pull(client, sub, publisher.session_id, ['a', 'v'])
    sink = MediaBlackhole()
    for track in response.tracks or []:
        sink.addTrack(await track_for(sub, track.mid or ''))
    await sink.start()
    await asyncio.sleep(RECEIVE_S)
    for _ in range(40):  # a receiver report comes every 0.5-1.5 s; on a starved machine give it up to 10 s more
        if reported and (fraction == 0 or max(reported) > 0.05):
            break
        await asyncio.sleep(0.25)

    received = lost = 0
    for transceiver in sub.pc.getTransceivers():
        for stats in (await transceiver.receiver.getStats()).values():
            if stats.type == 'inbound-rtp':
                received += stats.packetsReceived
                lost += stats.packetsLost
    drops = lossy_sfu.stats()['simulated_drops']
    await sink.stop()
    await publisher.pc.close()
    await sub.pc.close()
    await http.aclose()

    assert received > 100
    assert reported, 'no receiver report reached the SFU'
    if fraction == 0:
        assert drops == 0 and lost == 0
        assert max(reported) == 0
        return
    assert max(reported) > 0.05
    # Dropped packets are never retransmitted (a NACK finds nothing to resend), so the subscriber counts each one
    # lost, except the few dropped after its last received packet (or before its first).
    assert 0.9 * drops - 3 <= lost <= drops
    assert lost / (lost + received) == pytest.approx(fraction, abs=0.08)
