"""The SFU session layer over time: an SFU offer never locks a session, closed subscriptions go quiet, and a pull
session's m-lines stay bounded however many pulls and closes it sees (closed slots are recycled).

aiortc peers against the embedded SFU through the real httpx client (ASGI transport). Waits are bounded waits for an
outcome; nothing asserts how long something took.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiortc import AudioStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from media.calls_api import (
    INVALID_SESSION_DESCRIPTION,
    CallsApiError,
    CloseTrackObject,
    CloseTracksRequest,
    SessionDescription,
    TrackObject,
    TracksRequest,
    TracksResponse,
)
from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU
from media.sfu.codecs import is_keyframe_start

from .conftest import APP_ID, APP_SECRET, make_config
from .sfu_peers import Publisher, Subscriber, description, first_frame, new_subscriber, publish, track_for
from .sfu_wire import (
    WireSpy,
    answer_pull,
    apply_pull_offer,
    close_pull,
    media_sections,
    offered_ssrc,
    request_pull,
    spy_on,
)

ANSWER_TIMEOUT_S = 1.0


@pytest.fixture
async def sfu() -> AsyncIterator[EmbeddedSFU]:
    server = EmbeddedSFU(make_config(answer_timeout_s=ANSWER_TIMEOUT_S, recycle_mlines=True))
    yield server
    await server.close()


@pytest.fixture
async def client(sfu: EmbeddedSFU) -> AsyncIterator[CallsClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu') as http:
        yield CallsClient(http, APP_ID, APP_SECRET)


async def eventually(attempt: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Retry ``attempt`` while the SFU answers 406 (an SFU offer still waits for its answer); its result."""

    async def loop() -> Any:
        while True:
            try:
                return await attempt()
            except CallsApiError as error:
                if error.status != 406:
                    raise
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(loop(), timeout)


async def connected_subscriber(client: CallsClient, publisher: Publisher) -> tuple[Subscriber, str]:
    """A subscriber session that pulled the publisher's audio and hears it; the audio mid."""
    sub = await new_subscriber(client)
    response = await request_pull(client, sub, publisher.session_id, ['a'])
    await answer_pull(client, sub, response)
    audio_mid = (response.tracks or [])[0].mid or ''
    await first_frame(await track_for(sub, audio_mid))
    return sub, audio_mid


def only_mid(response: TracksResponse) -> str:
    tracks = response.tracks or []
    assert len(tracks) == 1 and not tracks[0].error_code, tracks
    return tracks[0].mid or ''


async def statuses(client: CallsClient, session_id: str) -> dict[str, str | None]:
    return {t.mid or '': t.status for t in (await client.get_session(session_id)).tracks or []}


def without_last_section(sdp: str) -> str:
    """An answer missing the offer's last m-line (its mids differ from the offer's)."""
    head, *sections = re.split(r'(?m)^(?=m=)', sdp)
    return head + ''.join(sections[:-1])


async def flowing(spy: WireSpy, ssrc: int, packets: int = 10) -> None:
    """``packets`` more RTP packets of ``ssrc`` arrive (a bounded wait)."""
    start = spy.packets(ssrc)
    await spy.until(lambda: spy.packets(ssrc) >= start + packets)


# --- (a) an answer that never comes --------------------------------------------------------------------------------


async def test_unanswered_pull_is_dropped_and_the_session_pulls_again(client: CallsClient) -> None:
    publisher = await publish(client)
    sub, audio_mid = await connected_subscriber(client, publisher)
    spy = spy_on(sub)
    unanswered = await request_pull(client, sub, publisher.session_id, ['v'])
    dropped_mid = only_mid(unanswered)
    with pytest.raises(CallsApiError) as conflict:
        await request_pull(client, sub, publisher.session_id, ['v'])
    assert conflict.value.status == 406  # the offer still waits, within its deadline

    # The page never answers. Past the deadline the session takes a new pull, and its video flows.
    response = await eventually(lambda: request_pull(client, sub, publisher.session_id, ['v']))
    video_mid = only_mid(response)
    await answer_pull(client, sub, response)
    assert response.session_description is not None
    ssrc = offered_ssrc(response.session_description.sdp, video_mid)
    await flowing(spy, ssrc)
    await first_frame(await track_for(sub, video_mid))
    await first_frame(sub.tracks[audio_mid])  # the earlier subscription was never disturbed
    states = await statuses(client, sub.session_id)
    assert states[audio_mid] == 'active' and states[video_mid] == 'active'
    if dropped_mid != video_mid:  # the dropped slot was not recycled: it is reported inactive
        assert states[dropped_mid] == 'inactive'
    await publisher.pc.close()
    await sub.pc.close()


