"""Python's side of push/pull for one page: it owns the page's Calls sessions and every exchange with Calls.

The browser (a `MediaDriver`) only creates offers and answers when asked; it never names a session, a locator or
a secret. Each page has two sessions — push (its own tracks) and pull (others' tracks) — and every mutation of a
session runs under that session's FIFO lock, held across the whole exchange including `renegotiate`.
Pulls are authorised by a callback (the room's visibility rules), checked again inside the lock, so a page can only
ever receive what its participant may see at the moment the pull is made.

Each key (a pushed track, a pulled tile) moves through the pure state machine of `media.negotiation_states`. Any
exchange that fails half-way — a rejected or unanswered SDP, a browser that does not answer in time, the page
leaving — marks its session *broken*; the next operation on that session first rebuilds it (forced close of what
the SFU may still hold, a new session, the browser resets only that peer connection) and pushes or pulls again what
was live on it. Nothing waits on a session that can no longer make progress.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterator
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
    TrackObject,
    TracksRequest,
    TracksResponse,
)
from media.calls_client import CallsClient
from media.negotiation_states import PUSH_STATES, KeyEvent, KeyState, can, transition

log = logging.getLogger(__name__)

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
class _Key:
    """One key's negotiation: its state in the table, and what the SFU knows it by."""

    state: KeyState = KeyState.IDLE
    mid: str | None = None
    locator: TrackLocator | None = None  # push: our track's address; pull: the track pulled
    off: bool = False  # push: its user switched it off (kept across a rebuild)
    sends_while_off: bool = False  # push: a switched-off microphone still sends (silence), a camera sends nothing
    quiet_since: float | None = None  # push: monotonic time since which it (presumably) sent nothing
    epoch: int = 0  # push: bumped at each watch of the byte counter, so a stale watch result is ignored


@dataclass(slots=True)
class _Watch:
    """A watch of some ACCEPTED keys' byte counters; `epochs` tells a stale result from the current one."""

    keys: list[str]
    epochs: dict[str, int]
    future: asyncio.Future[set[str]]


@dataclass(kw_only=True, slots=True)
class _Session:
    role: str  # 'push' | 'pull'
    id: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    broken: str | None = None  # why it must be rebuilt before the next exchange
    leftovers: set[str] = field(default_factory=set)  # mids the SFU may still hold for keys already forgotten
    mlines: int = 0  # m-lines in the SFU's last SDP (pull)


