from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from media import calls_api as api
from media.calls_api import (
    CallsApiError,
    CallsModel,
    CloseDataChannelsRequest,
    CloseTrackResult,
    CloseTracksRequest,
    CloseTracksResponse,
    DataChannelObject,
    DataChannelResult,
    DataChannelsRequest,
    DataChannelsResponse,
    ErrorResponse,
    EstablishDataChannelRequest,
    EstablishDataChannelResponse,
    GenerateIceServersRequest,
    GenerateIceServersResponse,
    GetSessionStateResponse,
    IceServer,
    NewSessionRequest,
    NewSessionResponse,
    RenegotiateRequest,
    RenegotiateResponse,
    SessionDescription,
    TrackLocator,
    TrackObject,
    TrackResult,
    TracksRequest,
    TracksResponse,
    UpdateTracksRequest,
    UpdateTracksResponse,
    browser_ice_servers,
    error_from_response,
)

P = '2a45361d5fd7cc14eface0587c276c94'

# Every JSON example in docs/calls-api.md (section in the comment), paired with the model that carries it.
EXAMPLES: list[tuple[type[CallsModel], str]] = [
    # §3.1 sessions/new
    (NewSessionResponse, '{"sessionId": "e017a2629c754fedc1f7d8587e06d126"}'),
    (NewSessionRequest, '{"sessionDescription": {"type": "offer", "sdp": "<SDP>"}}'),
    (NewSessionResponse, '{"sessionId": "x", "sessionDescription": {"type": "answer", "sdp": "y"}}'),
    (
        ErrorResponse,
        '{"errorCode":"decoding_error","errorDescription":"Body JSON validation error: sessionDescription"}',
    ),
    # §3.2 variant A
    (
        TracksRequest,
        '{"sessionDescription": {"type": "offer", "sdp": "<client offer>"},'
        ' "tracks": [{"location": "local", "mid": "0", "trackName": "camera"},'
        ' {"location": "local", "mid": "1", "trackName": "mic"}]}',
    ),
    (
        TracksResponse,
        '{"requiresImmediateRenegotiation": false,'
        ' "tracks": [{"trackName": "camera", "mid": "0"}, {"trackName": "mic", "mid": "1"}],'
        ' "sessionDescription": {"type": "answer", "sdp": "<SFU answer>"}}',
    ),
    (
        TracksResponse,
        '{"requiresImmediateRenegotiation":false,"sessionDescription":{"type":"answer","sdp":"…"},'
        '"tracks":[{"mid":"1","trackName":"camera-4f7a…"}]}',
    ),
    # variant B, C, A'
    (TracksRequest, '{"autoDiscover": true, "sessionDescription": {"type": "offer", "sdp": "…"}}'),
    (TracksRequest, '{"tracks": [{"location": "local", "trackName": "mic-1", "kind": "audio"}]}'),
    (
        TracksRequest,
        '{"sessionDescription": {"type": "offer", "sdp": "o"}, "tracks": [{"location": "local", "mid": "0",'
        ' "trackName": "mic-1", "bidirectionalMediaStream": true, "kind": "audio"}]}',
    ),
    # variant D
    (
        TracksRequest,
        '{"tracks": [{"location": "remote", "sessionId": "2a45361d5fd7cc14eface0587c276c94",'
        ' "trackName": "2e037563-a35d-4bf6-a9ee-2d474cbb9a58"}]}',
    ),
    (
        TracksResponse,
        '{"requiresImmediateRenegotiation": true,'
        ' "tracks": [{"sessionId": "2a45361d5fd7cc14eface0587c276c94",'
        ' "trackName": "2e037563-a35d-4bf6-a9ee-2d474cbb9a58", "mid": "7"}],'
        ' "sessionDescription": {"type": "offer", "sdp": "<SFU offer>"}}',
    ),
    # variant E, F, G
    (
        TracksRequest,
        '{"sessionDescription": {"type": "offer", "sdp": "<offer with recvonly m-lines>"},'
        ' "tracks": [{"location": "remote", "sessionId": "<pub>", "trackName": "<name>", "kind": "audio"}]}',
    ),
    (
        TracksRequest,
        '{"tracks": [{"location": "remote", "sessionId": "<other>", "trackName": "ai-generated-voice",'
        ' "mid": "#user-mic"}]}',
    ),
    (
        TracksRequest,
        '{"tracks": [{"location": "remote", "sessionId": "…", "trackName": "simulcast-video-track", "simulcast":'
        ' {"preferredRid": "h", "priorityOrdering": "asciibetical", "ridNotAvailable": "asciibetical"}}]}',
    ),
    # per-track failures (pion #2989 mixed; all failed)
    (
        TracksResponse,
        '{"requiresImmediateRenegotiation": true, "sessionDescription": {"type": "offer", "sdp": "o"},'
        ' "tracks": [{"sessionId": "s", "trackName": "a", "mid": "", "errorCode": "internal_error",'
        ' "errorDescription": "Backend error"}, {"sessionId": "s", "trackName": "b", "mid": "0"}]}',
    ),
    (
        TracksResponse,
        '{"requiresImmediateRenegotiation": false, "tracks": [{"sessionId": "s", "trackName": "nope", "mid": "",'
        ' "errorCode": "not_found_track_error", "errorDescription": "Track not found on remote peer. Make sure the'
        ' publisher peer is connected and sending packets for this track"}]}',
    ),
    (ErrorResponse, '{"errorCode": "decoding_error", "errorDescription": "JSON body validation error: 0,1"}'),
    # §3.3 renegotiate
    (RenegotiateRequest, '{"sessionDescription": {"type": "answer", "sdp": "<client answer>"}}'),
    (RenegotiateResponse, '{}'),
    # §3.4 tracks/close
    (
        CloseTracksResponse,
        '{"sessionDescription":{"type":"answer","sdp":"…"},"requiresImmediateRenegotiation":false,"tracks":[{"mid":"7"}]}',
    ),
    (CloseTracksResponse, '{"requiresImmediateRenegotiation":false,"tracks":[{"mid":"0"},{"mid":"1"},{"mid":"2"}]}'),
    (CloseTracksRequest, '{"tracks":[{"mid":"1"}],"force":true}'),
    (
        CloseTracksResponse,
        '{"requiresImmediateRenegotiation":false,"tracks":[{"mid":"7","errorCode":"close_track_error",'
        '"errorDescription":"Track doesn\'t exist or was already closed"}]}',
    ),
    (
        CloseTracksResponse,
        '{"requiresImmediateRenegotiation":false,"tracks":[{"mid":"0"},{"mid":"1","errorCode":"close_track_error"},'
        '{"mid":"2","errorCode":"internal_error","errorDescription":"Backend error"}]}',
    ),
    (CloseTracksRequest, '{"tracks":[{"mid":"1"}],"sessionDescription":{"type":"offer","sdp":"o"},"force":false}'),
    # §3.5 tracks/update
    (
        UpdateTracksRequest,
        '{"tracks":[{"location":"remote","sessionId":"2a45…","trackName":"simulcast-track","mid":"8","simulcast":'
        '{"preferredRid":"h","priorityOrdering":"asciibetical","ridNotAvailable":"asciibetical"}}]}',
    ),
    (
        UpdateTracksRequest,
        '{"tracks":[{"location":"remote","sessionId":"2a45…","trackName":"other-track-name","mid":"7"}]}',
    ),
    (
        UpdateTracksResponse,
        '{"requiresImmediateRenegotiation":false,"tracks":[{"mid":"7","sessionId":"2a45…","trackName":"new-track-name"}]}',
    ),
    # §3.6 GET session
    (
        GetSessionStateResponse,
        '{"tracks": [{"location": "local",  "mid": "2", "trackName": "1a03…", "status": "active"},'
        ' {"location": "remote", "mid": "7", "sessionId": "2a45…", "trackName": "2e03…", "status": "active"}],'
        ' "dataChannels": [{"location": "remote", "sessionId": "2a45…", "dataChannelName": "controls", "id": 2,'
        ' "status": "active"}]}',
    ),
    # §3.7-3.10 datachannels
    (EstablishDataChannelRequest, '{"dataChannel": {"location": "remote", "dataChannelName": "server-events"}}'),
    (
        EstablishDataChannelResponse,
        '{"requiresImmediateRenegotiation": true, "dataChannel": {"dataChannelName": "server-events", "id": 0},'
        ' "sessionDescription": {"type": "offer", "sdp": "o"}}',
    ),
    (DataChannelsRequest, '{"dataChannels":[{"location":"local","dataChannelName":"channel-one"}]}'),
    (
        DataChannelsRequest,
        '{"dataChannels":[{"location":"remote","sessionId":"<publisher>","dataChannelName":"channel-one"}]}',
    ),
    (DataChannelsResponse, '{"dataChannels":[{"dataChannelName":"…","location":"local","id":3}]}'),
    (
        DataChannelsResponse,
        '{"dataChannels":[{"sessionId":"…","location":"remote","dataChannelName":"…","id":4}]}',
    ),
    (
        DataChannelsRequest,
        '{"dataChannels":[{"location":"remote","sessionId":"<pub>","dataChannelName":"…","canReply":true}]}',
    ),
    (
        DataChannelsResponse,
        '{"dataChannels":[{"sessionId":"…","location":"remote","dataChannelName":"…","canReply":true,"id":4}]}',
    ),
    (CloseDataChannelsRequest, '{"dataChannels": [{"id": 2}, {"id": 3}]}'),
    (DataChannelsResponse, '{"dataChannels":[{"location":"remote","sessionId":"…","dataChannelName":"…","id":2}]}'),
    # §6 TURN
    (GenerateIceServersRequest, '{"ttl": 86400}'),
    (GenerateIceServersRequest, '{"ttl": 600}'),
    (
        GenerateIceServersResponse,
        '{"iceServers": [{"urls": ["stun:stun.cloudflare.com:3478"]},'
        ' {"urls": ["turn:turn.cloudflare.com:3478?transport=udp", "turn:turn.cloudflare.com:443?transport=udp",'
        ' "turn:turn.cloudflare.com:3478?transport=tcp", "turn:turn.cloudflare.com:80?transport=tcp",'
        ' "turns:turn.cloudflare.com:5349?transport=tcp", "turns:turn.cloudflare.com:443?transport=tcp"],'
        ' "username": "bc91b6", "credential": "ebd71f"}]}',
    ),
    (
        GenerateIceServersResponse,
        '{"iceServers":[{"urls":["stun:stun.cloudflare.com:3478","stun:stun.cloudflare.com:53"]}]}',
    ),
    (GenerateIceServersResponse, '{"iceServers": [{"urls": "stun:stun.cloudflare.com:3478"}]}'),
    # §11 contract-test bodies not shown above
    (
        TracksRequest,
        '{"sessionDescription":{"type":"offer","sdp":"o"},"tracks":[{"location":"local","mid":"0","trackName":"a"},'
        '{"location":"local","mid":"1","trackName":"v"}]}',
    ),
    (
        TracksRequest,
        f'{{"tracks":[{{"location":"remote","sessionId":"{P}","trackName":"a"}},'
        f'{{"location":"remote","sessionId":"{P}","trackName":"v"}}]}}',
    ),
    (
        UpdateTracksRequest,
        f'{{"tracks":[{{"location":"remote","sessionId":"{P}","trackName":"v","mid":"3","simulcast":'
        '{"preferredRid":"h"}}]}',
    ),
    (DataChannelsRequest, '{"dataChannels":[{"location":"local","dataChannelName":"chat"}]}'),
    (CloseDataChannelsRequest, '{"dataChannels":[{"id":4}]}'),
]


