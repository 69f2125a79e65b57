"""HTTP clients for the Calls SFU API and the TURN credentials API, on an injected `httpx.AsyncClient`.

The same client talks to Cloudflare (`base_url='https://rtc.live.cloudflare.com/v1'`) and to the embedded SFU
(in-process through `httpx.ASGITransport`, or over loopback). Errors are described in `media.calls_api`.

This client does not serialise mutations: the caller must hold one lock per session across the whole exchange,
`renegotiate` included (docs/calls-api.md §5.10).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from media.calls_api import (
    DEFAULT_TURN_TTL,
    CallsApiError,
    CallsModel,
    CallsResponse,
    CallsTimeoutError,
    CallsTransportError,
    CloseDataChannelsRequest,
    CloseTracksRequest,
    CloseTracksResponse,
    DataChannelsRequest,
    DataChannelsResponse,
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
    TracksRequest,
    TracksResponse,
    UnexpectedResponseError,
    UpdateTracksRequest,
    UpdateTracksResponse,
    browser_ice_servers,
    error_from_response,
)

__all__ = ['DEFAULT_TIMEOUT', 'CallsClient', 'TurnClient', 'browser_ice_servers']

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
"""Generous on purpose: a pull can block ~8 s, and operations may wait 5 s for connectivity."""

Params = Mapping[str, str]
R = TypeVar('R', bound=CallsResponse)


class CallsClient:
    """The Calls SFU HTTPS API: one async method per endpoint, typed in and out."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        app_id: str,
        app_secret: str,
        *,
        extra_params: Params | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        """:param http: its base_url is the API base, e.g. `https://rtc.live.cloudflare.com/v1`.
        :param extra_params: query parameters sent on every call (e.g. `{'correlationId': meeting_id}`).
        """
        self._api = _Api(http, app_secret, extra_params, timeout)
        self._app = f'/apps/{quote(app_id, safe="")}'
        self.app_id = app_id

    def __repr__(self) -> str:
        return f'CallsClient(app_id={self.app_id!r}, base_url={str(self._api.http.base_url)!r})'

    async def new_session(
        self,
        offer: SessionDescription | None = None,
        *,
        correlation_id: str | None = None,
        thirdparty: bool = False,
        params: Params | None = None,
    ) -> NewSessionResponse:
        """Create a session. Without an offer no body is sent at all (`{}` would be rejected)."""
        query = dict(params or {})
        if correlation_id is not None:
            query['correlationId'] = correlation_id
        if thirdparty:
            query['thirdparty'] = 'true'
        body = None if offer is None else NewSessionRequest(session_description=offer)
        return await self._api.call('POST', f'{self._app}/sessions/new', NewSessionResponse, body=body, params=query)

    async def new_tracks(
        self, session_id: str, request: TracksRequest, *, params: Params | None = None
    ) -> TracksResponse:
        """Push and/or pull tracks; per-item failures come back in `tracks` (check `item.failed`)."""
        return await self._api.call('POST', self._path(session_id, 'tracks/new'), TracksResponse, request, params)

    async def renegotiate(
        self, session_id: str, answer: SessionDescription, *, params: Params | None = None
    ) -> RenegotiateResponse:
        """Send the client's answer to the SFU's offer."""
        body = RenegotiateRequest(session_description=answer)
        return await self._api.call('PUT', self._path(session_id, 'renegotiate'), RenegotiateResponse, body, params)

    async def close_tracks(
        self, session_id: str, request: CloseTracksRequest, *, params: Params | None = None
    ) -> CloseTracksResponse:
        """Close tracks by mid; `close_track_error` items mean "already gone"."""
        return await self._api.call('PUT', self._path(session_id, 'tracks/close'), CloseTracksResponse, request, params)

    async def update_tracks(
        self, session_id: str, request: UpdateTracksRequest, *, params: Params | None = None
    ) -> UpdateTracksResponse:
        """Change simulcast layer or source of existing transceivers (receiving session's mids)."""
        path = self._path(session_id, 'tracks/update')
        return await self._api.call('PUT', path, UpdateTracksResponse, request, params)

    async def get_session(self, session_id: str, *, params: Params | None = None) -> GetSessionStateResponse:
        """The session's tracks and DataChannels with their status."""
        return await self._api.call('GET', self._path(session_id), GetSessionStateResponse, None, params)

    async def establish_data_channel(
        self, session_id: str, request: EstablishDataChannelRequest, *, params: Params | None = None
    ) -> EstablishDataChannelResponse:
        """Set up the session's SCTP transport (`server-events`)."""
        path = self._path(session_id, 'datachannels/establish')
        return await self._api.call('POST', path, EstablishDataChannelResponse, request, params)

    async def new_data_channels(
        self, session_id: str, request: DataChannelsRequest, *, params: Params | None = None
    ) -> DataChannelsResponse:
        """Publish or subscribe DataChannels."""
        path = self._path(session_id, 'datachannels/new')
        return await self._api.call('POST', path, DataChannelsResponse, request, params)

    async def update_data_channels(
        self, session_id: str, request: DataChannelsRequest, *, params: Params | None = None
    ) -> DataChannelsResponse:
        """Change subscribed DataChannels (e.g. `canReply`)."""
        path = self._path(session_id, 'datachannels/update')
        return await self._api.call('PUT', path, DataChannelsResponse, request, params)

    async def close_data_channels(
        self, session_id: str, request: CloseDataChannelsRequest, *, params: Params | None = None
    ) -> DataChannelsResponse:
        """Close DataChannels by the ids allocated on this session."""
        path = self._path(session_id, 'datachannels/close')
        return await self._api.call('PUT', path, DataChannelsResponse, request, params)

    def _path(self, session_id: str, tail: str = '') -> str:
        path = f'{self._app}/sessions/{quote(session_id, safe="")}'
        return f'{path}/{tail}' if tail else path


