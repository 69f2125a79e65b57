"""Calls API contract (docs/calls-api.md §11, CT-01…CT-16, CT-23…CT-25) against the embedded SFU, driven through
``media.calls_client.CallsClient`` over two transports: in-process ASGI and real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re

import av
import httpx
import pytest
from aiortc import RTCSessionDescription

from media.calls_api import (
    CLOSE_TRACK_ERROR,
    DECODING_ERROR,
    INVALID_SESSION_DESCRIPTION,
    NOT_FOUND_TRACK_ERROR,
    SESSION_ERROR,
    UNAUTHORIZED,
    UPDATE_TRACK_ERROR,
    CloseTrackObject,
    CloseTracksRequest,
    InvalidRequestError,
    NegotiationConflictError,
    NotFoundError,
    SessionDescription,
    SessionGoneError,
    Simulcast,
    TrackObject,
    TracksRequest,
    UnauthorizedError,
    UpdateTracksRequest,
)
from media.calls_client import CallsClient

from .conftest import APP_ID, APP_SECRET
from .sfu_peers import (
    answer,
    description,
    first_frame,
    new_pc,
    new_subscriber,
    publish,
    track_for,
    wait_connected,
)

AUTH = {'Authorization': f'Bearer {APP_SECRET}'}


def sdp_mids(sdp: str) -> list[str]:
    return re.findall(r'^a=mid:(\S+)\r?$', sdp, flags=re.M)


async def test_ct01_02_04_05_25_sessions_and_top_level_errors(client: CallsClient, http: httpx.AsyncClient) -> None:
    created = await client.new_session()  # CT-01
    assert re.fullmatch(r'[0-9a-f]{32}', created.session_id) and created.session_description is None
    assert (await client.new_session(params={'correlationId': 'ct', 'foo': ''})).session_id  # CT-02
    response = await http.post(f'/apps/{APP_ID}/sessions/new', content=b'{}', headers=AUTH)  # CT-04
    assert response.status_code == 400 and response.json()['errorCode'] == DECODING_ERROR
    response = await http.post(f'/apps/{APP_ID}/sessions/new', content=b'{"sessionDescription": [', headers=AUTH)
    assert response.status_code == 400 and response.json()['errorCode'] == DECODING_ERROR
    with pytest.raises(UnauthorizedError) as unauthorized:  # CT-05
        await CallsClient(http, APP_ID, 'wrong').new_session()
    assert unauthorized.value.status == 401 and unauthorized.value.error_code == UNAUTHORIZED
    response = await http.get(f'/apps/{APP_ID}/sessions/{created.session_id}')
    assert response.status_code == 401 and response.json()['errorCode'] == UNAUTHORIZED
    with pytest.raises(NotFoundError) as not_found:
        await CallsClient(http, 'b' * 32, APP_SECRET).new_session()
    assert not_found.value.status == 404
    with pytest.raises(SessionGoneError) as gone:  # CT-25
        await client.get_session('f' * 32)
    assert gone.value.status == 410 and gone.value.error_code == SESSION_ERROR


async def test_ct03_session_with_offer_connects(client: CallsClient, http: httpx.AsyncClient) -> None:
    pc = new_pc()
    pc.createDataChannel('server-events')
    await pc.setLocalDescription(await pc.createOffer())
    created = await client.new_session(description(pc))
    assert created.session_description is not None and created.session_description.type == 'answer'
    assert created.session_description.sdp.endswith('\r\n')
    await pc.setRemoteDescription(RTCSessionDescription(**created.session_description.model_dump()))
    await wait_connected(pc)
    # the same request without a Content-Type header is accepted too
    pc2 = new_pc()
    pc2.createDataChannel('server-events')
    await pc2.setLocalDescription(await pc2.createOffer())
    body = json.dumps({'sessionDescription': {'type': 'offer', 'sdp': pc2.localDescription.sdp}})
    response = await http.post(f'/apps/{APP_ID}/sessions/new?x=1', content=body.encode(), headers=AUTH)
    assert response.status_code == 201 and response.json()['sessionDescription']['type'] == 'answer'
    await pc.close()
    await pc2.close()


async def test_ct06_to_ct16_ct23_ct24_push_pull_close(client: CallsClient) -> None:
    publisher = await publish(client)  # CT-06
    pushed = publisher.response
    assert pushed.requires_immediate_renegotiation is False
    assert pushed.session_description is not None and pushed.session_description.type == 'answer'
    assert [(t.track_name, t.mid) for t in pushed.tracks or []] == [
        ('a', publisher.mids['a']),
        ('v', publisher.mids['v']),
    ]
    p = publisher.session_id

    sub = await new_subscriber(client)
    q = sub.session_id
    remote = [TrackObject(location='remote', session_id=p, track_name=n) for n in ('a', 'v')]
    pulled = await client.new_tracks(q, TracksRequest(tracks=remote))  # CT-07
    assert pulled.requires_immediate_renegotiation is True
    assert pulled.session_description is not None and pulled.session_description.type == 'offer'
    items = pulled.tracks or []
    assert [(t.session_id, t.track_name) for t in items] == [(p, 'a'), (p, 'v')]
    mids = [t.mid or '' for t in items]
    assert all(mids) and len(set(mids)) == 2 and set(mids) <= set(sdp_mids(pulled.session_description.sdp))

    with pytest.raises(NegotiationConflictError) as conflict:  # CT-23
        await client.new_tracks(q, TracksRequest(tracks=remote[:1]))
    assert conflict.value.status == 406
    with pytest.raises(InvalidRequestError) as garbage:  # CT-24
        await client.renegotiate(q, SessionDescription(type='answer', sdp='v=0'))
    assert garbage.value.error_code == INVALID_SESSION_DESCRIPTION

    await answer(client, sub, pulled)  # CT-08
    audio_mid, video_mid = mids
    video = await first_frame(await track_for(sub, video_mid))
    audio = await first_frame(await track_for(sub, audio_mid))
    assert isinstance(video, av.VideoFrame) and video.width > 0
    assert isinstance(audio, av.AudioFrame) and audio.samples > 0

    missing = TrackObject(location='remote', session_id=p, track_name='nope')
    none_found = await client.new_tracks(q, TracksRequest(tracks=[missing]))  # CT-09
    assert none_found.requires_immediate_renegotiation is False and none_found.session_description is None
    assert [(t.mid, t.error_code) for t in none_found.tracks or []] == [('', NOT_FOUND_TRACK_ERROR)]

    mixed = await client.new_tracks(q, TracksRequest(tracks=[missing, remote[1]]))  # CT-10
    assert mixed.requires_immediate_renegotiation is True and mixed.session_description is not None
    bad, good = mixed.tracks or []
    assert bad.mid == '' and bad.error_code and good.mid and good.error_code is None
    await answer(client, sub, mixed)

    state_p = await client.get_session(p)  # CT-11
    assert 'sessionDescription' not in state_p.to_wire()
    local = {(t.location, t.mid, t.track_name, t.status) for t in state_p.tracks or []}
    assert local == {('local', publisher.mids['a'], 'a', 'active'), ('local', publisher.mids['v'], 'v', 'active')}
    state_q = await client.get_session(q)  # CT-12
    assert state_q.tracks and all(t.location == 'remote' and t.session_id == p for t in state_q.tracks)
    assert all(t.status == 'active' for t in state_q.tracks)

    update = TrackObject(
        location='remote', session_id=p, track_name='v', mid=video_mid, simulcast=Simulcast(preferred_rid='h')
    )
    updated = await client.update_tracks(q, UpdateTracksRequest(tracks=[update]))  # CT-16
    assert [t.error_code for t in updated.tracks or []] == [UPDATE_TRACK_ERROR]

    close_a = CloseTracksRequest(tracks=[CloseTrackObject(mid=audio_mid)], force=True)
    closed = await client.close_tracks(q, close_a)  # CT-13
    assert closed.requires_immediate_renegotiation is False and closed.session_description is None
    assert [(t.mid, t.error_code) for t in closed.tracks or []] == [(audio_mid, None)]
    statuses = {t.mid: t.status for t in (await client.get_session(q)).tracks or []}
    assert statuses[audio_mid] == 'inactive'
    again = await client.close_tracks(q, close_a)  # CT-14
    assert [t.error_code for t in again.tracks or []] == [CLOSE_TRACK_ERROR]

    await publisher.transceivers['v'].stop()  # CT-15
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    negotiated = await client.close_tracks(
        p,
        CloseTracksRequest(
            tracks=[CloseTrackObject(mid=publisher.mids['v'])],
            force=False,
            session_description=description(publisher.pc),
        ),
    )
    assert negotiated.requires_immediate_renegotiation is False
    assert [t.mid for t in negotiated.tracks or []] == [publisher.mids['v']]
    assert negotiated.session_description is not None and negotiated.session_description.type == 'answer'
    await publisher.pc.setRemoteDescription(RTCSessionDescription(**negotiated.session_description.model_dump()))
    assert publisher.pc.signalingState == 'stable' and publisher.pc.connectionState == 'connected'

    await publisher.pc.close()
    await sub.pc.close()