@pytest.mark.parametrize(('model', 'text'), EXAMPLES)
def test_round_trip_of_documented_example(model: type[CallsModel], text: str) -> None:
    original = json.loads(text)
    assert model.model_validate_json(text).to_wire() == original
    assert model.model_validate(original).to_wire() == original


def test_legacy_single_object_ice_servers_are_wrapped() -> None:
    legacy = {'iceServers': {'urls': ['stun:stun.cloudflare.com:3478'], 'username': 'u', 'credential': 'c'}}
    response = GenerateIceServersResponse.model_validate(legacy)
    assert response.to_wire() == {'iceServers': [legacy['iceServers']]}


def test_snake_case_construction_serialises_camel_case_and_keeps_false_and_zero() -> None:
    request = TracksRequest(
        session_description=SessionDescription(type='offer', sdp='v=0\r\n'),
        tracks=[TrackObject(location='local', mid='0', track_name='cam', bidirectional_media_stream=False)],
        auto_discover=False,
    )
    assert request.to_wire() == {
        'sessionDescription': {'type': 'offer', 'sdp': 'v=0\r\n'},
        'tracks': [{'location': 'local', 'mid': '0', 'trackName': 'cam', 'bidirectionalMediaStream': False}],
        'autoDiscover': False,
    }
    assert DataChannelObject(max_retransmits=0).to_wire() == {'maxRetransmits': 0}
    assert CloseTracksRequest(tracks=[api.CloseTrackObject(mid='1')]).to_wire() == {
        'tracks': [{'mid': '1'}],
        'force': False,
    }