async def test_first_offer_of_a_pull_session_unanswered(sfu: EmbeddedSFU, client: CallsClient) -> None:
    """The very first SFU offer of a new session goes unanswered: nothing was ever negotiated, the next pull works."""
    publisher = await publish(client)
    sub = await new_subscriber(client)
    only_mid(await request_pull(client, sub, publisher.session_id, ['v']))
    response = await eventually(lambda: request_pull(client, sub, publisher.session_id, ['v']))
    await answer_pull(client, sub, response)
    await first_frame(await track_for(sub, only_mid(response)))
    await publisher.pc.close()
    await sub.pc.close()


async def test_after_an_unanswered_offer_a_client_offer_is_answered(client: CallsClient) -> None:
    """A push (a client offer) on a session whose SFU offer timed out: the SFU rolls its offer back (aiortc cannot
    take a remote offer in have-local-offer) and answers; pulls keep working afterwards."""
    publisher = await publish(client)
    sub, audio_mid = await connected_subscriber(client, publisher)
    only_mid(await request_pull(client, sub, publisher.session_id, ['v']))
    mic = sub.pc.addTransceiver(AudioStreamTrack(), direction='sendonly')
    await sub.pc.setLocalDescription(await sub.pc.createOffer())
    assert mic.mid is not None
    push = TracksRequest(
        session_description=description(sub.pc), tracks=[TrackObject(location='local', mid=mic.mid, track_name='mic')]
    )
    pushed = await eventually(lambda: client.new_tracks(sub.session_id, push))
    assert not any(t.error_code for t in pushed.tracks or [])
    assert pushed.session_description is not None
    await sub.pc.setRemoteDescription(RTCSessionDescription(**pushed.session_description.model_dump()))

    response = await request_pull(client, sub, publisher.session_id, ['v'])
    await answer_pull(client, sub, response)
    await first_frame(await track_for(sub, only_mid(response)))
    await first_frame(sub.tracks[audio_mid])
    listener = await new_subscriber(client)  # the push went through: its audio is pullable
    mic_pull = await request_pull(client, listener, sub.session_id, ['mic'])
    await answer_pull(client, listener, mic_pull)
    await first_frame(await track_for(listener, only_mid(mic_pull)))
    for pc in (publisher.pc, sub.pc, listener.pc):
        await pc.close()


async def test_push_after_the_first_offer_of_a_session_went_unanswered(client: CallsClient) -> None:
    """Nothing was ever negotiated on the session: the SFU starts over with a new peer connection for the push."""
    publisher = await publish(client)
    sub = await new_subscriber(client)
    only_mid(await request_pull(client, sub, publisher.session_id, ['v']))
    mic = sub.pc.addTransceiver(AudioStreamTrack(), direction='sendonly')
    await sub.pc.setLocalDescription(await sub.pc.createOffer())
    assert mic.mid is not None
    push = TracksRequest(
        session_description=description(sub.pc), tracks=[TrackObject(location='local', mid=mic.mid, track_name='mic')]
    )
    pushed = await eventually(lambda: client.new_tracks(sub.session_id, push))
    assert not any(t.error_code for t in pushed.tracks or [])
    assert pushed.session_description is not None
    await sub.pc.setRemoteDescription(RTCSessionDescription(**pushed.session_description.model_dump()))
    assert set((await statuses(client, sub.session_id)).values()) == {'active'}  # the dropped pull is forgotten
    response = await request_pull(client, sub, publisher.session_id, ['v'])
    await answer_pull(client, sub, response)
    await first_frame(await track_for(sub, only_mid(response)))
    await publisher.pc.close()
    await sub.pc.close()


