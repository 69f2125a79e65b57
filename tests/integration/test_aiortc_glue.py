"""Fails loudly when an aiortc/aioice upgrade breaks the SFU's private touch points or RTP forwarding."""

from __future__ import annotations

import av
import httpx

from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU, aiortc_glue

from .conftest import APP_ID, APP_SECRET, make_config
from .sfu_peers import first_frame, new_subscriber, publish, pull, track_for
from .sfu_wire import answer_pull, close_pull, offered_ssrc, request_pull, spy_on


def test_every_private_touch_point_exists() -> None:
    aiortc_glue.assert_compatible()


async def test_publish_forward_decode_round_trip(sfu: EmbeddedSFU, client: CallsClient) -> None:
    publisher = await publish(client)
    subscriber = await new_subscriber(client)
    response = await pull(client, subscriber, publisher.session_id, ['v', 'a'])
    assert response.tracks is not None
    video_mid, audio_mid = (t.mid or '' for t in response.tracks)
    video = await first_frame(await track_for(subscriber, video_mid))
    audio = await first_frame(await track_for(subscriber, audio_mid))
    assert isinstance(video, av.VideoFrame) and video.width == 160
    assert isinstance(audio, av.AudioFrame) and audio.samples > 0
    assert sfu.stats()['forwarded_packets'] > 0
    await publisher.pc.close()
    await subscriber.pc.close()


async def test_recycled_sender_sends_again_under_a_fresh_ssrc() -> None:
    """A closed subscription's sender is stopped (BYE) and restarted for the next pull on the same m-line: the
    private sender state ``SenderHandle.recycle`` resets must still make aiortc start a new stream."""
    sfu = EmbeddedSFU(make_config(recycle_mlines=True))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu')
    try:
        await _recycle_round_trip(CallsClient(http, APP_ID, APP_SECRET))
    finally:
        await http.aclose()
        await sfu.close()


async def _recycle_round_trip(client: CallsClient) -> None:
    publisher = await publish(client)
    subscriber = await new_subscriber(client)
    first = await request_pull(client, subscriber, publisher.session_id, ['v'])
    await answer_pull(client, subscriber, first)
    mid = (first.tracks or [])[0].mid or ''
    await first_frame(await track_for(subscriber, mid))
    spy = spy_on(subscriber)
    assert first.session_description is not None
    old_ssrc = offered_ssrc(first.session_description.sdp, mid)
    await close_pull(client, subscriber, [mid])
    await spy.until(lambda: old_ssrc in spy.byes)
    second = await request_pull(client, subscriber, publisher.session_id, ['v'])
    assert second.session_description is not None and (second.tracks or [])[0].mid == mid
    new_ssrc = offered_ssrc(second.session_description.sdp, mid)
    assert new_ssrc != old_ssrc
    await answer_pull(client, subscriber, second)
    await spy.until(lambda: spy.packets(new_ssrc) >= 10 and spy.sender_reports.get(new_ssrc, 0) > 0)
    video = await first_frame(subscriber.tracks[mid])
    assert isinstance(video, av.VideoFrame) and video.width == 160
    await publisher.pc.close()
    await subscriber.pc.close()
