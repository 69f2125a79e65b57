"""Forwarding behaviour of the embedded SFU: no transcoding, keyframe cache, PLI, teardown, isolation, GC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import httpx
import pytest
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError

from media.calls_api import INVALID_SESSION_DESCRIPTION, InvalidRequestError, SessionDescription, TracksRequest
from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU, aiortc_glue
from media.sfu import forwarder as forwarder_module

from .conftest import APP_ID, APP_SECRET, make_config
from .sfu_peers import first_frame, new_subscriber, publish, pull, track_for


@pytest.fixture
def client(sfu: EmbeddedSFU) -> CallsClient:  # in-process only: these tests are about media, not transports
    return CallsClient(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu'), APP_ID, APP_SECRET
    )


async def test_no_transcoding_payloads_byte_identical(
    sfu: EmbeddedSFU, client: CallsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the test's own peers ever create codecs, and the subscriber gets the publisher's exact VP8 bytes."""
    encoders: list[str] = []
    decoders: list[str] = []
    encoded: set[bytes] = set()
    real_get_encoder, real_get_decoder = aiortc.rtcrtpsender.get_encoder, aiortc.rtcrtpreceiver.get_decoder
    real_encode = Vp8Encoder.encode

    def spy_encoder(codec: Any) -> Any:
        encoders.append(codec.mimeType)
        return real_get_encoder(codec)

    def spy_decoder(codec: Any) -> Any:
        decoders.append(codec.mimeType)
        return real_get_decoder(codec)

    def spy_encode(self: Vp8Encoder, frame: Any, force_keyframe: bool = False) -> Any:
        payloads, timestamp = real_encode(self, frame, force_keyframe)
        encoded.update(payloads)
        return payloads, timestamp

    monkeypatch.setattr(aiortc.rtcrtpsender, 'get_encoder', spy_encoder)
    monkeypatch.setattr(aiortc.rtcrtpreceiver, 'get_decoder', spy_decoder)
    monkeypatch.setattr(Vp8Encoder, 'encode', spy_encode)

    publisher = await publish(client)
    sub = await new_subscriber(client)
    response = await pull(client, sub, publisher.session_id, ['v', 'a'])
    video_mid, audio_mid = (t.mid or '' for t in response.tracks or [])
    received: list[bytes] = []
    receiver: Any = next(t.receiver for t in sub.pc.getTransceivers() if t.mid == video_mid)
    original = receiver._handle_rtp_packet

    async def record(packet: Any, arrival_time_ms: int) -> None:
        received.append(packet.payload)
        await original(packet, arrival_time_ms=arrival_time_ms)

    receiver._handle_rtp_packet = record
    video = await track_for(sub, video_mid)
    for _ in range(20):
        await first_frame(video)
    await first_frame(await track_for(sub, audio_mid))

    assert sorted(encoders) == ['audio/opus', 'video/VP8']  # the publisher's, none on the SFU's senders
    assert sorted(decoders) == ['audio/opus', 'video/VP8']  # the subscriber's, none on the SFU's receivers
    assert len(received) >= 20 and all(p in encoded for p in received)
    assert sfu.stats()['forwarded_packets'] >= len(received)
    await publisher.pc.close()
    await sub.pc.close()


