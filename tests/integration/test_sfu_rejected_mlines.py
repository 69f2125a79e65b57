"""A client that stops a pushed transceiver (port 0, out of BUNDLE, as browsers do) gets an answer that rejects
that m-line too, now and in every later answer: aiortc alone would answer it bundled, which Chromium refuses."""

from __future__ import annotations

import re

from aiortc import RTCSessionDescription

from media.calls_api import CloseTrackObject, CloseTracksRequest, SessionDescription, TrackObject, TracksRequest
from media.calls_client import CallsClient
from media.sfu.sdp_rejected import rejected_mids

from .sfu_peers import PatternVideoTrack, publish


def as_browser_would(sdp: str, stopped: str) -> str:
    """Reject mid `stopped` in an aiortc offer the way Chromium writes a stopped transceiver."""
    sections = re.split(r'(?m)^(?=m=)', sdp)
    for i, section in enumerate(sections):
        if f'a=mid:{stopped}\r\n' in section:
            sections[i] = re.sub(r'^(m=\S+) \d+ ', r'\1 0 ', section, count=1)
    head = re.sub(
        r'(?m)^(a=group:BUNDLE .*)\r\n', lambda m: m.group(1).replace(f' {stopped}', '') + '\r\n', sections[0]
    )
    return head + ''.join(sections[1:])


def bundle(sdp: str) -> list[str]:
    match = re.search(r'(?m)^a=group:BUNDLE (.*)\r?$', sdp)
    return match.group(1).split() if match else []


async def test_a_stopped_push_is_rejected_in_this_and_later_answers(client: CallsClient) -> None:
    publisher = await publish(client)
    video_mid = publisher.mids['v']
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    offer = as_browser_would(publisher.pc.localDescription.sdp, video_mid)
    assert rejected_mids(offer) == {video_mid}
    closed = await client.close_tracks(
        publisher.session_id,
        CloseTracksRequest(
            tracks=[CloseTrackObject(mid=video_mid)],
            force=False,
            session_description=SessionDescription(type='offer', sdp=offer),
        ),
    )
    assert closed.session_description is not None
    answer = closed.session_description.sdp
    assert rejected_mids(answer) == {video_mid}
    assert video_mid not in bundle(answer) and publisher.mids['a'] in bundle(answer)
    await publisher.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type='answer'))

    # A later push (a new camera) still gets the old m-line rejected in the answer: it is never revived.
    transceiver = publisher.pc.addTransceiver(PatternVideoTrack(), direction='sendonly')
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    assert transceiver.mid is not None
    offer = as_browser_would(publisher.pc.localDescription.sdp, video_mid)
    pushed = await client.new_tracks(
        publisher.session_id,
        TracksRequest(
            session_description=SessionDescription(type='offer', sdp=offer),
            tracks=[TrackObject(location='local', mid=transceiver.mid, track_name='v2')],
        ),
    )
    assert pushed.session_description is not None and not any(t.failed for t in pushed.tracks or [])
    assert rejected_mids(pushed.session_description.sdp) == {video_mid}
    assert transceiver.mid in bundle(pushed.session_description.sdp)
    await publisher.pc.close()
