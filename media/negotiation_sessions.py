"""A page's two Calls sessions (push and pull) as `PageMedia` (media/negotiation.py) keeps them: the records of
each key's negotiation, the guard around one exchange (a failure marks the session broken), the rebuild of a broken
session, and the Calls requests with their retry rules (tracks/new is never retried blindly)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from media.calls_api import (
    CallsError,
    CloseTrackObject,
    CloseTracksRequest,
    GetSessionStateResponse,
    SessionDescription,
    TrackLocator,
    TracksRequest,
    TracksResponse,
)
from media.calls_client import CallsClient
from media.negotiation_states import KeyEvent, KeyState, can, transition
from rooms.limits import TokenBucket

log = logging.getLogger('media.negotiation')

T = TypeVar('T')
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
SENDING_TIMEOUT = 6.0
REPUBLISH_AFTER = 10.0
"""Seconds a pushed track may have sent nothing (switched off, or silent since it was pushed) before switching it on
re-publishes it rather than reusing its locator. Both back ends collect a track idle for 30 s; a third of that leaves
room for a slow switch-on (camera reopen, one negotiation) without ever announcing a locator the SFU is about to drop.
Shorter gaps are not trusted blindly either: the SFU is asked (GET session), so a back end configured with a shorter
idle timeout (tests, SFU_MEDIA_TIMEOUT) is handled too."""
MAX_CLOSED_MLINES = 24
"""Closed m-lines the pull session may carry before it is rotated. The embedded SFU recycles inactive m-lines;
Cloudflare may not, and every pull/unpull would otherwise grow the SDP (and the browser's work) for the whole call."""
SESSION_BURST = 6.0
SESSION_RATE = 1 / 5
"""Sessions one page may rebuild after failures (not rotations, which the server decides): a burst of 6 and one per
5 s on average. A page whose exchanges keep failing (a modified page answering junk, clicked again and again) gets a
NegotiationError and keeps its broken session instead of one more SFU session each time; the sync loop's backoff
tries again later."""
ROTATING = 'rotating'

S, E = KeyState, KeyEvent


class NegotiationError(Exception):
    """A push, pull or close could not be completed; the message is fit for the user."""


class NotAuthorisedError(NegotiationError):
    """The page asked for something its participant may not do."""


@dataclass(kw_only=True, slots=True)
class PushOffer:
    """The browser's offer after adding sendonly transceivers; `mids` maps our keys to its mids."""

    sdp: str
    mids: dict[str, str]


class MediaDriver(Protocol):
    """What Python needs from the page's browser media client (`components/media_session.py`)."""

    async def create_push_offer(self, keys: list[str]) -> PushOffer: ...
    async def apply_push_answer(self, sdp: str) -> None: ...
    async def wait_sending(self, keys: list[str], timeout: float) -> set[str]: ...
    async def create_push_close_offer(self, keys: list[str]) -> str: ...
    async def answer_pull(self, offer_sdp: str, mids: dict[str, str]) -> str: ...
    async def create_pull_close_offer(self, mids: list[str]) -> str: ...
    async def apply_pull_answer(self, sdp: str) -> None: ...
    async def drop_pulled(self, mids: list[str]) -> None: ...
    async def drop_pushed(self, keys: list[str]) -> None: ...
    async def reset_push(self) -> None: ...
    async def reset_pull(self) -> None: ...


@dataclass(kw_only=True, slots=True)
class KeyRecord:
    """One key's negotiation: its state in the table, and what the SFU knows it by."""

    state: KeyState = KeyState.IDLE
    mid: str | None = None
    locator: TrackLocator | None = None  # push: our track's address; pull: the track pulled
    off: bool = False  # push: its user switched it off (kept across a rebuild)
    sends_while_off: bool = False  # push: a switched-off microphone still sends (silence), a camera sends nothing
    quiet_since: float | None = None  # push: monotonic time since which it (presumably) sent nothing
    epoch: int = 0  # push: bumped at each watch of the byte counter, so a stale watch result is ignored


@dataclass(slots=True)
class SenderWatch:
    """A watch of some ACCEPTED keys' byte counters; `epochs` tells a stale result from the current one."""

    keys: list[str]
    epochs: dict[str, int]
    future: asyncio.Future[set[str]]


@dataclass(kw_only=True, slots=True)
class SessionSlot:
    role: str  # 'push' | 'pull'
    id: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    broken: str | None = None  # why it must be rebuilt before the next exchange
    leftovers: set[str] = field(default_factory=set)  # mids the SFU may still hold for keys already forgotten
    mlines: int = 0  # m-lines in the SFU's last SDP (pull)


class SessionBase:
    """What push and pull share: the page's identity, its two sessions and the records of their keys."""

    client: CallsClient
    driver: MediaDriver
    room: str
    participant_id: str
    clock: Callable[[], float]
    on_locator: Callable[[str, TrackLocator | None], object]
    on_broken: Callable[[], object]
    closed: bool
    session_budget: TokenBucket
    _push: SessionSlot
    _pull: SessionSlot
    _keys: dict[str, KeyRecord]  # pushed key -> its negotiation
    _tiles: dict[str, KeyRecord]  # pulled tile key -> its negotiation

    async def _rebuild(self, session: SessionSlot) -> dict[str, TrackLocator]:
        """Drop `session` and start a new one: forced close of whatever the SFU may still hold for it, a new session
        id on the next exchange, and the browser resets only that peer connection. Pushed keys become FAILED (to be
        pushed again, their locators withdrawn meanwhile); tiles are forgotten and returned, to be pulled again."""
        records = self._keys if session.role == 'push' else self._tiles
        old, reason = session.id, session.broken
        rotating = (reason or '').startswith(ROTATING)
        if old is not None and not rotating and not self.session_budget.take(self.clock()):
            raise NegotiationError('Too many reconnections from this page; retrying shortly.')
        mids = sorted({r.mid for r in records.values() if r.mid} | session.leftovers)
        carried: dict[str, TrackLocator] = {}
        for key, record in list(records.items()):
            announced = record.state in (S.SENDING, S.PAUSED)
            if record.state is S.RECEIVING and record.locator is not None:
                carried[key] = record.locator
            if can(record.state, E.FAIL):
                self._fire(key, record, E.FAIL)
            record.mid = None
            if session.role == 'push':
                record.locator = None
                if announced:
                    self.on_locator(key, None)
            else:
                self._fire(key, record, E.DROP)
                del records[key]
        log.info(
            'room=%s participant=%s: rebuilding the %s session (%s; old: %s)',
            self.room,
            self.participant_id,
            session.role,
            reason,
            old,
        )
        session.id, session.mlines = None, 0
        session.leftovers.clear()
        if old and mids:
            try:
                await self._close(old, mids, None)
            except CallsError as error:  # e.g. 406 while it waits for an answer that never comes: abandoned; the
                # SFU drops it once the browser's peer connection is gone (reset below)
                log.info('room=%s participant=%s: closing old session: %s', self.room, self.participant_id, error)
        await (self.driver.reset_push() if session.role == 'push' else self.driver.reset_pull())
        session.broken = None
        return carried

    def _forget_failed(
        self, session: SessionSlot, records: dict[str, KeyRecord], chosen: dict[str, KeyRecord], *, keep: bool = False
    ) -> dict[str, KeyRecord]:
        """FAILED keys among `chosen` are forgotten (their mids are force-closed at the rebuild) unless `keep`;
        returns the others."""
        rest: dict[str, KeyRecord] = {}
        for key, record in chosen.items():
            if record.state is not S.FAILED:
                rest[key] = record
                continue
            if record.mid:
                session.leftovers.add(record.mid)
            record.mid = None
            if not keep:
                self._fire(key, record, E.DROP)
                records.pop(key, None)
        return rest

    @contextmanager
    def _exchange(self, session: SessionSlot, records: list[KeyRecord]) -> Iterator[None]:
        """Run one exchange on `session`: on any failure its keys FAIL and the session is marked broken.

        Errors that are not Calls' or ours (a browser method timing out, the page's client deleted) surface as a
        `NegotiationError`; cancellation passes through unchanged."""
        try:
            yield
        except BaseException as error:
            for record in records:
                if can(record.state, E.FAIL):
                    record.state = transition(record.state, E.FAIL)
            session.broken = session.broken or f'{type(error).__name__}: {error}'[:200]
            log.warning(
                'room=%s participant=%s: %s exchange failed, the session will be rebuilt: %r',
                self.room,
                self.participant_id,
                session.role,
                error,
            )
            if not self.closed:
                self.on_broken()
            if isinstance(error, (CallsError, NegotiationError)) or not isinstance(error, Exception):
                raise
            raise NegotiationError('The browser did not complete the media exchange; retrying.') from error

    def _fire(self, key: str, record: KeyRecord, event: KeyEvent) -> None:
        before = record.state
        record.state = transition(before, event)
        log.debug('%s %s: %s -%s-> %s', self.participant_id, key, before.value, event.value, record.state.value)

    def _push_state(self, key: str) -> KeyState:
        record = self._keys.get(key)
        return record.state if record is not None else S.IDLE

    def _check_open(self) -> None:
        if self.closed:
            raise NegotiationError('This page has left the room.')

    async def _ensure(self, session: SessionSlot) -> str:
        self._check_open()
        if session.id is None:
            response = await self._retry(lambda: self.client.new_session())
            session.id = response.session_id
        return session.id

    async def _new_tracks(
        self, session_id: str, request: TracksRequest, created: Callable[[GetSessionStateResponse], bool]
    ) -> TracksResponse:
        """tracks/new, never blindly retried: after a transient error the SFU may have created the tracks anyway (a
        5xx after the work, a response lost in transit). GET session tells; if it did, its answer or offer is lost,
        so the exchange fails (and the session is rebuilt) instead of creating the tracks twice."""
        for delay in (*RETRY_DELAYS, None):
            try:
                return await self.client.new_tracks(session_id, request)
            except CallsError as error:
                if delay is None or not error.retryable:
                    raise
                try:
                    state = await self.client.get_session(session_id)
                except CallsError:
                    raise error from None
                if created(state):
                    raise NegotiationError('The SFU created the tracks but its reply was lost') from error
                log.info(
                    'room=%s participant=%s: tracks/new failed (%s), nothing created; retrying in %.2f s',
                    self.room,
                    self.participant_id,
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError('unreachable')

    async def _close(self, session_id: str, mids: list[str], offer: str | None) -> str | None:
        request = CloseTracksRequest(
            tracks=[CloseTrackObject(mid=mid) for mid in mids],
            force=offer is None,
            session_description=SessionDescription(type='offer', sdp=offer) if offer is not None else None,
        )
        response = await self._retry(lambda: self.client.close_tracks(session_id, request))
        return response.session_description.sdp if response.session_description is not None else None

    async def _retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """Retry transient Calls failures with backoff; anything else surfaces at once."""
        for delay in (*RETRY_DELAYS, None):
            try:
                return await call()
            except CallsError as error:
                if delay is None or not error.retryable:
                    raise
                log.info(
                    'room=%s participant=%s: transient Calls error, retrying in %.2f s: %s',
                    self.room,
                    self.participant_id,
                    delay,
                    type(error).__name__,
                )
                await asyncio.sleep(delay)
        raise AssertionError('unreachable')


def count_mlines(sdp: str) -> int:
    return sum(line.startswith('m=') for line in sdp.splitlines())
