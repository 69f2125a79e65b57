"""A client that closes tracks but keeps offering their m-lines live (issue 12, found with the original Orange app).

partytracks 0.0.54 batches the closes of several tracks into one ``tracks/close`` and stops only the first
transceiver of the batch; the others stay ``sendonly`` (pushes) or ``recvonly`` (pulls) in its offers. Orange's
hospital re-pushes every camera on each camera change, so the browser kept encoding every closed camera (33 video
senders after 7 changes) and both sessions grew by a full m-line per closed track until they reached the SDP bound.

The SFU now rejects (port 0) such an m-line in its answer, never the BUNDLE tag (which stays ``inactive``), and a
later SFU offer recycles a rejected m-line for a new pull. An m-line the client closed by offering it ``inactive``
(our own pages' way) keeps working as before.
"""

from __future__ import annotations

import re
from typing import Any

from aiortc import RTCSessionDescription, sdp

from media.calls_api import CloseTrackObject, CloseTracksRequest, SessionDescription, TrackObject, TracksRequest
from media.calls_client import CallsClient
from media.sfu.sdp_rejected import live_mids, rejected_mids

from .sfu_peers import description, new_subscriber, publish
from .sfu_wire import answer_pull, close_pull, request_pull


def sections(text: str) -> list[tuple[str, int, str | None]]:
    return [(m.rtp.muxId, m.port, m.direction) for m in sdp.SessionDescription.parse(text).media]


def bundle(text: str) -> list[str]:
    match = re.search(r'(?m)^a=group:BUNDLE (.*)\r?$', text)
    return match.group(1).split() if match else []


async def close(client: CallsClient, session_id: str, mids: list[str], offer: str) -> Any:
    return await client.close_tracks(
        session_id,
        CloseTracksRequest(
            tracks=[CloseTrackObject(mid=m) for m in mids],
            force=False,
            session_description=SessionDescription(type='offer', sdp=offer),
        ),
    )


def test_live_mids_are_the_sections_neither_rejected_nor_inactive() -> None:
    text = (
        'v=0\r\na=group:BUNDLE 0 1\r\n'
        'm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n'
        'm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\n'
        'm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=sendonly\r\n'
        'm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=recvonly\r\n'
    )
    assert live_mids(text) == {'0', '3'}


async def test_a_closed_push_still_offered_sending_is_rejected_but_never_the_bundle_tag(client: CallsClient) -> None:
    publisher = await publish(client)
    audio, video = publisher.mids['a'], publisher.mids['v']
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    offer = publisher.pc.localDescription.sdp
    assert {audio, video} <= live_mids(offer)  # closed, yet still offered sendonly: partytracks' batch

    closed = await close(client, publisher.session_id, [audio, video], offer)

    assert [t.error_code for t in closed.tracks] == [None, None]
    answer = closed.session_description.sdp
    assert bundle(answer)[0] == audio  # the tag: kept, bundled, inactive
    by_mid = {mid: (port, direction) for mid, port, direction in sections(answer)}
    assert by_mid[audio][0] != 0 and by_mid[audio][1] == 'inactive'
    assert by_mid[video][0] == 0 and video not in bundle(answer)  # rejected: the browser stops it
    await publisher.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type='answer'))

    # later answers keep it rejected, and a new camera is still accepted on the same session
    transceiver = publisher.pc.addTransceiver('video', direction='sendonly')
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    pushed = await client.new_tracks(
        publisher.session_id,
        TracksRequest(
            session_description=description(publisher.pc),
            tracks=[TrackObject(location='local', mid=transceiver.mid, track_name='v2')],
        ),
    )
    assert pushed.tracks[0].error_code is None
    assert video in rejected_mids(pushed.session_description.sdp)
    await publisher.pc.close()


async def test_a_push_closed_by_an_inactive_offer_is_answered_inactive_not_rejected(client: CallsClient) -> None:
    """Our own pages close a push by offering its m-line inactive, and may reuse nothing else: unchanged."""
    publisher = await publish(client)
    video = publisher.mids['v']
    publisher.transceivers['v'].direction = 'inactive'
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())

    closed = await close(client, publisher.session_id, [video], publisher.pc.localDescription.sdp)

    answer = closed.session_description.sdp
    assert video not in rejected_mids(answer)
    assert dict((mid, direction) for mid, _, direction in sections(answer))[video] == 'inactive'
    await publisher.pc.close()


async def pulled_session(client: CallsClient, publisher_id: str) -> tuple[Any, str, str]:
    """A subscriber that pulled 'a' and 'v' (SFU offer, aiortc answer); returns it and the two mids."""
    sub = await new_subscriber(client)
    pulled = await client.new_tracks(
        sub.session_id,
        TracksRequest(tracks=[TrackObject(location='remote', session_id=publisher_id, track_name=n) for n in 'av']),
    )
    await sub.pc.setRemoteDescription(RTCSessionDescription(**pulled.session_description.model_dump()))
    await sub.pc.setLocalDescription(await sub.pc.createAnswer())
    await client.renegotiate(sub.session_id, description(sub.pc))
    audio_mid, video_mid = (t.mid for t in pulled.tracks)
    assert bundle(pulled.session_description.sdp)[0] == audio_mid
    return sub, audio_mid, video_mid