class TurnClient:
    """The TURN credentials API (bearer = the TURN key token, not the app secret)."""

    def __init__(
        self, http: httpx.AsyncClient, key_id: str, key_token: str, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT
    ) -> None:
        """:param http: its base_url is the API base, e.g. `https://rtc.live.cloudflare.com/v1`."""
        self._api = _Api(http, key_token, None, timeout)
        self._key = f'/turn/keys/{quote(key_id, safe="")}/credentials'
        self.key_id = key_id

    def __repr__(self) -> str:
        return f'TurnClient(key_id={self.key_id!r}, base_url={str(self._api.http.base_url)!r})'

    async def generate_ice_servers(self, ttl: int = DEFAULT_TURN_TTL) -> list[IceServer]:
        """Fresh STUN/TURN servers valid for `ttl` seconds; pass through `browser_ice_servers` for browsers."""
        body = GenerateIceServersRequest(ttl=ttl)
        path = f'{self._key}/generate-ice-servers'
        return (await self._api.call('POST', path, GenerateIceServersResponse, body, None)).ice_servers

    async def revoke(self, username: str) -> None:
        """Revoke the credential with this username (existing TURN allocations drop shortly after)."""
        await self._api.call('POST', f'{self._key}/{quote(username, safe="")}/revoke', CallsResponse, None, None)


class _Api:
    """Sends one request and turns the response into a model or a CallsError."""

    def __init__(
        self, http: httpx.AsyncClient, secret: str, extra_params: Params | None, timeout: httpx.Timeout | float
    ):
        self.http = http
        self._secret = secret
        self._extra_params = dict(extra_params or {})
        self._timeout = timeout

    async def call(self, method: str, path: str, model: type[R], body: CallsModel | None, params: Params | None) -> R:
        headers = {'Authorization': f'Bearer {self._secret}'}
        content: bytes | None = None
        if body is not None:
            content = body.model_dump_json(exclude_none=True).encode()
            headers['Content-Type'] = 'application/json'
        query = {**self._extra_params, **(params or {})}
        try:
            response = await self.http.request(
                method, path, content=content, headers=headers, params=query or None, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise CallsTimeoutError(f'{method} {path}: timed out ({type(exc).__name__})') from exc
        except httpx.RequestError as exc:
            raise CallsTransportError(f'{method} {path}: {type(exc).__name__}: {self._redact(str(exc))}') from exc
        return self._parse(method, path, response, model)

    def _parse(self, method: str, path: str, response: httpx.Response, model: type[R]) -> R:
        status = response.status_code
        data: object
        try:
            data = response.json() if response.content.strip() else {}
        except ValueError:
            data = None
        ok = 200 <= status < 300
        if (isinstance(data, dict) and data.get('errorCode')) or not ok:
            error = self._error(status, data, response.text)
            log.debug('%s %s -> %r', method, path, error)
            raise error
        if not isinstance(data, dict):
            raise UnexpectedResponseError(
                f'{method} {path}: body is not a JSON object: {self._redact(response.text[:200])!r}', status=status
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            detail = self._redact(str(exc.errors(include_url=False, include_input=False)))
            raise UnexpectedResponseError(f'{method} {path}: unexpected body: {detail}', status=status) from None

    def _error(self, status: int, data: object, text: str) -> CallsApiError:
        code: str | None = None
        description = text[:200]
        if isinstance(data, dict):
            raw_code, raw_description = data.get('errorCode'), data.get('errorDescription')
            code = str(raw_code) if raw_code else None
            if raw_description is not None:
                description = str(raw_description)
        return error_from_response(status, code, self._redact(description))

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, '[redacted]') if self._secret else text
