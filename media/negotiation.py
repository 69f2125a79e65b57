"""Python's side of push/pull for one page: it owns the page's Calls sessions and every exchange with Calls.

The browser (a `MediaDriver`) only creates offers and answers when asked; it never names a session, a locator or
a secret. Each page has two sessions — push (its own tracks) and pull (others' tracks) — and every mutation of a
session runs under that session's FIFO lock, held across the whole exchange including `renegotiate`.
Pulls are authorised by a callback (the room's visibility rules), so a page can only ever receive what its
participant may see.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from media.calls_api import (
    CallsError,
    CloseTrackObject,
    CloseTracksRequest,
    SessionDescription,
    TrackLocator,
    TrackObject,
    TracksRequest,
)
from media.calls_client import CallsClient

log = logging.getLogger(__name__)

T = TypeVar('T')
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
SENDING_TIMEOUT = 6.0


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
    async def reset(self) -> None: ...


@dataclass(kw_only=True, slots=True)
class _Session:
    id: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(kw_only=True)
class PageMedia:
    """Push, pull and close on behalf of one participant's page."""

    client: CallsClient
    driver: MediaDriver
    room: str
    participant_id: str
    may_pull: Callable[[TrackLocator], bool]
    pushed: dict[str, TrackLocator] = field(default_factory=dict)  # key -> locator, for keys really sending
    silent: dict[str, TrackLocator] = field(default_factory=dict)  # key -> locator-to-be: pushed, nothing sent yet
    sending_timeout: float = SENDING_TIMEOUT
    pulled: dict[str, tuple[TrackLocator, str]] = field(default_factory=dict)  # tile key -> (locator, mid)
    closed: bool = False
    _push: _Session = field(default_factory=_Session)
    _pull: _Session = field(default_factory=_Session)
    _push_mids: dict[str, str] = field(default_factory=dict)

    @property
    def session_ids(self) -> list[str]:
        """The Calls sessions this page created (push, pull), for logs and diagnostics."""
        return [s for s in (self._push.id, self._pull.id) if s]

    # ---- push ------------------------------------------------------------------------------------------------

    async def push(self, keys: list[str]) -> dict[str, TrackLocator]:
        """Publish the browser's local tracks `keys`; returns the locators of those that are really sending.

        A key whose sender has sent nothing within `sending_timeout` (a camera the encoder cannot encode, such as a
        depth camera) stays negotiated but is kept in `silent`, unannounced: a locator without media would only
        give others a pull that fails. `confirm_sending` checks again later.
        """
        keys = [key for key in keys if key not in self._push_mids]
        if not keys:
            return {}
        async with self._push.lock:
            session_id = await self._ensure(self._push)
            offer = await self.driver.create_push_offer(keys)
            names = {key: f'{key}-{uuid.uuid4().hex[:12]}' for key in keys}
            request = TracksRequest(
                session_description=SessionDescription(type='offer', sdp=offer.sdp),
                tracks=[TrackObject(location='local', mid=offer.mids[key], track_name=names[key]) for key in keys],
            )
            response = await self._retry(lambda: self.client.new_tracks(session_id, request))
            failed = [t for t in response.tracks or [] if t.failed]
            if failed or response.session_description is None:
                reason = failed[0].error_description if failed else 'no answer'
                raise NegotiationError(f'Publishing failed: {reason}')
            # Watch the byte counters from the moment the answer goes out: one browser round trip less before the
            # tracks are announced (the watch only reads stats, so it may run outside the session's lock).
            watching = asyncio.ensure_future(self.driver.wait_sending(keys, self.sending_timeout))
            try:
                await self.driver.apply_push_answer(response.session_description.sdp)
            except BaseException:
                watching.cancel()
                raise
            for key in keys:
                self._push_mids[key] = offer.mids[key]
        sending = await watching
        locators = {key: TrackLocator(session_id=session_id, track_name=names[key]) for key in keys}
        if missing := [key for key in keys if key not in sending and key in self._push_mids]:
            log.warning(
                'room=%s participant=%s: %s not sending after %.1f s; not announced until it does',
                self.room,
                self.participant_id,
                ', '.join(missing),
                self.sending_timeout,
            )
            self.silent.update({key: locators[key] for key in missing})
        confirmed = {key: locators[key] for key in keys if key in sending and key in self._push_mids}
        self.pushed.update(confirmed)
        return confirmed

    async def confirm_sending(self, timeout: float) -> dict[str, TrackLocator]:
        """Ask whether the `silent` keys send now; returns (and moves to `pushed`) the locators of those that do."""
        if not self.silent:
            return {}
        sending = await self.driver.wait_sending(list(self.silent), timeout)
        confirmed = {key: self.silent.pop(key) for key in sending if key in self.silent}  # not unpushed meanwhile
        self.pushed.update(confirmed)
        return confirmed

    async def unpush(self, keys: list[str]) -> None:
        """Stop publishing `keys` (negotiated close; forced when it would leave the session without m-lines)."""
        keys = [key for key in keys if key in self._push_mids]
        if not keys:
            return
        async with self._push.lock:
            session_id = self._push.id
            mids = [self._push_mids[key] for key in keys]
            for key in keys:
                self.pushed.pop(key, None)
                self.silent.pop(key, None)
                self._push_mids.pop(key, None)
            if session_id is None:
                return
            if not self._push_mids:  # closing the last m-lines by negotiation breaks BUNDLE (calls-api §3.4)
                await self.driver.drop_pushed(keys)  # the page must not reuse the force-closed mids
                await self._close(session_id, mids, None)
                return
            offer = await self.driver.create_push_close_offer(keys)
            answer = await self._close(session_id, mids, offer)
            if answer is not None:
                await self.driver.apply_push_answer(answer)

    # ---- pull ------------------------------------------------------------------------------------------------

    async def pull(self, wanted: dict[str, TrackLocator]) -> dict[str, str]:
        """Receive `wanted` (tile key -> locator); returns tile key -> mid for the tracks that could be pulled."""
        for key, locator in wanted.items():
            if not self.may_pull(locator):
                log.warning(
                    'refused pull: room=%s participant=%s tile=%s locator=%s',
                    self.room,
                    self.participant_id,
                    key,
                    locator,
                )
                raise NotAuthorisedError(f'You may not receive {key} in this room.')
        wanted = {key: loc for key, loc in wanted.items() if key not in self.pulled}
        if not wanted:
            return {}
        async with self._pull.lock:
            session_id = await self._ensure(self._pull)
            order = list(wanted)
            request = TracksRequest(tracks=[wanted[key].remote_track() for key in order])
            response = await self._retry(lambda: self.client.new_tracks(session_id, request))
            mids: dict[str, str] = {}
            for key, result in zip(order, response.tracks or [], strict=False):
                if result.failed or not result.mid:
                    log.info(
                        'room=%s participant=%s: pull of %s failed: %s',
                        self.room,
                        self.participant_id,
                        key,
                        result.error_code,
                    )
                    continue
                mids[key] = result.mid
            if response.requires_immediate_renegotiation and response.session_description is not None:
                answer = await self.driver.answer_pull(
                    response.session_description.sdp, {mid: key for key, mid in mids.items()}
                )
                answer_sdp = SessionDescription(type='answer', sdp=answer)
                await self._retry(lambda: self.client.renegotiate(session_id, answer_sdp))
            for key, mid in mids.items():
                self.pulled[key] = (wanted[key], mid)
            return mids

    async def unpull(self, keys: list[str]) -> None:
        """Stop receiving the tiles `keys`."""
        entries = {key: self.pulled.pop(key) for key in keys if key in self.pulled}
        if not entries:
            return
        mids = [mid for _, mid in entries.values()]
        async with self._pull.lock:
            if self._pull.id is None:
                return
            if not self.pulled:
                await self.driver.drop_pulled(mids)
                await self._close(self._pull.id, mids, None)
                return
            offer = await self.driver.create_pull_close_offer(mids)
            answer = await self._close(self._pull.id, mids, offer)
            if answer is not None:
                await self.driver.apply_pull_answer(answer)

    async def sync_pulls(self, wanted: dict[str, TrackLocator]) -> dict[str, str]:
        """Make the pulled set equal `wanted`: close what went away or changed, pull what is new."""
        stale = [key for key, (locator, _) in self.pulled.items() if wanted.get(key) != locator]
        if stale:
            await self.unpull(stale)
        return await self.pull({key: loc for key, loc in wanted.items() if key not in self.pulled})

    # ---- recovery and teardown --------------------------------------------------------------------------------

    async def recover(self) -> dict[str, TrackLocator]:
        """After a failed connection: new sessions, re-push and re-pull. Returns the new locators of our tracks."""
        keys, pulls = list(self._push_mids), {key: loc for key, (loc, _) in self.pulled.items()}
        async with self._push.lock, self._pull.lock:
            old = [s for s in (self._push.id, self._pull.id) if s]
            stale = [
                (session_id, mids)
                for session_id, mids in (
                    (self._push.id, list(self._push_mids.values())),
                    (self._pull.id, [mid for _, mid in self.pulled.values()]),
                )
                if session_id and mids
            ]
            self._push.id = self._pull.id = None
            self.pushed.clear()
            self.silent.clear()
            self.pulled.clear()
            self._push_mids.clear()
            await self.driver.reset()
        log.info('room=%s participant=%s: rebuilding media sessions (old: %s)', self.room, self.participant_id, old)
        for session_id, mids in stale:  # free the dead sessions' tracks now rather than at the SFU's media timeout
            try:
                await self._close(session_id, mids, None)
            except (CallsError, NegotiationError) as error:
                log.info('room=%s participant=%s: closing old session: %s', self.room, self.participant_id, error)
        locators = await self.push(keys)
        await self.pull({key: loc for key, loc in pulls.items() if self.may_pull(loc)})
        return locators

    async def close(self) -> None:
        """Free everything at the SFU (the page is gone, so no SDP exchange: forced close)."""
        if self.closed:
            return
        self.closed = True
        for session, mids in (
            (self._push, list(self._push_mids.values())),
            (self._pull, [mid for _, mid in self.pulled.values()]),
        ):
            if session.id and mids:
                try:
                    await self._close(session.id, mids, None)
                except (CallsError, NegotiationError) as error:
                    log.info('room=%s participant=%s: close at SFU: %s', self.room, self.participant_id, error)
        self.pushed.clear()
        self.silent.clear()
        self.pulled.clear()
        self._push_mids.clear()

    # ---- helpers ----------------------------------------------------------------------------------------------

    async def _ensure(self, session: _Session) -> str:
        if self.closed:
            raise NegotiationError('This page has left the room.')
        if session.id is None:
            response = await self._retry(lambda: self.client.new_session())
            session.id = response.session_id
        return session.id

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
                if delay is None or not getattr(error, 'retryable', False):
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
