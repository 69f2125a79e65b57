"""A crafted offer through the Calls API is a 400 before aiortc sees it, and the session stays usable (issue #10)."""

from __future__ import annotations

import re

import pytest
from aiortc import AudioStreamTrack, RTCSessionDescription

from media.calls_api import CallsApiError, SessionDescription, TrackObject, TracksRequest
from media.calls_client import CallsClient
from tests.integration.sfu_peers import PatternVideoTrack, new_pc, wait_connected


async def browser_offer() -> tuple[object, str, str, str]:
    pc = new_pc()
    audio = pc.addTransceiver(AudioStreamTrack(), direction='sendonly')
    video = pc.addTransceiver(PatternVideoTrack(), direction='sendonly')
    await pc.setLocalDescription(await pc.createOffer())
    assert audio.mid is not None and video.mid is not None
    return pc, pc.localDescription.sdp, audio.mid, video.mid


def duplicate_codecs(sdp: str, copies: int) -> str:
    line = re.search(r'a=rtpmap:\d+ VP8/90000\r\n', sdp)
    assert line is not None
    return sdp.replace(line.group(0), line.group(0) * (copies + 1), 1)


def duplicate_mid(sdp: str, audio_mid: str, video_mid: str) -> str:
    return sdp.replace(f'a=mid:{video_mid}\r\n', f'a=mid:{audio_mid}\r\n')


def many_sections(sdp: str, count: int) -> str:
    head, first, *_ = re.split(r'(?=m=)', sdp)
    return head + ''.join(first.replace('a=mid:', f'a=mid:x{i}-', 1) for i in range(count))


@pytest.mark.parametrize(
    'poison',
    [
        pytest.param(lambda sdp, a, v: duplicate_codecs(sdp, 100), id='100-duplicate-rtpmap'),
        pytest.param(lambda sdp, a, v: duplicate_codecs(sdp, 1000), id='1000-duplicate-rtpmap'),
        pytest.param(duplicate_mid, id='two-sections-one-mid'),
        pytest.param(lambda sdp, a, v: many_sections(sdp, 70), id='70-m-lines'),
    ],
)
async def test_a_crafted_offer_is_refused_and_the_session_still_publishes(client: CallsClient, poison) -> None:  # type: ignore[no-untyped-def]
    session_id = (await client.new_session()).session_id
    pc, sdp, audio_mid, video_mid = await browser_offer()
    tracks = [
        TrackObject(location='local', mid=audio_mid, track_name='a'),
        TrackObject(location='local', mid=video_mid, track_name='v'),
    ]
    bad = SessionDescription(type='offer', sdp=poison(sdp, audio_mid, video_mid))
    with pytest.raises(CallsApiError) as refused:
        await client.new_tracks(session_id, TracksRequest(session_description=bad, tracks=tracks))
    assert refused.value.status == 400
    assert refused.value.error_code == 'invalid_session_description'

    # Nothing was half-applied: the same session takes the genuine offer and connects.
    good = SessionDescription(type='offer', sdp=sdp)
    response = await client.new_tracks(session_id, TracksRequest(session_description=good, tracks=tracks))
    assert [t.error_code for t in response.tracks or []] == [None, None]
    assert response.session_description is not None
    await pc.setRemoteDescription(RTCSessionDescription(**response.session_description.model_dump()))  # type: ignore[attr-defined]
    await wait_connected(pc)  # type: ignore[arg-type]
    state = await client.get_session(session_id)
    assert sorted(t.track_name or '' for t in state.tracks or []) == ['a', 'v']
    await pc.close()  # type: ignore[attr-defined]