# --- (b) a rejected answer -----------------------------------------------------------------------------------------


async def test_rejected_answer_may_be_corrected_then_expires(client: CallsClient) -> None:
    publisher = await publish(client)
    sub, _ = await connected_subscriber(client, publisher)
    spy = spy_on(sub)

    # Rejected, then corrected before the deadline: accepted, video flows.
    response = await request_pull(client, sub, publisher.session_id, ['v'])
    video_mid = only_mid(response)
    answer = await apply_pull_offer(sub, response)
    broken = SessionDescription(type='answer', sdp=answer.replace('VP8/90000', 'VP9/90000'))  # aiortc refuses it
    with pytest.raises(CallsApiError) as rejected:
        await client.renegotiate(sub.session_id, broken)
    assert rejected.value.status == 400 and rejected.value.error_code == INVALID_SESSION_DESCRIPTION
    with pytest.raises(CallsApiError) as conflict:
        await request_pull(client, sub, publisher.session_id, ['v'])
    assert conflict.value.status == 406  # still waiting for a valid answer
    assert (await client.renegotiate(sub.session_id, description(sub.pc))).to_wire() == {}
    await first_frame(await track_for(sub, video_mid))

    # Rejected and never corrected: past the deadline the session pulls again and media flows on the new pull.
    second = await request_pull(client, sub, publisher.session_id, ['v'])
    answer = await apply_pull_offer(sub, second)
    with pytest.raises(CallsApiError):
        await client.renegotiate(sub.session_id, SessionDescription(type='answer', sdp=without_last_section(answer)))
    late_answer = SessionDescription(type='answer', sdp=answer)  # the valid answer, sent after the deadline
    third = await eventually(lambda: request_pull(client, sub, publisher.session_id, ['v']))
    third_mid = only_mid(third)
    await answer_pull(client, sub, third)
    with pytest.raises(CallsApiError) as late:
        await client.renegotiate(sub.session_id, late_answer)
    assert late.value.status == 400  # no offer waits: nothing to apply it to
    assert third.session_description is not None
    await flowing(spy, offered_ssrc(third.session_description.sdp, third_mid))
    await first_frame(sub.tracks[video_mid])  # the first video subscription is untouched
    states = await statuses(client, sub.session_id)
    assert states[video_mid] == 'active' and states[third_mid] == 'active'
    await close_pull(client, sub, [third_mid])
    await publisher.pc.close()
    await sub.pc.close()


# --- (c) bounded m-lines over many pull/close cycles ---------------------------------------------------------------


async def test_fifty_pull_close_cycles_keep_m_lines_bounded(sfu: EmbeddedSFU, client: CallsClient) -> None:
    publisher = await publish(client)
    sub, audio_mid = await connected_subscriber(client, publisher)  # one subscription stays open throughout
    spy = spy_on(sub)
    m_lines: list[int] = []
    ssrcs: list[int] = []
    video_mid = ''
    for _ in range(50):
        response = await request_pull(client, sub, publisher.session_id, ['v'])
        video_mid = only_mid(response)
        assert response.session_description is not None
        offer = response.session_description.sdp
        m_lines.append(len(media_sections(offer)))
        ssrcs.append(offered_ssrc(offer, video_mid))
        await answer_pull(client, sub, response)
        await flowing(spy, ssrcs[-1], packets=3)
        await close_pull(client, sub, [video_mid])
    assert max(m_lines) <= 2 + 1, m_lines  # audio + video open at most at once, plus one spare
    assert len(sub.pc.getTransceivers()) <= 3
    assert len(set(ssrcs)) == len(ssrcs)  # every recycled stream under a fresh SSRC

    # Media still flows at the end: a last pull, keyframe first, packets keep coming; the audio never stopped.
    response = await request_pull(client, sub, publisher.session_id, ['v'])
    video_mid = only_mid(response)
    assert response.session_description is not None
    ssrc = offered_ssrc(response.session_description.sdp, video_mid)
    await answer_pull(client, sub, response)
    await flowing(spy, ssrc, packets=30)
    assert is_keyframe_start('video/vp8', spy.rtp[ssrc][0].payload)
    for _ in range(5):
        await first_frame(sub.tracks[video_mid])  # decoded on the recycled m-line (see sfu_wire.follow_recycled)
    await first_frame(sub.tracks[audio_mid])
    assert sfu.stats()['subscriptions'] == 2
    await publisher.pc.close()
    await sub.pc.close()


