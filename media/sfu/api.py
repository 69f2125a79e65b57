"""The Calls HTTP API of the embedded SFU (Starlette): routing, auth, body decoding and error mapping."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from media.calls_api import (
    DECODING_ERROR,
    INVALID_PARAMS,
    MAX_TRACKS_PER_REQUEST,
    PAYLOAD_TOO_LARGE,
    CallsApiError,
    CallsModel,
    CallsResponse,
    CloseTracksRequest,
    GenerateIceServersRequest,
    GenerateIceServersResponse,
    GetSessionStateResponse,
    IceServer,
    InvalidRequestError,
    NewSessionRequest,
    NewSessionResponse,
    NotFoundError,
    RateLimitedError,
    RenegotiateRequest,
    ServerError,
    SessionDataChannelState,
    SessionTrackState,
    TracksRequest,
    UnauthorizedError,
    UpdateTracksRequest,
)

from .service import CallsService

logger = logging.getLogger(__name__)

M = TypeVar('M', bound=CallsModel)
Handler = Callable[[Request], Awaitable[Response]]
HEADERS = {'vary': 'Origin'}
# Each session may hold a peer connection (UDP sockets, DTLS state, ~100 KB+): a cap keeps memory and descriptors
# bounded whoever calls (2,000 sessions once took 617 MB and 1,386 descriptors). A page uses two.
MAX_SESSIONS = 500
# A body carries at most one SDP (bounded at 128 KB by sdp_check) plus a list of at most MAX_TRACKS_PER_REQUEST items.
MAX_BODY_BYTES = 256 * 1024


def create_app(service: CallsService) -> Starlette:
    """The ASGI app serving ``/apps/{appId}/...`` and ``/turn/keys/{keyId}/...`` for ``service``."""
    config = service.config

    def app_route(handler: Callable[[Request, str], Awaitable[CallsResponse | Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            async def run() -> CallsResponse | Response:
                service.lifecycle.start()
                if request.path_params['app_id'] != config.app_id:
                    raise NotFoundError('App not found')
                _authorize(request, config.app_secret)
                return await handler(request, request.path_params.get('session_id', ''))

            return await _respond(run)

        return endpoint

    async def new_session(request: Request, _: str) -> Response:
        if len(service.registry.sessions) >= MAX_SESSIONS:
            raise RateLimitedError(f'This SFU holds its maximum of {MAX_SESSIONS} sessions; close some first')
        body = await _body(request)
        offer = None if not body.strip() else _decode(body, NewSessionRequest).session_description
        session_id, answer = await service.new_session(offer)
        return _json(NewSessionResponse(session_id=session_id, session_description=answer), 201)

    async def new_tracks(request: Request, sid: str) -> CallsResponse:
        return await service.new_tracks(sid, _decode(await _body(request), TracksRequest))

    async def renegotiate(request: Request, sid: str) -> CallsResponse:
        return await service.renegotiate(sid, _decode(await _body(request), RenegotiateRequest))

    async def close_tracks(request: Request, sid: str) -> CallsResponse:
        return await service.close_tracks(sid, _decode(await _body(request), CloseTracksRequest))

    async def update_tracks(request: Request, sid: str) -> CallsResponse:
        return await service.update_tracks(sid, _decode(await _body(request), UpdateTracksRequest))

    async def get_session(_: Request, sid: str) -> CallsResponse:
        record = service.session(sid)
        tracks = [
            SessionTrackState(
                location=t.location,
                mid=t.mid,
                track_name=t.track_name,
                session_id=t.session_id,
                status='active' if t.active else 'inactive',
            )
            for t in record.tracks.values()
        ]
        return GetSessionStateResponse(tracks=tracks, data_channels=list[SessionDataChannelState]())

    async def data_channels(_: Request, sid: str) -> CallsResponse:
        service.session(sid)
        raise InvalidRequestError('DataChannels are not supported by the embedded SFU', error_code=INVALID_PARAMS)

    async def turn(request: Request) -> Response:
        async def run() -> Response:
            _authorize(request, config.app_secret)
            body = await _body(request)
            if body.strip():
                _decode(body, GenerateIceServersRequest)
            servers = [IceServer(urls=s.urls, username=s.username, credential=s.credential) for s in config.ice_servers]
            return _json(GenerateIceServersResponse(ice_servers=servers), 201)

        return await _respond(run)

    async def revoke(request: Request) -> Response:
        async def run() -> Response:
            _authorize(request, config.app_secret)
            return Response(status_code=204, headers=HEADERS)

        return await _respond(run)

    base = '/apps/{app_id}/sessions'
    routes = [
        Route(base + '/new', app_route(new_session), methods=['POST']),
        Route(base + '/{session_id}/tracks/new', app_route(new_tracks), methods=['POST']),
        Route(base + '/{session_id}/renegotiate', app_route(renegotiate), methods=['PUT']),
        Route(base + '/{session_id}/tracks/close', app_route(close_tracks), methods=['PUT']),
        Route(base + '/{session_id}/tracks/update', app_route(update_tracks), methods=['PUT']),
        Route(base + '/{session_id}', app_route(get_session), methods=['GET']),
        Route(base + '/{session_id}/datachannels/{op}', app_route(data_channels), methods=['POST', 'PUT']),
        Route('/turn/keys/{key_id}/credentials/generate-ice-servers', turn, methods=['POST']),
        Route('/turn/keys/{key_id}/credentials/{username}/revoke', revoke, methods=['POST']),
    ]
    return Starlette(routes=routes, exception_handlers={404: _no_route, 405: _no_route})


async def _no_route(request: Request, exc: Exception) -> Response:
    """An address or method the API does not have: a Calls-shaped error like every other answer, not Starlette's
    plain-text page (a client reading ``errorCode`` must always find one)."""
    status = getattr(exc, 'status_code', 404)
    error = NotFoundError('Not found') if status == 404 else InvalidRequestError('Method not allowed', status=405)
    return JSONResponse(error.to_response().to_wire(), status_code=status, headers=HEADERS)


async def _respond(run: Callable[[], Awaitable[CallsResponse | Response]]) -> Response:
    try:
        result = await run()
    except CallsApiError as exc:
        return JSONResponse(exc.to_response().to_wire(), status_code=exc.status, headers=HEADERS)
    except Exception:
        logger.exception('embedded SFU request failed')
        error = ServerError('Backend error')
        return JSONResponse(error.to_response().to_wire(), status_code=error.status, headers=HEADERS)
    return result if isinstance(result, Response) else _json(result, 200)


def _json(model: CallsResponse, status: int) -> JSONResponse:
    return JSONResponse(model.to_wire(), status_code=status, headers=HEADERS)


def _authorize(request: Request, secret: str) -> None:
    scheme, _, token = request.headers.get('authorization', '').partition(' ')
    if scheme.lower() != 'bearer' or not secrets.compare_digest(token.strip().encode(), secret.encode()):
        raise UnauthorizedError('App Secret not accepted')


async def _body(request: Request) -> bytes:
    """The request body, refused with 413 payload_too_large past ``MAX_BODY_BYTES`` (by Content-Length, or while
    reading a body sent without one) so that nobody can make the SFU buffer megabytes."""
    declared = request.headers.get('content-length')
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b''.join(chunks)


def _too_large() -> InvalidRequestError:
    return InvalidRequestError(
        f'Request body larger than {MAX_BODY_BYTES} bytes', status=413, error_code=PAYLOAD_TOO_LARGE
    )


def _decode(body: bytes, model: type[M]) -> M:
    """Parse a JSON body whatever its Content-Type; 400 decoding_error naming the bad fields."""
    try:
        data: Any = json.loads(body or b'null')
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: `[` nested thousands deep
        raise InvalidRequestError('Body is not valid JSON', error_code=DECODING_ERROR) from None
    try:
        decoded = model.model_validate(data)
    except (ValidationError, RecursionError) as exc:
        fields = (
            ','.join('.'.join(str(p) for p in e['loc']) or 'body' for e in exc.errors())
            if isinstance(exc, ValidationError)
            else 'body'
        )
        raise InvalidRequestError(f'Body JSON validation error: {fields}', error_code=DECODING_ERROR) from None
    for items in (getattr(decoded, 'tracks', None), getattr(decoded, 'data_channels', None)):
        if isinstance(items, list) and len(items) > MAX_TRACKS_PER_REQUEST:
            raise InvalidRequestError(
                f'Too many items in one request (at most {MAX_TRACKS_PER_REQUEST})', error_code=INVALID_PARAMS
            )
    return decoded
