"""Cloudflare Realtime SFU ("Calls") wire types, error codes and error hierarchy. No I/O.

Shared by `media.calls_client` (which sends requests and parses responses) and the embedded SFU in `media.sfu`
(which parses requests and builds responses). The contract is `docs/calls-api.md`.

Models use snake_case attributes and speak camelCase on the wire: `model_validate` / `model_validate_json` accept
either spelling, and `to_wire()` produces camelCase without the absent fields. Parsing is strict (a string is never
coerced to a bool, an int never to a string) so the SFU gets a `pydantic.ValidationError` for a badly typed body.
Unknown fields are ignored. Absent fields are `None` and are left out when serialising.

Exceptions:

    CallsError
     ├── CallsTransportError            network failure, no usable response (retryable)
     │    └── CallsTimeoutError
     └── CallsApiError                  non-2xx status or top-level errorCode; keeps status, error_code, description
          ├── UnauthorizedError         401 unauthorized
          ├── NotFoundError             404 not_found (the app, not a track)
          ├── InvalidRequestError       400/413 decoding_error, invalid_session_description, invalid_params, ...
          ├── NegotiationConflictError  406 a mutation overlapped an unfinished SDP exchange on the session
          ├── SessionNotReadyError      425 session_error: the PeerConnection is not connected yet (retryable)
          ├── SessionGoneError          410 session_error: expired or closed; replace the session
          ├── RateLimitedError          429 (retryable)
          ├── ServerError               5xx, internal_error and other service errors (retryable)
          └── UnexpectedResponseError   a 2xx body that is not the expected JSON shape

Per-item failures inside `tracks[]` / `dataChannels[]` of a 200 response are not exceptions: check `item.failed`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

# --- errorCode values (docs/calls-api.md §4) -------------------------------------------------------------------
UNAUTHORIZED = 'unauthorized'
NOT_FOUND = 'not_found'
DECODING_ERROR = 'decoding_error'
INVALID_PARAMS = 'invalid_params'
PAYLOAD_TOO_LARGE = 'payload_too_large'
SESSION_ERROR = 'session_error'
INVALID_SESSION_DESCRIPTION = 'invalid_session_description'
NOT_FOUND_TRACK_ERROR = 'not_found_track_error'
EMPTY_TRACK_ERROR = 'empty_track_error'
REPEATED_LOCAL_TRACK_ERROR = 'repeated_local_track_error'
UPDATE_TRACK_ERROR = 'update_track_error'
CLOSE_TRACK_ERROR = 'close_track_error'
RETRYABLE_TRANSIENT_ERROR = 'retryable_transient_error'
TEMPORARILY_UNAVAILABLE_ERROR = 'temporarily_unavailable_error'
TRANSPORT_UNAVAILABLE_ERROR = 'transport_unavailable_error'
BACKEND_ERROR = 'backend_error'
INTERNAL_ERROR = 'internal_error'

SERVICE_ERROR_CODES = frozenset(
    {
        RETRYABLE_TRANSIENT_ERROR,
        TEMPORARILY_UNAVAILABLE_ERROR,
        TRANSPORT_UNAVAILABLE_ERROR,
        BACKEND_ERROR,
        INTERNAL_ERROR,
    }
)
"""Service-side failures; retry with backoff (top level or per item)."""

MAX_TRACKS_PER_REQUEST = 64
MAX_TURN_TTL = 172800  # 48 h
DEFAULT_TURN_TTL = 86400

Location = Literal['local', 'remote']
SdpType = Literal['offer', 'answer']
RidOrdering = Literal['none', 'asciibetical']
ResourceStatus = Literal['active', 'inactive', 'initializing']


class CallsModel(BaseModel):
    """Base of every Calls wire type: strict, camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        strict=True,
        extra='ignore',
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready camelCase dict, with absent (None) fields left out."""
        return self.model_dump(mode='json', exclude_none=True)


class CallsResponse(CallsModel):
    """Base of every response body: any of them may carry a top-level errorCode."""

    error_code: str | None = None
    error_description: str | None = None


class ErrorResponse(CallsResponse):
    """A body that carries only the top-level error fields."""


# --- shared schemas (§2) ---------------------------------------------------------------------------------------
class SessionDescription(CallsModel):
    """An SDP offer or answer."""

    sdp: str
    type: SdpType


class Simulcast(CallsModel):
    """Simulcast preferences of a pulled track."""

    preferred_rid: str | None = None
    priority_ordering: RidOrdering | None = None
    rid_not_available: RidOrdering | None = None


class TrackObject(CallsModel):
    """A track in a request: local = push (publish), remote = pull (subscribe)."""

    location: Location | None = None
    mid: str | None = None
    session_id: str | None = None
    track_name: str | None = None
    bidirectional_media_stream: bool | None = None
    kind: str | None = None
    simulcast: Simulcast | None = None


class TrackResult(TrackObject):
    """A track in a response; a failed item has an errorCode and/or `mid == ''`."""

    error_code: str | None = None
    error_description: str | None = None

    @property
    def failed(self) -> bool:
        """True when this item did not succeed."""
        return self.error_code is not None or self.mid == ''


class SessionTrackState(TrackObject):
    """A track as listed by GET session, with its status."""

    status: ResourceStatus | None = None


class CloseTrackObject(CallsModel):
    """A track to close, by its mid on the session in the URL."""

    mid: str = Field(min_length=1)


class CloseTrackResult(CallsModel):
    """The outcome of closing one mid."""

    mid: str
    error_code: str | None = None
    error_description: str | None = None

    @property
    def failed(self) -> bool:
        """True when this item did not succeed (`close_track_error` means it was already gone)."""
        return self.error_code is not None


class DataChannelObject(CallsModel):
    """A DataChannel in a request: local = publish, remote = subscribe."""

    location: Location | None = None
    session_id: str | None = None
    data_channel_name: str | None = None
    ordered: bool | None = None
    max_retransmits: int | None = Field(default=None, ge=0)
    max_packet_life_time: int | None = Field(default=None, ge=0)
    wait_for_ack: bool | None = None
    can_reply: bool | None = None
    id: int | None = None

    @model_validator(mode='after')
    def _one_reliability_limit(self) -> Self:
        if self.max_retransmits is not None and self.max_packet_life_time is not None:
            raise ValueError('maxRetransmits and maxPacketLifeTime are mutually exclusive')
        return self


class DataChannelResult(DataChannelObject):
    """A DataChannel in a response; a failed item has an errorCode."""

    error_code: str | None = None
    error_description: str | None = None

    @property
    def failed(self) -> bool:
        """True when this item did not succeed."""
        return self.error_code is not None


class SessionDataChannelState(DataChannelObject):
    """A DataChannel as listed by GET session, with its status."""

    status: ResourceStatus | None = None


class CloseDataChannelObject(CallsModel):
    """A DataChannel to close, by the id allocated on the session in the URL."""

    id: int = Field(ge=0)


# --- sessions/new (§3.1) ---------------------------------------------------------------------------------------
class NewSessionRequest(CallsModel):
    """Body of `POST sessions/new` when an initial offer is sent (otherwise send no body at all)."""

    session_description: SessionDescription


class NewSessionResponse(CallsResponse):
    """Response of `POST sessions/new` (201)."""

    session_id: str
    session_description: SessionDescription | None = None


# --- tracks/new (§3.2) -----------------------------------------------------------------------------------------
class TracksRequest(CallsModel):
    """Body of `POST sessions/{id}/tracks/new`."""

    session_description: SessionDescription | None = None
    tracks: list[TrackObject] | None = None
    auto_discover: bool | None = None


class TracksResponse(CallsResponse):
    """Response of `POST sessions/{id}/tracks/new`."""

    requires_immediate_renegotiation: bool | None = None
    session_description: SessionDescription | None = None
    tracks: list[TrackResult] | None = None


# --- renegotiate (§3.3) ----------------------------------------------------------------------------------------
class RenegotiateRequest(CallsModel):
    """Body of `PUT sessions/{id}/renegotiate`: the client's answer to an SFU offer."""

    session_description: SessionDescription