# --- (d) a closed subscription goes quiet --------------------------------------------------------------------------


@pytest.mark.parametrize('force', [False, True])
async def test_closed_subscription_sender_sends_nothing_more(client: CallsClient, force: bool) -> None:
    publisher = await publish(client)
    sub, audio_mid = await connected_subscriber(client, publisher)
    spy = spy_on(sub)
    response = await request_pull(client, sub, publisher.session_id, ['v'])
    video_mid = only_mid(response)
    assert response.session_description is not None
    video_ssrc = offered_ssrc(response.session_description.sdp, video_mid)
    await answer_pull(client, sub, response)
    audio_ssrc = offered_ssrc(sub.pc.remoteDescription.sdp, audio_mid)
    await flowing(spy, video_ssrc)
    await spy.until(lambda: spy.sender_reports.get(video_ssrc, 0) > 0)

    if force:
        await client.close_tracks(
            sub.session_id, CloseTracksRequest(tracks=[CloseTrackObject(mid=video_mid)], force=True)
        )
    else:
        await close_pull(client, sub, [video_mid])
    await spy.until(lambda: video_ssrc in spy.byes)  # the stream ends: RTCP BYE
    packets, reports = spy.packets(video_ssrc), spy.sender_reports.get(video_ssrc, 0)
    # Four more sender reports of the live audio stream (each 0.5-1.5 s apart) span at least 1.5 s: a video sender
    # still running would have sent at least one report meanwhile.
    audio_reports = spy.sender_reports.get(audio_ssrc, 0)
    await spy.until(lambda: spy.sender_reports.get(audio_ssrc, 0) >= audio_reports + 4)
    assert spy.packets(video_ssrc) == packets
    assert spy.sender_reports.get(video_ssrc, 0) == reports
    assert (await statuses(client, sub.session_id))[video_mid] == 'inactive'
    await publisher.pc.close()
    await sub.pc.close()


# --- idle publications (media_timeout_s) ---------------------------------------------------------------------------


async def test_idle_publication_is_collected_and_ends_subscriber_tracks() -> None:
    server = EmbeddedSFU(make_config(media_timeout_s=1.0))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=server.asgi_app), base_url='http://sfu')
    client = CallsClient(http, APP_ID, APP_SECRET)
    try:
        publisher = await publish(client)
        sub = await new_subscriber(client)
        response = await request_pull(client, sub, publisher.session_id, ['v', 'a'])
        await answer_pull(client, sub, response)
        tracks = [await track_for(sub, t.mid or '') for t in response.tracks or []]
        for track in tracks:
            await first_frame(track)
        for transceiver in publisher.transceivers.values():
            transceiver.sender.replaceTrack(None)  # still connected, no more media

        async def ended(track: Any) -> None:
            with pytest.raises(MediaStreamError):
                while True:
                    await track.recv()

        await asyncio.wait_for(asyncio.gather(*(ended(t) for t in tracks)), 10)
        publisher_states = {
            t.track_name: t.status for t in (await client.get_session(publisher.session_id)).tracks or []
        }
        assert publisher_states == {'a': 'inactive', 'v': 'inactive'}
        assert set((await statuses(client, sub.session_id)).values()) == {'inactive'}
        await publisher.pc.close()
        await sub.pc.close()
    finally:
        await http.aclose()
        await server.close()
