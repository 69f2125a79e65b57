from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from media import calls_api as api
from media.calls_api import (
    CloseDataChannelObject,
    CloseDataChannelsRequest,
    CloseTrackObject,
    CloseTracksRequest,
    DataChannelObject,
    DataChannelsRequest,
    EstablishDataChannelRequest,
    IceServer,
    SessionDescription,
    TrackLocator,
    TrackObject,
    TracksRequest,
    UpdateTracksRequest,
)
from media.calls_client import CallsClient, TurnClient, browser_ice_servers

BASE = 'https://rtc.example.test/v1'
APP = 'app123'
SECRET = 's3cr3t-app-token-XYZ'
SID = 'e017a2629c754fedc1f7d8587e06d126'
PUB = '2a45361d5fd7cc14eface0587c276c94'
OFFER = SessionDescription(type='offer', sdp='v=0\r\n')
ANSWER = SessionDescription(type='answer', sdp='v=0\r\n')

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and replies with a fixed response."""

    def __init__(self, status: int = 200, body: Any = None, *, content: bytes | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.body, self.content = status, body, content

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.content is not None:
            return httpx.Response(self.status, content=self.content)
        return httpx.Response(self.status, json={} if self.body is None else self.body)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


def calls(handler: Handler, **kwargs: Any) -> CallsClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=BASE)
    return CallsClient(http, APP, SECRET, **kwargs)


def turn(handler: Handler) -> TurnClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=BASE)
    return TurnClient(http, 'key-id', SECRET)


async def test_new_session_without_offer_sends_no_body() -> None:
    rec = Recorder(201, {'sessionId': SID})
    response = await calls(rec).new_session()
    assert response.session_id == SID
    assert response.session_description is None
    request = rec.last
    assert request.method == 'POST'
    assert request.url == f'{BASE}/apps/{APP}/sessions/new'
    assert request.content == b''
    assert request.headers.get('content-length') in (None, '0')
    assert 'content-type' not in request.headers
    assert request.headers['authorization'] == f'Bearer {SECRET}'


async def test_new_session_with_offer_and_query_params() -> None:
    rec = Recorder(201, {'sessionId': SID, 'sessionDescription': {'type': 'answer', 'sdp': 'v=0\r\n'}})
    response = await calls(rec).new_session(OFFER, correlation_id='meeting-1', thirdparty=True, params={'foo': ''})
    assert response.session_description == ANSWER
    assert rec.last_json() == {'sessionDescription': {'type': 'offer', 'sdp': 'v=0\r\n'}}
    assert rec.last.headers['content-type'] == 'application/json'
    assert dict(rec.last.url.params) == {'correlationId': 'meeting-1', 'thirdparty': 'true', 'foo': ''}


async def test_extra_params_go_on_every_call_and_per_call_params_are_added() -> None:
    rec = Recorder(200, {})
    client = calls(rec, extra_params={'correlationId': 'room-7', 'streamDebug': ''})
    await client.renegotiate(SID, ANSWER, params={'PushingTrack': 'x'})
    assert rec.last.url.path == f'/v1/apps/{APP}/sessions/{SID}/renegotiate'
    assert dict(rec.last.url.params) == {'correlationId': 'room-7', 'streamDebug': '', 'PushingTrack': 'x'}
    await client.get_session(SID)
    assert dict(rec.last.url.params) == {'correlationId': 'room-7', 'streamDebug': ''}


async def test_new_tracks_push_returns_typed_response() -> None:
    rec = Recorder(
        200,
        {
            'requiresImmediateRenegotiation': False,
            'tracks': [{'trackName': 'camera', 'mid': '0'}],
            'sessionDescription': {'type': 'answer', 'sdp': 'a'},
        },
    )
    request = TracksRequest(
        session_description=OFFER, tracks=[TrackObject(location='local', mid='0', track_name='camera')]
    )
    response = await calls(rec).new_tracks(SID, request)
    assert rec.last.method == 'POST'
    assert rec.last.url.path == f'/v1/apps/{APP}/sessions/{SID}/tracks/new'
    assert rec.last_json() == request.to_wire()
    assert response.requires_immediate_renegotiation is False
    assert response.tracks is not None and not response.tracks[0].failed


async def test_pull_with_failed_items_is_returned_not_raised() -> None:
    rec = Recorder(
        200,
        {
            'requiresImmediateRenegotiation': True,
            'sessionDescription': {'type': 'offer', 'sdp': 'o'},
            'tracks': [
                {'sessionId': PUB, 'trackName': 'a', 'mid': '3'},
                {'sessionId': PUB, 'trackName': 'b', 'mid': '', 'errorCode': 'not_found_track_error'},
                {'sessionId': PUB, 'trackName': 'c', 'mid': ''},
            ],
        },
    )
    request = TracksRequest(tracks=[TrackLocator(PUB, name).remote_track() for name in 'abc'])
    response = await calls(rec).new_tracks(SID, request)
    assert response.tracks is not None
    assert [t.failed for t in response.tracks] == [False, True, True]
    assert response.tracks[1].error_code == api.NOT_FOUND_TRACK_ERROR


async def test_close_update_and_data_channel_endpoints() -> None:
    rec = Recorder(200, {'requiresImmediateRenegotiation': False, 'tracks': [{'mid': '1'}]})
    client = calls(rec)

    close = await client.close_tracks(SID, CloseTracksRequest(tracks=[CloseTrackObject(mid='1')], force=True))
    assert (rec.last.method, rec.last.url.path) == ('PUT', f'/v1/apps/{APP}/sessions/{SID}/tracks/close')
    assert rec.last_json() == {'tracks': [{'mid': '1'}], 'force': True}
    assert close.tracks is not None and close.tracks[0].mid == '1'

    update = UpdateTracksRequest(
        tracks=[TrackLocator(PUB, 'v').remote_track(mid='1', simulcast={'preferred_rid': 'h'})]
    )
    await client.update_tracks(SID, update)
    assert (rec.last.method, rec.last.url.path) == ('PUT', f'/v1/apps/{APP}/sessions/{SID}/tracks/update')
    assert rec.last_json()['tracks'][0]['simulcast'] == {'preferredRid': 'h'}

    rec.body = {'dataChannels': [{'location': 'local', 'dataChannelName': 'chat', 'id': 1}]}
    channels = DataChannelsRequest(data_channels=[DataChannelObject(location='local', data_channel_name='chat')])
    new = await client.new_data_channels(SID, channels)
    assert (rec.last.method, rec.last.url.path) == ('POST', f'/v1/apps/{APP}/sessions/{SID}/datachannels/new')
    assert new.data_channels is not None and new.data_channels[0].id == 1
    await client.update_data_channels(SID, channels)
    assert (rec.last.method, rec.last.url.path) == ('PUT', f'/v1/apps/{APP}/sessions/{SID}/datachannels/update')
    await client.close_data_channels(SID, CloseDataChannelsRequest(data_channels=[CloseDataChannelObject(id=1)]))
    assert (rec.last.method, rec.last.url.path) == ('PUT', f'/v1/apps/{APP}/sessions/{SID}/datachannels/close')
    assert rec.last_json() == {'dataChannels': [{'id': 1}]}

    rec.body = {
        'requiresImmediateRenegotiation': True,
        'dataChannel': {'dataChannelName': 'server-events', 'id': 0},
        'sessionDescription': {'type': 'offer', 'sdp': 'o'},
    }
    establish = EstablishDataChannelRequest(
        data_channel=DataChannelObject(location='remote', data_channel_name='server-events')
    )
    established = await client.establish_data_channel(SID, establish)
    assert (rec.last.method, rec.last.url.path) == ('POST', f'/v1/apps/{APP}/sessions/{SID}/datachannels/establish')
    assert established.data_channel is not None and established.data_channel.id == 0


async def test_get_session_sends_no_body() -> None:
    rec = Recorder(200, {'tracks': [{'location': 'local', 'mid': '0', 'trackName': 'a', 'status': 'active'}]})
    state = await calls(rec).get_session(SID)
    assert (rec.last.method, rec.last.url.path, rec.last.content) == ('GET', f'/v1/apps/{APP}/sessions/{SID}', b'')
    assert state.tracks is not None and state.tracks[0].status == 'active'


async def test_path_segments_are_escaped() -> None:
    rec = Recorder(200, {})
    await calls(rec).get_session('../../other')
    assert rec.last.url.raw_path.decode() == f'/v1/apps/{APP}/sessions/..%2F..%2Fother'


async def test_renegotiate_accepts_an_empty_body() -> None:
    rec = Recorder(200, content=b'')
    assert (await calls(rec).renegotiate(SID, ANSWER)).to_wire() == {}
    assert rec.last_json() == {'sessionDescription': {'type': 'answer', 'sdp': 'v=0\r\n'}}


@pytest.mark.parametrize(
    ('status', 'body', 'expected', 'code'),
    [
        (401, {'errorCode': 'unauthorized', 'errorDescription': 'bad token'}, api.UnauthorizedError, 'unauthorized'),
        (
            406,
            {'errorCode': 'invalid_session_description'},
            api.NegotiationConflictError,
            'invalid_session_description',
        ),
        (410, {'errorCode': 'session_error', 'errorDescription': 'gone'}, api.SessionGoneError, 'session_error'),
        (425, {'errorCode': 'session_error'}, api.SessionNotReadyError, 'session_error'),
        (400, {'errorCode': 'decoding_error', 'errorDescription': 'x'}, api.InvalidRequestError, 'decoding_error'),
        (200, {'errorCode': 'invalid_session_description'}, api.InvalidRequestError, 'invalid_session_description'),
        (404, {}, api.NotFoundError, None),
        (429, {'errorCode': ''}, api.RateLimitedError, None),
    ],
)
async def test_top_level_errors_raise_with_status(
    status: int, body: dict[str, str], expected: type[api.CallsApiError], code: str | None
) -> None:
    client = calls(Recorder(status, body))
    with pytest.raises(expected) as info:
        await client.new_tracks(SID, TracksRequest(auto_discover=True, session_description=OFFER))
    assert info.value.status == status
    assert info.value.error_code == code
    assert info.value.description == body.get('errorDescription', json.dumps(body, separators=(',', ':')))


async def test_non_json_server_error() -> None:
    client = calls(Recorder(500, content=b'<html>Bad gateway</html>'))
    with pytest.raises(api.ServerError) as info:
        await client.get_session(SID)
    assert (info.value.status, info.value.error_code) == (500, None)
    assert 'Bad gateway' in info.value.description
    assert info.value.retryable


@pytest.mark.parametrize(
    ('content', 'match'),
    [(b'[1, 2]', 'not a JSON object'), (b'not json', 'not a JSON object'), (b'{"sessionId": 5}', 'unexpected body')],
)
async def test_unexpected_2xx_body(content: bytes, match: str) -> None:
    with pytest.raises(api.UnexpectedResponseError, match=match) as info:
        await calls(Recorder(201, content=content)).new_session()
    assert info.value.status == 201


@pytest.mark.parametrize(
    ('exc', 'expected'),
    [
        (httpx.ConnectError('connection refused'), api.CallsTransportError),
        (httpx.ReadTimeout('read timed out'), api.CallsTimeoutError),
        (httpx.RemoteProtocolError('peer closed'), api.CallsTransportError),
    ],
)
async def test_transport_errors(exc: Exception, expected: type[api.CallsError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(expected) as info:
        await calls(handler).new_session()
    assert isinstance(info.value, api.CallsTransportError)
    assert info.value.retryable
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


async def test_default_timeout_is_generous() -> None:
    rec = Recorder(201, {'sessionId': SID})
    await calls(rec).new_session()
    timeout = rec.last.extensions['timeout']
    assert timeout['read'] >= 15


async def test_secret_never_appears_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {'errorCode': 'unauthorized', 'errorDescription': f'token Bearer {SECRET} rejected'}
    client = calls(Recorder(401, echo))
    with pytest.raises(api.UnauthorizedError) as info:
        await client.new_session()
    texts = [str(info.value), repr(info.value), info.value.description, repr(client), caplog.text]
    assert all(SECRET not in text for text in texts)
    assert '[redacted]' in info.value.description

    with pytest.raises(api.ServerError) as server_error:
        await calls(Recorder(500, content=f'Authorization: Bearer {SECRET}'.encode())).new_session()
    assert SECRET not in str(server_error.value)

    turn_client = turn(Recorder(201, {'iceServers': []}))
    assert SECRET not in repr(turn_client)


async def test_turn_generate_ice_servers_current_layout() -> None:
    body = {
        'iceServers': [
            {'urls': ['stun:stun.cloudflare.com:3478', 'stun:stun.cloudflare.com:53']},
            {
                'urls': [
                    'turn:turn.cloudflare.com:3478?transport=udp',
                    'turn:turn.cloudflare.com:53?transport=udp',
                    'turns:turn.cloudflare.com:443?transport=tcp',
                ],
                'username': 'u',
                'credential': 'c',
            },
        ]
    }
    rec = Recorder(201, body)
    servers = await turn(rec).generate_ice_servers(ttl=600)
    assert rec.last.method == 'POST'
    assert rec.last.url == f'{BASE}/turn/keys/key-id/credentials/generate-ice-servers'
    assert rec.last_json() == {'ttl': 600}
    assert rec.last.headers['authorization'] == f'Bearer {SECRET}'
    assert [s.to_wire() for s in servers] == body['iceServers']
    assert [s.to_wire() for s in browser_ice_servers(servers)] == [
        {'urls': ['stun:stun.cloudflare.com:3478']},
        {
            'urls': ['turn:turn.cloudflare.com:3478?transport=udp', 'turns:turn.cloudflare.com:443?transport=tcp'],
            'username': 'u',
            'credential': 'c',
        },
    ]


async def test_turn_generate_ice_servers_legacy_single_object() -> None:
    legacy = {
        'urls': ['stun:stun.cloudflare.com:53', 'turn:turn.cloudflare.com:3478'],
        'username': 'u',
        'credential': 'c',
    }
    rec = Recorder(201, {'iceServers': legacy})
    servers = await turn(rec).generate_ice_servers()
    assert rec.last_json() == {'ttl': 86400}
    assert servers == [IceServer.model_validate(legacy)]
    assert browser_ice_servers(servers) == [
        IceServer(urls=['turn:turn.cloudflare.com:3478'], username='u', credential='c')
    ]


async def test_turn_errors_and_revoke() -> None:
    with pytest.raises(api.UnauthorizedError):
        await turn(Recorder(401, content=b'unauthorized')).generate_ice_servers()
    rec = Recorder(204, content=b'')
    await turn(rec).revoke('user/1')
    assert (rec.last.method, rec.last.url.raw_path.decode()) == (
        'POST',
        '/v1/turn/keys/key-id/credentials/user%2F1/revoke',
    )
    assert rec.last.content == b''