class RenegotiateResponse(CallsResponse):
    """Response of `PUT sessions/{id}/renegotiate` (`{}` on success)."""

    session_description: SessionDescription | None = None


# --- tracks/close (§3.4) ---------------------------------------------------------------------------------------
class CloseTracksRequest(CallsModel):
    """Body of `PUT sessions/{id}/tracks/close`; force=False needs the client's offer."""

    tracks: list[CloseTrackObject] = Field(min_length=1)
    force: bool = False
    session_description: SessionDescription | None = None


class CloseTracksResponse(CallsResponse):
    """Response of `PUT sessions/{id}/tracks/close` (an answer only when force=False)."""

    requires_immediate_renegotiation: bool | None = None
    session_description: SessionDescription | None = None
    tracks: list[CloseTrackResult] | None = None


# --- tracks/update (§3.5) --------------------------------------------------------------------------------------
class UpdateTracksRequest(CallsModel):
    """Body of `PUT sessions/{id}/tracks/update` (simulcast layer or source swap)."""

    tracks: list[TrackObject]
    session_description: SessionDescription | None = None


class UpdateTracksResponse(CallsResponse):
    """Response of `PUT sessions/{id}/tracks/update`."""

    requires_immediate_renegotiation: bool | None = None
    session_description: SessionDescription | None = None
    tracks: list[TrackResult] | None = None