def test_unknown_fields_are_ignored() -> None:
    response = TracksResponse.model_validate(
        {'tracks': [{'mid': '1', 'trackName': 'a', 'kind': 'audio', 'futureField': 1}], 'newTopLevel': {'x': 1}}
    )
    assert response.to_wire() == {'tracks': [{'mid': '1', 'trackName': 'a', 'kind': 'audio'}]}


@pytest.mark.parametrize(
    ('model', 'data'),
    [
        (NewSessionRequest, {}),  # CT-04: a body without sessionDescription is a decoding error
        (SessionDescription, {'type': 'pranswer', 'sdp': 'x'}),
        (SessionDescription, {'type': 'offer'}),
        (TracksRequest, {'tracks': [{'mid': 0}]}),
        (TracksRequest, {'tracks': [{'location': 'both'}]}),
        (TracksRequest, {'tracks': [{'bidirectionalMediaStream': 'true'}]}),
        (TracksRequest, {'autoDiscover': 1}),
        (TracksRequest, {'tracks': {'mid': '0'}}),
        (TracksRequest, {'tracks': [{'simulcast': {'priorityOrdering': 'random'}}]}),
        (CloseTracksRequest, {'tracks': [], 'force': True}),
        (CloseTracksRequest, {'tracks': [{'mid': ''}], 'force': True}),
        (CloseTracksRequest, {'tracks': [{'mid': '1'}], 'force': 'yes'}),
        (UpdateTracksRequest, {}),
        (RenegotiateRequest, {'sessionDescription': None}),
        (DataChannelsRequest, {'dataChannels': [{'maxRetransmits': 1, 'maxPacketLifeTime': 100}]}),
        (DataChannelsRequest, {'dataChannels': [{'maxRetransmits': -1}]}),
        (DataChannelsRequest, {'dataChannels': [{'id': '2'}]}),
        (CloseDataChannelsRequest, {'dataChannels': []}),
        (GenerateIceServersRequest, {'ttl': 172801}),
        (GenerateIceServersRequest, {'ttl': 0}),
        (GenerateIceServersRequest, {'ttl': '600'}),
        (NewSessionResponse, {}),
        (GetSessionStateResponse, {'tracks': [{'status': 'gone'}]}),
    ],
)
def test_badly_typed_bodies_are_rejected(model: type[CallsModel], data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_bad_json_is_rejected() -> None:
    with pytest.raises(ValidationError):
        TracksRequest.model_validate_json('{"tracks": [')


def test_generate_ice_servers_request_defaults_to_a_day() -> None:
    assert GenerateIceServersRequest().to_wire() == {'ttl': 86400}


@pytest.mark.parametrize(
    ('item', 'failed'),
    [
        ({'trackName': 'a', 'mid': '0'}, False),
        ({'trackName': 'a', 'mid': ''}, True),
        ({'trackName': 'a', 'mid': '3', 'errorCode': 'internal_error'}, True),
        ({'trackName': 'a'}, False),
    ],
)
def test_track_result_failed(item: dict[str, str], failed: bool) -> None:
    assert TrackResult.model_validate(item).failed is failed


def test_close_and_data_channel_results_failed() -> None:
    assert not CloseTrackResult(mid='1').failed
    assert CloseTrackResult(mid='1', error_code=api.CLOSE_TRACK_ERROR).failed
    assert not DataChannelResult(id=2).failed
    assert DataChannelResult(id=2, error_code=api.NOT_FOUND_TRACK_ERROR).failed


def test_ice_server_url_list_and_browser_filter() -> None:
    servers = [
        IceServer(urls='stun:stun.cloudflare.com:53'),
        IceServer(urls=['stun:stun.cloudflare.com:3478', 'stun:stun.cloudflare.com:53']),
        IceServer(
            urls=[
                'turn:turn.cloudflare.com:3478?transport=udp',
                'turn:turn.cloudflare.com:53?transport=udp',
                'turns:turn.cloudflare.com:5349?transport=tcp',
                'turn:turn.cloudflare.com:5353?transport=udp',
                'stun:[2001:db8::53]:3478',
                'stun:stun.example.org',
            ],
            username='u',
            credential='c',
        ),
    ]
    assert servers[0].url_list == ['stun:stun.cloudflare.com:53']
    assert [s.to_wire() for s in browser_ice_servers(servers)] == [
        {'urls': ['stun:stun.cloudflare.com:3478']},
        {
            'urls': [
                'turn:turn.cloudflare.com:3478?transport=udp',
                'turns:turn.cloudflare.com:5349?transport=tcp',
                'turn:turn.cloudflare.com:5353?transport=udp',
                'stun:[2001:db8::53]:3478',
                'stun:stun.example.org',
            ],
            'username': 'u',
            'credential': 'c',
        },
    ]
    assert servers[1].url_list == ['stun:stun.cloudflare.com:3478', 'stun:stun.cloudflare.com:53']  # not mutated


def test_track_locator() -> None:
    locator = TrackLocator.parse(f'{P}/camera/1')
    assert locator == TrackLocator(P, 'camera/1')
    assert str(locator) == f'{P}/camera/1'
    assert TrackLocator.parse(str(locator)) == locator
    assert locator.remote_track(kind='video').to_wire() == {
        'location': 'remote',
        'sessionId': P,
        'trackName': 'camera/1',
        'kind': 'video',
    }


@pytest.mark.parametrize('value', ['', 'no-slash', f'{P}/', f'/{P}'])
def test_track_locator_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError, match='invalid track locator'):
        TrackLocator.parse(value)