async def test_late_joiner_gets_cached_keyframe_without_pli(
    sfu: EmbeddedSFU, client: CallsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache bound (~1 s after the keyframe) is unit-tested; here it is longer so a slow join cannot outlive it.
    monkeypatch.setattr(forwarder_module, 'KEYFRAME_CACHE_SPAN_S', 5.0)
    publisher = await publish(client)
    await asyncio.sleep(1.0)  # the publisher's only keyframe is long gone; the SFU cached it
    requests_before = sfu.stats()['keyframe_requests']
    sub = await new_subscriber(client)
    started = time.monotonic()
    response = await pull(client, sub, publisher.session_id, ['v'])
    await first_frame(await track_for(sub, (response.tracks or [])[0].mid or ''))
    elapsed = time.monotonic() - started
    assert sfu.stats()['keyframe_cache_replays'] >= 1
    assert sfu.stats()['keyframe_requests'] == requests_before  # served from the cache, no PLI needed
    assert elapsed < 1.0
    await publisher.pc.close()
    await sub.pc.close()


async def test_joiner_after_the_cache_expired_asks_for_a_keyframe(sfu: EmbeddedSFU, client: CallsClient) -> None:
    publisher = await publish(client)
    await asyncio.sleep(forwarder_module.KEYFRAME_CACHE_SPAN_S + 0.3)  # only inter frames since the keyframe
    assert sfu.stats()['keyframe_requests'] == 0  # nobody watching: the cache expired, nobody was asked
    sub = await new_subscriber(client)
    response = await pull(client, sub, publisher.session_id, ['v'])
    await first_frame(await track_for(sub, (response.tracks or [])[0].mid or ''))
    assert sfu.stats()['keyframe_requests'] >= 1
    await publisher.pc.close()
    await sub.pc.close()


async def test_subscriber_pli_reaches_publisher_rate_limited(client: CallsClient) -> None:
    publisher = await publish(client)
    calls: list[float] = []
    sender: Any = publisher.transceivers['v'].sender
    original = sender._send_keyframe

    def spy() -> None:
        calls.append(time.monotonic())
        original()

    sender._send_keyframe = spy
    sub = await new_subscriber(client)
    response = await pull(client, sub, publisher.session_id, ['v'])
    mid = (response.tracks or [])[0].mid
    await first_frame(await track_for(sub, mid or ''))
    interval = forwarder_module.KEYFRAME_REQUEST_INTERVAL_S
    await asyncio.sleep(interval + 0.1)  # past any request the join made
    calls.clear()
    receiver = next(t.receiver for t in sub.pc.getTransceivers() if t.mid == mid)
    ssrc = receiver.getSynchronizationSources()[0].source

    async def calls_reach(n: int) -> None:
        while len(calls) < n:
            await asyncio.sleep(0.02)

    for _ in range(5):
        await aiortc_glue.send_pli(receiver, ssrc)
    await asyncio.wait_for(calls_reach(1), 5)  # the first one at once
    await asyncio.sleep(0.4)  # the publisher's keyframe answers all five: nothing more is asked
    assert len(calls) == 1
    for _ in range(5):  # a lossy viewer keeps asking: the next request waits for the interval
        await aiortc_glue.send_pli(receiver, ssrc)
    await asyncio.wait_for(calls_reach(2), 5)
    assert len(calls) == 2 and calls[1] - calls[0] >= interval - 0.1
    await publisher.pc.close()
    await sub.pc.close()


async def test_publisher_close_ends_subscriber_tracks_and_frees(sfu: EmbeddedSFU, client: CallsClient) -> None:
    publisher = await publish(client)
    sub = await new_subscriber(client)
    response = await pull(client, sub, publisher.session_id, ['v', 'a'])
    tracks = [await track_for(sub, t.mid or '') for t in response.tracks or []]
    for track in tracks:
        await first_frame(track)
    await publisher.pc.close()

    async def ended(track: Any) -> None:
        with pytest.raises(MediaStreamError):
            while True:
                await track.recv()

    await asyncio.wait_for(asyncio.gather(*(ended(t) for t in tracks)), 10)
    for _ in range(100):
        if sfu.stats()['publications'] == 0:
            break
        await asyncio.sleep(0.05)
    stats = sfu.stats()
    assert stats['publications'] == 0 and stats['subscriptions'] == 0 and stats['sessions'] == 1
    await sub.pc.close()


async def test_malformed_sdp_does_not_disturb_another_session(client: CallsClient) -> None:
    publisher = await publish(client)
    sub = await new_subscriber(client)
    response = await pull(client, sub, publisher.session_id, ['v'])
    video = await track_for(sub, (response.tracks or [])[0].mid or '')
    await first_frame(video)
    other = (await client.new_session()).session_id
    for sdp in ('v=0\r\n', 'garbage', 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n', ''):
        with pytest.raises(InvalidRequestError) as error:
            await client.new_tracks(other, TracksRequest(session_description=SessionDescription(type='offer', sdp=sdp)))
        assert error.value.status == 400 and error.value.error_code == INVALID_SESSION_DESCRIPTION
    for _ in range(10):
        await first_frame(video)  # media keeps flowing to the healthy session
    assert (await client.get_session(other)).tracks == []
    await publisher.pc.close()
    await sub.pc.close()


@pytest.fixture
async def short_sfu() -> AsyncIterator[EmbeddedSFU]:
    server = EmbeddedSFU(make_config(media_timeout_s=0.6, session_timeout_s=0.6))
    yield server
    await server.close()


async def test_idle_tracks_and_unused_sessions_are_collected(short_sfu: EmbeddedSFU) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=short_sfu.asgi_app), base_url='http://sfu')
    client = CallsClient(http, APP_ID, APP_SECRET)
    unused = (await client.new_session()).session_id
    publisher = await publish(client)
    sub = await new_subscriber(client)
    response = await pull(client, sub, publisher.session_id, ['v'])
    video = await track_for(sub, (response.tracks or [])[0].mid or '')
    await first_frame(video)
    for transceiver in publisher.transceivers.values():
        transceiver.sender.replaceTrack(None)  # connected, but no more media
    await asyncio.sleep(1.5)
    states = {t.track_name: t.status for t in (await client.get_session(publisher.session_id)).tracks or []}
    assert states == {'a': 'inactive', 'v': 'inactive'}
    assert [t.status for t in (await client.get_session(sub.session_id)).tracks or []] == ['inactive']
    with pytest.raises(Exception) as gone:
        await client.get_session(unused)
    assert getattr(gone.value, 'status', None) == 410
    await publisher.pc.close()
    await sub.pc.close()