# --- GET session (§3.6) ----------------------------------------------------------------------------------------
class GetSessionStateResponse(CallsResponse):
    """Response of `GET sessions/{id}`."""

    tracks: list[SessionTrackState] | None = None
    data_channels: list[SessionDataChannelState] | None = None


# --- datachannels/* (§3.7-3.10) --------------------------------------------------------------------------------
class EstablishDataChannelRequest(CallsModel):
    """Body of `POST sessions/{id}/datachannels/establish`."""

    data_channel: DataChannelObject
    session_description: SessionDescription | None = None


class EstablishDataChannelResponse(CallsResponse):
    """Response of `POST sessions/{id}/datachannels/establish`."""

    requires_immediate_renegotiation: bool | None = None
    data_channel: DataChannelResult | None = None
    session_description: SessionDescription | None = None


class DataChannelsRequest(CallsModel):
    """Body of `POST datachannels/new` and `PUT datachannels/update`."""

    data_channels: list[DataChannelObject]


class CloseDataChannelsRequest(CallsModel):
    """Body of `PUT sessions/{id}/datachannels/close`."""

    data_channels: list[CloseDataChannelObject] = Field(min_length=1)


class DataChannelsResponse(CallsResponse):
    """Response of `datachannels/new`, `datachannels/update` and `datachannels/close`."""

    data_channels: list[DataChannelResult] | None = None


# --- TURN (§6) -------------------------------------------------------------------------------------------------
class IceServer(CallsModel):
    """One RTCIceServer entry, as passed to an RTCPeerConnection."""

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None

    @property
    def url_list(self) -> list[str]:
        """`urls` as a list, whichever form the server used."""
        return [self.urls] if isinstance(self.urls, str) else list(self.urls)


class GenerateIceServersRequest(CallsModel):
    """Body of `POST turn/keys/{id}/credentials/generate-ice-servers`."""

    ttl: int = Field(default=DEFAULT_TURN_TTL, gt=0, le=MAX_TURN_TTL)


class GenerateIceServersResponse(CallsResponse):
    """Response of TURN credential generation; the legacy single-object `iceServers` is wrapped into a list."""

    ice_servers: list[IceServer]

    @field_validator('ice_servers', mode='before')
    @classmethod
    def _wrap_legacy_object(cls, value: object) -> object:
        return [value] if isinstance(value, dict) else value


_PORT_RE = re.compile(r':(\d+)(?:\?|$)')


def browser_ice_servers(servers: Iterable[IceServer]) -> list[IceServer]:
    """Drop port-53 URLs (browsers block them) and any entry left without URLs."""
    result: list[IceServer] = []
    for server in servers:
        urls = [url for url in server.url_list if not _is_port_53(url)]
        if urls:
            result.append(server.model_copy(update={'urls': urls}))
    return result


def _is_port_53(url: str) -> bool:
    match = _PORT_RE.search(url.partition(':')[2])
    return match is not None and int(match.group(1)) == 53


# --- track locator ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrackLocator:
    """A published track's address, shared with subscribers as "sessionId/trackName"."""

    session_id: str
    track_name: str

    def __post_init__(self) -> None:
        if not self.session_id or '/' in self.session_id or not self.track_name:
            raise ValueError(f'invalid track locator: {self.session_id!r}/{self.track_name!r}')

    def __str__(self) -> str:
        return f'{self.session_id}/{self.track_name}'

    @classmethod
    def parse(cls, value: str) -> TrackLocator:
        """Parse "sessionId/trackName" (the track name may itself contain '/')."""
        session_id, sep, track_name = value.partition('/')
        if not sep:
            raise ValueError(f'invalid track locator: {value!r}')
        return cls(session_id, track_name)

    def remote_track(self, **fields: Any) -> TrackObject:
        """A `location: remote` TrackObject that pulls this track; extra fields (e.g. `kind`) are passed on."""
        return TrackObject(location='remote', session_id=self.session_id, track_name=self.track_name, **fields)