async def test_a_closed_pull_still_offered_receiving_is_rejected_and_its_mline_is_recycled(
    client: CallsClient,
) -> None:
    publisher = await publish(client)
    sub, audio_mid, video_mid = await pulled_session(client, publisher.session_id)
    await sub.pc.setLocalDescription(await sub.pc.createOffer())  # still receiving on the video m-line

    closed = await close(client, sub.session_id, [video_mid], sub.pc.localDescription.sdp)

    assert closed.tracks[0].error_code is None
    assert rejected_mids(closed.session_description.sdp) == {video_mid}
    await sub.pc.setRemoteDescription(RTCSessionDescription(**closed.session_description.model_dump()))

    # the next pull of a video takes the rejected m-line's place under a new mid instead of growing the session
    again = await client.new_tracks(
        sub.session_id,
        TracksRequest(tracks=[TrackObject(location='remote', session_id=publisher.session_id, track_name='v')]),
    )
    offer = again.session_description.sdp
    new_mid = again.tracks[0].mid
    assert new_mid not in (audio_mid, video_mid)
    assert [mid for mid, _, _ in sections(offer)] == [audio_mid, new_mid]
    assert sections(offer)[1][1] != 0 and sections(offer)[1][2] == 'sendonly'
    assert bundle(offer) == [audio_mid, new_mid]
    await sub.pc.close()
    await publisher.pc.close()


async def test_a_pull_its_publisher_ended_is_rejected_when_the_client_closes_it_while_receiving(
    client: CallsClient,
) -> None:
    """Orange's order: the hospital closes its cameras first (the pulls end), then the technician closes its pulls."""
    publisher = await publish(client)
    sub, _audio_mid, video_mid = await pulled_session(client, publisher.session_id)
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    gone = await close(client, publisher.session_id, [publisher.mids['v']], publisher.pc.localDescription.sdp)
    assert gone.tracks[0].error_code is None
    await sub.pc.setLocalDescription(await sub.pc.createOffer())

    closed = await close(client, sub.session_id, [video_mid], sub.pc.localDescription.sdp)

    assert closed.tracks[0].error_code == 'close_track_error'  # already ended, as before
    assert rejected_mids(closed.session_description.sdp) == {video_mid}
    await sub.pc.close()
    await publisher.pc.close()


async def test_a_recycling_offer_left_unanswered_gives_the_slot_back(client: CallsClient, sfu: Any) -> None:
    """The SFU offer that recycled a rejected m-line is never answered: once it expires, the next client offer rolls
    it back and the old, rejected m-line is where it was (no transceiver lost, no crash), then recycling works."""
    publisher = await publish(client)
    sub, audio_mid, video_mid = await pulled_session(client, publisher.session_id)
    await sub.pc.setLocalDescription(await sub.pc.createOffer())
    closed = await close(client, sub.session_id, [video_mid], sub.pc.localDescription.sdp)
    await sub.pc.setRemoteDescription(RTCSessionDescription(**closed.session_description.model_dump()))
    again = await client.new_tracks(
        sub.session_id,
        TracksRequest(tracks=[TrackObject(location='remote', session_id=publisher.session_id, track_name='v')]),
    )
    unanswered = again.tracks[0].mid
    assert [mid for mid, _, _ in sections(again.session_description.sdp)] == [audio_mid, unanswered]

    record = sfu.service.registry.sessions[sub.session_id]
    async with record.lock:
        await sfu.service.expire_offer(record)  # what the answer deadline does
    # the client never saw that offer: its next offer still has the rejected video m-line (stopped, port 0)
    await sub.pc.setLocalDescription(await sub.pc.createOffer())
    offer = sub.pc.localDescription.sdp
    renegotiated = await close(client, sub.session_id, [audio_mid], offer)
    answer = renegotiated.session_description.sdp
    assert [mid for mid, _, _ in sections(answer)] == [audio_mid, video_mid]
    assert video_mid in rejected_mids(answer)

    await sub.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type='answer'))
    later = await client.new_tracks(
        sub.session_id,
        TracksRequest(tracks=[TrackObject(location='remote', session_id=publisher.session_id, track_name='v')]),
    )
    assert [mid for mid, _, _ in sections(later.session_description.sdp)] == [audio_mid, later.tracks[0].mid]
    await sub.pc.close()
    await publisher.pc.close()


async def test_our_pages_way_a_closed_pull_recycled_for_a_new_one_is_never_rejected_later(
    client: CallsClient,
) -> None:
    """Our pages close a pull by offering it inactive; the SFU then recycles that same mid for the next pull. A later
    client offer that receives on it (closing another pull) must not reject it: it carries a live track again."""
    publisher = await publish(client)
    sub = await new_subscriber(client)
    await answer_pull(client, sub, await request_pull(client, sub, publisher.session_id, ['a', 'v']))
    by_kind = {t.kind: t.mid for t in sub.pc.getTransceivers()}
    await close_pull(client, sub, [by_kind['video']])
    again = await request_pull(client, sub, publisher.session_id, ['v'])
    assert again.tracks[0].mid == by_kind['video']  # the inactive m-line, recycled under the same mid
    await answer_pull(client, sub, again)

    for transceiver in sub.pc.getTransceivers():
        if transceiver.mid == by_kind['audio']:
            transceiver.direction = 'inactive'
    await sub.pc.setLocalDescription(await sub.pc.createOffer())
    closed = await close(client, sub.session_id, [by_kind['audio']], sub.pc.localDescription.sdp)

    answer = closed.session_description.sdp
    assert rejected_mids(answer) == set()
    assert dict((mid, d) for mid, _, d in sections(answer))[by_kind['video']] == 'sendonly'
    await sub.pc.close()
    await publisher.pc.close()