def test_track_locator_rejects_slash_in_session_id() -> None:
    with pytest.raises(ValueError, match='invalid track locator'):
        TrackLocator('a/b', 'c')


@pytest.mark.parametrize(
    ('status', 'code', 'expected'),
    [
        (401, 'unauthorized', api.UnauthorizedError),
        (403, 'unauthorized', api.UnauthorizedError),
        (401, None, api.UnauthorizedError),
        (404, 'not_found', api.NotFoundError),
        (404, None, api.NotFoundError),
        (425, 'session_error', api.SessionNotReadyError),
        (410, 'session_error', api.SessionGoneError),
        (410, None, api.SessionGoneError),
        (400, 'session_error', api.SessionGoneError),
        (406, None, api.NegotiationConflictError),
        (406, 'invalid_session_description', api.NegotiationConflictError),
        (406, 'invalid_params', api.InvalidRequestError),
        (400, 'decoding_error', api.InvalidRequestError),
        (400, 'invalid_session_description', api.InvalidRequestError),
        (400, None, api.InvalidRequestError),
        (413, 'payload_too_large', api.InvalidRequestError),
        (200, 'decoding_error', api.InvalidRequestError),
        (429, None, api.RateLimitedError),
        (500, None, api.ServerError),
        (503, 'temporarily_unavailable_error', api.ServerError),
        (200, 'internal_error', api.ServerError),
        (418, None, CallsApiError),
        (200, 'brand_new_error', CallsApiError),
    ],
)
def test_error_from_response_picks_subclass(status: int, code: str | None, expected: type[CallsApiError]) -> None:
    error = error_from_response(status, code, 'desc')
    assert type(error) is expected
    assert (error.status, error.error_code, error.description) == (status, code, 'desc')


def test_api_error_defaults_str_repr_and_response_body() -> None:
    error = api.SessionGoneError('Session expired')
    assert (error.status, error.error_code) == (410, 'session_error')
    assert str(error) == 'HTTP 410 session_error: Session expired'
    assert repr(error) == "SessionGoneError(status=410, error_code='session_error', description='Session expired')"
    assert error.to_response().to_wire() == {'errorCode': 'session_error', 'errorDescription': 'Session expired'}
    bare = CallsApiError(status=500, error_code=None)
    assert str(bare) == 'HTTP 500 (no errorCode): '
    assert bare.to_response().to_wire() == {}
    assert api.RateLimitedError().error_code is None
    assert api.UnexpectedResponseError().status == 502


def test_retryable_flags() -> None:
    assert api.CallsTransportError('x').retryable
    assert api.CallsTimeoutError('x').retryable
    assert api.ServerError().retryable
    assert api.SessionNotReadyError().retryable
    assert api.RateLimitedError().retryable
    assert not api.SessionGoneError().retryable
    assert not api.NegotiationConflictError().retryable
    assert not api.InvalidRequestError().retryable
    assert issubclass(api.CallsTimeoutError, api.CallsError)
    assert issubclass(api.UnauthorizedError, api.CallsError)