# --- exceptions ------------------------------------------------------------------------------------------------
class CallsError(Exception):
    """Base of every error raised by the Calls client."""

    retryable: ClassVar[bool] = False


class CallsTransportError(CallsError):
    """The request did not get a response: connection failure, protocol error or timeout."""

    retryable = True


class CallsTimeoutError(CallsTransportError):
    """The request timed out."""


class CallsApiError(CallsError):
    """The API answered with a non-2xx status or a top-level errorCode.

    Constructed without `status` / `error_code`, a subclass uses its defaults (handy for the SFU); the client passes
    what it received, so `error_code` is None when the server sent none.
    """

    default_status: ClassVar[int] = 500
    default_error_code: ClassVar[str | None] = None

    def __init__(
        self, description: str = '', *, status: int | None = None, error_code: str | EllipsisType | None = ...
    ) -> None:
        self.status: int = self.default_status if status is None else status
        self.error_code: str | None = self.default_error_code if isinstance(error_code, EllipsisType) else error_code
        self.description = description
        super().__init__(str(self))

    def __str__(self) -> str:
        return f'HTTP {self.status} {self.error_code or "(no errorCode)"}: {self.description}'

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(status={self.status!r}, error_code={self.error_code!r}, '
            f'description={self.description!r})'
        )

    def to_response(self) -> ErrorResponse:
        """The body an SFU sends for this error (with HTTP status `self.status`)."""
        return ErrorResponse(error_code=self.error_code, error_description=self.description or None)


class UnauthorizedError(CallsApiError):
    """The bearer token (app secret or TURN key token) was not accepted."""

    default_status = 401
    default_error_code = UNAUTHORIZED


class NotFoundError(CallsApiError):
    """The app (or TURN key) does not exist."""

    default_status = 404
    default_error_code = NOT_FOUND


class InvalidRequestError(CallsApiError):
    """The body could not be decoded, or its SDP or parameters were rejected."""

    default_status = 400
    default_error_code = DECODING_ERROR


class NegotiationConflictError(CallsApiError):
    """A mutation overlapped an unfinished SDP exchange on the same session."""

    default_status = 406
    default_error_code = INVALID_SESSION_DESCRIPTION


class SessionNotReadyError(CallsApiError):
    """The session's PeerConnection is not connected yet."""

    retryable = True
    default_status = 425
    default_error_code = SESSION_ERROR


class SessionGoneError(CallsApiError):
    """The session expired or was closed; create a new one."""

    default_status = 410
    default_error_code = SESSION_ERROR


class RateLimitedError(CallsApiError):
    """Too many requests on the session."""

    retryable = True
    default_status = 429


class ServerError(CallsApiError):
    """A service-side failure."""

    retryable = True
    default_status = 500
    default_error_code = INTERNAL_ERROR


class UnexpectedResponseError(CallsApiError):
    """A response body that is not the JSON the endpoint documents."""

    default_status = 502


_INVALID_REQUEST_CODES = frozenset({DECODING_ERROR, INVALID_SESSION_DESCRIPTION, INVALID_PARAMS, PAYLOAD_TOO_LARGE})


def error_from_response(status: int, error_code: str | None, description: str = '') -> CallsApiError:
    """The CallsApiError subclass for a non-2xx status and/or a top-level errorCode."""
    cls: type[CallsApiError]
    if error_code == UNAUTHORIZED or status == 401:
        cls = UnauthorizedError
    elif error_code == NOT_FOUND or status == 404:
        cls = NotFoundError
    elif status == 425:
        cls = SessionNotReadyError
    elif error_code == SESSION_ERROR or status == 410:
        cls = SessionGoneError
    elif status == 406 and error_code != INVALID_PARAMS:
        cls = NegotiationConflictError
    elif error_code in _INVALID_REQUEST_CODES or status in (400, 413):
        cls = InvalidRequestError
    elif status == 429:
        cls = RateLimitedError
    elif status >= 500 or error_code in SERVICE_ERROR_CODES:
        cls = ServerError
    else:
        cls = CallsApiError
    return cls(description, status=status, error_code=error_code)