@dataclass(kw_only=True)
class PageMedia:
    """Push, pull and close on behalf of one participant's page."""

    client: CallsClient
    driver: MediaDriver
    room: str
    participant_id: str
    may_pull: Callable[[TrackLocator], bool]
    sending_timeout: float = SENDING_TIMEOUT
    republish_after: float = REPUBLISH_AFTER
    max_closed_mlines: int = MAX_CLOSED_MLINES
    clock: Callable[[], float] = time.monotonic
    on_locator: Callable[[str, TrackLocator | None], object] = lambda key, locator: None
    """Told when a pushed key's announceable locator changes outside the caller's own request (a rebuilt session,
    a re-publish): announce it, or withdraw it on None."""
    closed: bool = False
    _push: _Session = field(default_factory=lambda: _Session(role='push'))
    _pull: _Session = field(default_factory=lambda: _Session(role='pull'))
    _keys: dict[str, _Key] = field(default_factory=dict)  # pushed key -> state
    _tiles: dict[str, _Key] = field(default_factory=dict)  # pulled tile key -> state

    # ---- views ----------------------------------------------------------------------------------------------

    @property
    def session_ids(self) -> list[str]:
        """The Calls sessions this page uses now (push, pull), for logs and diagnostics."""
        return [s for s in (self._push.id, self._pull.id) if s]

    @property
    def pushed(self) -> dict[str, TrackLocator]:
        """Key -> locator of our tracks that others may pull (sending, or switched off with the locator kept)."""
        return {k: r.locator for k, r in self._keys.items() if r.state in (S.SENDING, S.PAUSED) and r.locator}

    @property
    def silent(self) -> dict[str, TrackLocator]:
        """Key -> locator-to-be of tracks pushed that sent nothing yet (not announced; `confirm_sending` asks)."""
        return {k: r.locator for k, r in self._keys.items() if r.state is S.SILENT and r.locator}

    @property
    def pulled(self) -> dict[str, tuple[TrackLocator, str]]:
        """Tile key -> (locator, mid) of what we receive."""
        return {k: (r.locator, r.mid) for k, r in self._tiles.items() if r.state is S.RECEIVING and r.locator and r.mid}

    @property
    def states(self) -> dict[str, KeyState]:
        """Every key's state (pushed keys and tiles), for diagnostics and tests."""
        return {**{k: r.state for k, r in self._keys.items()}, **{k: r.state for k, r in self._tiles.items()}}

    @property
    def needs_heal(self) -> bool:
        """True when a session is broken or a pushed key lost its push: `heal()` should run."""
        return bool(self._push.broken or self._pull.broken or any(r.state is S.FAILED for r in self._keys.values()))

    # ---- push ------------------------------------------------------------------------------------------------

    async def push(self, keys: list[str]) -> dict[str, TrackLocator]:
        """Publish the browser's local tracks `keys`; returns the locators of those that are really sending.

        A key whose sender has sent nothing within `sending_timeout` (a camera the encoder cannot encode, such as a
        depth camera) stays negotiated but is kept in `silent`, unannounced: a locator without media would only
        give others a pull that fails. `confirm_sending` checks again later. Keys that lost their push when the
        session was rebuilt are pushed again in the same offer (their new locators go to `on_locator`).
        """
        async with self._push.lock:
            self._check_open()
            await self._ready_push()
            todo = [k for k in dict.fromkeys(keys) if self._push_state(k) in (S.IDLE, S.FAILED)]
            todo += [k for k, r in self._keys.items() if r.state is S.FAILED and k not in todo]
            if not todo:
                return {}
            watch = await self._push_locked(todo)
        await self._settle(watch)
        return {k: r.locator for k in todo if (r := self._keys.get(k)) and r.state is S.SENDING and r.locator}

    async def confirm_sending(self, timeout: float) -> dict[str, TrackLocator]:
        """Ask whether the `silent` keys send now; returns the locators of those that do (now in `pushed`).

        A key silent for longer than the SFU keeps an idle track is published again first (a new locator).
        """
        keys = list(self.silent)
        if not keys:
            return {}
        sending = await self.driver.wait_sending(keys, timeout)
        async with self._push.lock:
            late = [k for k in keys if k in sending and self._push_state(k) is S.SILENT]
            watches = await self._revive(late, 'silent')
        for watch in watches:
            await self._settle(watch)
        return {k: loc for k, loc in self.pushed.items() if k in late and self._keys[k].state is S.SENDING}

    async def pause(self, key: str, *, sends_while_off: bool = False) -> None:
        """The page switched `key` off (no renegotiation: the browser sends nothing, or silence for a microphone)."""
        async with self._push.lock:
            record = self._keys.get(key)
            if record is None:
                return
            record.off, record.sends_while_off = True, sends_while_off
            if record.state in (S.SENDING, S.ACCEPTED, S.SILENT):
                quiet = record.quiet_since if record.state is S.SILENT else None
                self._fire(key, record, E.SWITCH_OFF)
                record.quiet_since = quiet if quiet is not None else self.clock()

    async def resume(self, key: str) -> TrackLocator | None:
        """The page switched `key` on again; returns its locator once it sends (None while it does not).

        Off long enough for the SFU to have dropped it (see `REPUBLISH_AFTER`), or reported inactive by the SFU, it
        is published again — negotiated close of the old m-line, a new push, a new locator — instead of
        re-announcing a dead one.
        """
        async with self._push.lock:
            record = self._keys.get(key)
            if record is None:
                return None
            record.off = False
            watches = await self._revive([key], 'switched off') if record.state is S.PAUSED else []
            state = record.state
        if state is S.SILENT:
            sending = await self.driver.wait_sending([key], self.sending_timeout)
            async with self._push.lock:
                if key in sending and self._push_state(key) is S.SILENT:
                    watches = await self._revive([key], 'silent')
        for watch in watches:
            await self._settle(watch)
        return self.pushed.get(key) if self._push_state(key) is S.SENDING else None

    async def unpush(self, keys: list[str]) -> None:
        """Stop publishing `keys` (negotiated close; forced when it would leave the session without m-lines)."""
        async with self._push.lock:
            if self.closed:
                return
            records = {k: r for k in keys if (r := self._keys.get(k)) is not None}
            live = self._forget_failed(self._push, self._keys, records)
            if not live:
                return
            for key, record in live.items():
                self._fire(key, record, E.CLOSE)
            try:
                await self._close_pushed(live)
            finally:
                self._forget_failed(self._push, self._keys, live)
            for key, record in live.items():
                self._fire(key, record, E.CLOSED)
                self._keys.pop(key, None)

    async def heal(self) -> dict[str, TrackLocator]:
        """Rebuild a broken push session and push again what lost its push (the pull side heals on its next pull)."""
        return await self.push([])

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
        async with self._pull.lock:
            self._check_open()
            carried = await self._ready_pull()
            todo = {k: loc for k, loc in {**carried, **wanted}.items() if k not in self._tiles}
            # Authorisation again, inside the lock: what was allowed when this pull started waiting (a hospital
            # camera switched on, a participant still in the room) may not be any more.
            allowed = {k: loc for k, loc in todo.items() if self.may_pull(loc)}
            if skipped := sorted(set(todo) - set(allowed)):
                log.info('room=%s participant=%s: no longer allowed: %s', self.room, self.participant_id, skipped)
            if not allowed:
                return {}
            return await self._pull_locked(allowed)

    async def unpull(self, keys: list[str]) -> None:
        """Stop receiving the tiles `keys`."""
        async with self._pull.lock:
            if self.closed:
                return
            records = {k: r for k in keys if (r := self._tiles.get(k)) is not None}
            live = self._forget_failed(self._pull, self._tiles, records)
            if not live:
                return
            for key, record in live.items():
                self._fire(key, record, E.CLOSE)
            try:
                await self._close_pulled(live)
            finally:
                self._forget_failed(self._pull, self._tiles, live)
            for key, record in live.items():
                self._fire(key, record, E.CLOSED)
                self._tiles.pop(key, None)

    async def sync_pulls(self, wanted: dict[str, TrackLocator]) -> dict[str, str]:
        """Make the pulled set equal `wanted`: close what went away or changed, pull what is new."""
        stale = [key for key, record in self._tiles.items() if wanted.get(key) != record.locator]
        if stale:
            await self.unpull(stale)
        return await self.pull({key: loc for key, loc in wanted.items() if key not in self.pulled})

    # ---- recovery and teardown --------------------------------------------------------------------------------

    async def recover(self, roles: Collection[str] = ('push', 'pull')) -> dict[str, TrackLocator]:
        """After a failed connection (`roles`: which of 'push' and 'pull'): new sessions, re-push and re-pull.
        Returns the locators of our tracks.

        Each session is marked broken under its own lock (an exchange in flight finishes or fails first), then
        rebuilt by the next push or pull — these, or a push racing this recovery, whichever comes first.
        """
        for session in (self._push, self._pull):
            if session.role in roles:
                async with session.lock:
                    session.broken = session.broken or 'connection failed'
        if 'push' in roles:
            await self.push([])
        if 'pull' in roles:
            await self.pull({})
        return self.pushed

    async def close(self) -> None:
        """Free everything at the SFU (the page is gone, so no SDP exchange: forced close). Never raises.

        An exchange in flight keeps its session's lock until it completes or fails (it stops at its next step once
        it sees the page closed); what the SFU accepted meanwhile is closed here too.
        """
        if self.closed:
            return
        self.closed = True
        for session, records in ((self._push, self._keys), (self._pull, self._tiles)):
            async with session.lock:
                mids = {r.mid for r in records.values() if r.mid} | session.leftovers
                for key, record in list(records.items()):
                    for event in (E.CLOSE, E.DROP):
                        if can(record.state, event):
                            self._fire(key, record, event)
                            break
                try:
                    if session.id and mids:
                        await self._close(session.id, sorted(mids), None)
                except Exception as error:  # teardown: log, never raise into the page
                    log.info('room=%s participant=%s: close at SFU: %s', self.room, self.participant_id, error)
                for key, record in list(records.items()):
                    if record.state is S.CLOSING:
                        self._fire(key, record, E.CLOSED)
                records.clear()
                session.leftovers.clear()

    # ---- push internals (under the push lock) ----------------------------------------------------------------

    async def _push_locked(self, keys: list[str]) -> _Watch:
        """Offer, tracks/new, answer: `keys` end ACCEPTED; returns the watch of their byte counters."""
        records = {k: self._keys.setdefault(k, _Key()) for k in keys}
        for key, record in records.items():
            self._fire(key, record, E.PUSH)
            record.mid, record.locator = None, None
        with self._exchange(self._push, list(records.values())):
            session_id = await self._ensure(self._push)
            offer = await self.driver.create_push_offer(keys)
            self._check_open()
            names = {key: f'{key}-{uuid.uuid4().hex[:12]}' for key in keys}
            for key, record in records.items():
                record.mid = offer.mids[key]
                record.locator = TrackLocator(session_id=session_id, track_name=names[key])
            request = TracksRequest(
                session_description=SessionDescription(type='offer', sdp=offer.sdp),
                tracks=[TrackObject(location='local', mid=offer.mids[key], track_name=names[key]) for key in keys],
            )

            def created(state: GetSessionStateResponse) -> bool:
                return any(t.location == 'local' and t.track_name in names.values() for t in state.tracks or [])

            response = await self._new_tracks(session_id, request, created)
            failed = [t for t in response.tracks or [] if t.failed]
            if failed or response.session_description is None:
                reason = failed[0].error_description if failed else 'no answer'
                raise NegotiationError(f'Publishing failed: {reason}')
            self._check_open()
            # Watch the byte counters from the moment the answer goes out: one browser round trip less before the
            # tracks are announced (the watch only reads stats, so it may run outside the session's lock).
            watch = self._watch(records)
            try:
                await self.driver.apply_push_answer(response.session_description.sdp)
                self._check_open()
            except BaseException:
                watch.future.cancel()
                raise
        for key, record in records.items():
            self._fire(key, record, E.ACCEPT)
        return watch

    def _watch(self, records: dict[str, _Key]) -> _Watch:
        for record in records.values():
            record.epoch += 1
        future = asyncio.ensure_future(self.driver.wait_sending(list(records), self.sending_timeout))
        return _Watch(list(records), {key: record.epoch for key, record in records.items()}, future)

    async def _settle(self, watch: _Watch) -> None:
        """After the watch: ACCEPTED keys become SENDING (announced) or SILENT; a switched-off one PAUSED."""
        try:
            sending = await watch.future
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the browser did not answer: not sending (asked again later)
            log.info('room=%s participant=%s: watching senders: %r', self.room, self.participant_id, error)
            sending = set()
        missing = []
        for key in watch.keys:
            record = self._keys.get(key)
            if record is None or record.state is not S.ACCEPTED or record.epoch != watch.epochs.get(key):
                continue  # closed, paused, failed or watched again meanwhile
            if record.off:
                self._fire(key, record, E.SWITCH_OFF)
                record.quiet_since = self.clock()
            elif key in sending:
                self._fire(key, record, E.SENDS)
                record.quiet_since = None
            else:
                self._fire(key, record, E.NO_MEDIA)
                record.quiet_since = self.clock()
                missing.append(key)
                continue
            self.on_locator(key, record.locator)
        if missing:
            log.warning(
                'room=%s participant=%s: %s not sending after %.1f s; not announced until it does',
                self.room,
                self.participant_id,
                ', '.join(missing),
                self.sending_timeout,
            )

    async def _revive(self, keys: list[str], why: str) -> list[_Watch]:
        """PAUSED or SILENT `keys` that send (again): reuse the locator while the SFU still has it, else re-publish.

        Called under the push lock; returns the watches of the byte counters, for the caller to settle once the lock
        is released (so a camera slow to send never blocks other pushes)."""
        fresh: list[str] = []
        stale: list[str] = []
        for key in keys:
            (stale if await self._stale(self._keys[key]) else fresh).append(key)
        watches: list[_Watch] = []
        if stale:
            log.info(
                'room=%s participant=%s: re-publishing %s (%s too long for the SFU to keep it)',
                self.room,
                self.participant_id,
                ', '.join(stale),
                why,
            )
            records = {k: self._keys[k] for k in stale}
            for key, record in records.items():
                self._fire(key, record, E.EXPIRE)
            try:
                await self._close_pushed(records)
            finally:
                self._forget_failed(self._push, self._keys, records, keep=True)
            for key, record in records.items():
                self._fire(key, record, E.CLOSED)
            watches.append(await self._push_locked(stale))
        paused: dict[str, _Key] = {}
        for key in fresh:
            record = self._keys[key]
            if record.state is S.SILENT:
                self._fire(key, record, E.SENDS)
                record.quiet_since = None
                self.on_locator(key, record.locator)
            elif record.state is S.PAUSED:
                self._fire(key, record, E.SWITCH_ON)
                paused[key] = record
        if paused:
            watches.append(self._watch(paused))
        return watches

    async def _stale(self, record: _Key) -> bool:
        """Has the SFU dropped (or is it about to drop) this quiet track? By our monotonic clock, else by asking it.

        The clock decides for a track that sent nothing for `republish_after` (a microphone switched off keeps
        sending silence, so the clock alone never condemns it). Otherwise GET session tells whether the SFU still
        holds the track active: it catches a back end whose idle timeout is shorter than ours."""
        quiet = self.clock() - record.quiet_since if record.quiet_since is not None else 0.0
        if quiet >= self.republish_after and (record.state is S.SILENT or not record.sends_while_off):
            return True
        if self._push.id is None or record.locator is None:
            return True
        try:
            state = await self.client.get_session(self._push.id)
        except CallsError as error:
            log.info('room=%s participant=%s: GET session: %s', self.room, self.participant_id, error)
            return False
        name = record.locator.track_name
        return not any(
            t.location == 'local' and t.track_name == name and t.status != 'inactive' for t in state.tracks or []
        )

    async def _close_pushed(self, records: dict[str, _Key]) -> None:
        """Close CLOSING `records` at the SFU and in the browser (negotiated, or forced for the last m-lines)."""
        session_id = self._push.id
        mids = [r.mid for r in records.values() if r.mid]
        keys = list(records)
        others = any(r.state in PUSH_STATES for k, r in self._keys.items() if k not in records)
        with self._exchange(self._push, list(records.values())):
            if session_id is None or not mids:
                return
            if not others:  # closing the last m-lines by negotiation breaks BUNDLE (calls-api §3.4)
                await self.driver.drop_pushed(keys)  # the page must not reuse the force-closed mids
                await self._close(session_id, mids, None)
                return
            offer = await self.driver.create_push_close_offer(keys)
            answer = await self._close(session_id, mids, offer)
            if answer is not None:
                await self.driver.apply_push_answer(answer)

    async def _ready_push(self) -> None:
        if self._push.broken:
            await self._rebuild(self._push)

    # ---- pull internals (under the pull lock) ----------------------------------------------------------------

    async def _pull_locked(self, wanted: dict[str, TrackLocator]) -> dict[str, str]:
        records: dict[str, _Key] = {}
        for key, locator in wanted.items():
            records[key] = self._tiles[key] = _Key(locator=locator)
            self._fire(key, records[key], E.PULL)
        mids: dict[str, str] = {}
        with self._exchange(self._pull, list(records.values())):
            session_id = await self._ensure(self._pull)
            order = list(wanted)
            request = TracksRequest(tracks=[wanted[key].remote_track() for key in order])
            known = {r.mid for r in self._tiles.values() if r.mid}
            asked = {(loc.session_id, loc.track_name) for loc in wanted.values()}

            def created(state: GetSessionStateResponse) -> bool:
                return any(
                    t.location == 'remote'
                    and t.mid not in known
                    and (t.session_id, t.track_name) in asked
                    and t.status != 'inactive'
                    for t in state.tracks or []
                )

            response = await self._new_tracks(session_id, request, created)
            self._check_open()
            results = dict(zip(order, response.tracks or [], strict=False))
            for key in order:
                result = results.get(key)
                if result is None or result.failed or not result.mid:
                    log.info(
                        'room=%s participant=%s: pull of %s failed: %s',
                        self.room,
                        self.participant_id,
                        key,
                        result.error_code if result is not None else 'no result',
                    )
                    self._fire(key, records[key], E.REFUSED)
                    self._tiles.pop(key, None)
                    continue
                records[key].mid = mids[key] = result.mid
            if not mids:
                return {}
            if not response.requires_immediate_renegotiation or response.session_description is None:
                raise NegotiationError('Receiving failed: the SFU sent no offer')
            for key in mids:
                self._fire(key, records[key], E.OFFERED)
            offer_sdp = response.session_description.sdp
            self._pull.mlines = _count_mlines(offer_sdp)
            answer = await self.driver.answer_pull(offer_sdp, {mid: key for key, mid in mids.items()})
            # Answered even if the page left meanwhile: an SFU waiting for an answer refuses every other request
            # (406), the forced close of `close()` included.
            answer_sdp = SessionDescription(type='answer', sdp=answer)
            await self._retry(lambda: self.client.renegotiate(session_id, answer_sdp))
            self._check_open()
        for key in mids:
            self._fire(key, records[key], E.ANSWERED)
        return mids

    async def _close_pulled(self, records: dict[str, _Key]) -> None:
        session_id = self._pull.id
        mids = [r.mid for r in records.values() if r.mid]
        others = any(r.state is S.RECEIVING for k, r in self._tiles.items() if k not in records)
        with self._exchange(self._pull, list(records.values())):
            if session_id is None or not mids:
                return
            if not others:
                await self.driver.drop_pulled(mids)
                await self._close(session_id, mids, None)
                return
            offer = await self.driver.create_pull_close_offer(mids)
            answer = await self._close(session_id, mids, offer)
            if answer is not None:
                self._pull.mlines = _count_mlines(answer)
                await self.driver.apply_pull_answer(answer)

    async def _ready_pull(self) -> dict[str, TrackLocator]:
        """Rebuild a broken pull session, or rotate one carrying too many closed m-lines; returns what to re-pull."""
        session = self._pull
        live = sum(r.state is S.RECEIVING for r in self._tiles.values())
        if not session.broken and session.id is not None and session.mlines - live > self.max_closed_mlines:
            session.broken = f'rotating: {session.mlines - live} closed m-lines'
        return await self._rebuild(session) if session.broken else {}

    # ---- sessions ----------------------------------------------------------------------------------------------

    async def _rebuild(self, session: _Session) -> dict[str, TrackLocator]:
        """Drop `session` and start a new one: forced close of whatever the SFU may still hold for it, a new session
        id on the next exchange, and the browser resets only that peer connection. Pushed keys become FAILED (to be
        pushed again, their locators withdrawn meanwhile); tiles are forgotten and returned, to be pulled again."""
        records = self._keys if session.role == 'push' else self._tiles
        old, reason = session.id, session.broken
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
        self, session: _Session, records: dict[str, _Key], chosen: dict[str, _Key], *, keep: bool = False
    ) -> dict[str, _Key]:
        """FAILED keys among `chosen` are forgotten (their mids are force-closed at the rebuild) unless `keep`;
        returns the others."""
        rest: dict[str, _Key] = {}
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
    def _exchange(self, session: _Session, records: list[_Key]) -> Iterator[None]:
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
            if isinstance(error, (CallsError, NegotiationError)) or not isinstance(error, Exception):
                raise
            raise NegotiationError('The browser did not complete the media exchange; retrying.') from error

    def _fire(self, key: str, record: _Key, event: KeyEvent) -> None:
        before = record.state
        record.state = transition(before, event)
        log.debug('%s %s: %s -%s-> %s', self.participant_id, key, before.value, event.value, record.state.value)

    def _push_state(self, key: str) -> KeyState:
        record = self._keys.get(key)
        return record.state if record is not None else S.IDLE

    def _check_open(self) -> None:
        if self.closed:
            raise NegotiationError('This page has left the room.')

    async def _ensure(self, session: _Session) -> str:
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


def _count_mlines(sdp: str) -> int:
    return sum(line.startswith('m=') for line in sdp.splitlines())
