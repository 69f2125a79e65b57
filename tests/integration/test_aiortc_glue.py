"""Fails loudly when an aiortc/aioice upgrade breaks the SFU's private touch points or RTP forwarding."""

from __future__ import annotations

import av

from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU, aiortc_glue

from .sfu_peers import first_frame, new_subscriber, publish, pull, track_for


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
