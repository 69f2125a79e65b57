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

This module is the public side (`PageMedia`); its parts: `negotiation_states` (the table), `negotiation_sessions`
(sessions, the exchange guard, rebuilds, Calls requests), `negotiation_push` and `negotiation_pull`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from media.calls_api import CallsApiError, CallsError, TrackLocator
from media.calls_client import CallsClient
from media.negotiation_pull import PullSide
from media.negotiation_push import PushSide
from media.negotiation_sessions import (
    MAX_CLOSED_MLINES,
    REPUBLISH_AFTER,
    SENDING_TIMEOUT,
    SESSION_BURST,
    SESSION_RATE,
    KeyRecord,
    MediaDriver,
    NegotiationError,
    NotAuthorisedError,
    PushOffer,
    SessionSlot,
)
from media.negotiation_states import KeyEvent, KeyState, can
from rooms.limits import TokenBucket

__all__ = ['MediaDriver', 'NegotiationError', 'NotAuthorisedError', 'PageMedia', 'PushOffer']

log = logging.getLogger(__name__)

S, E = KeyState, KeyEvent


@dataclass(kw_only=True)
class PageMedia(PushSide, PullSide):
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
    on_broken: Callable[[], object] = lambda: None
    """Told when an exchange failed and left a session broken: schedule `heal()` and a pull sync (with backoff)."""
    closed: bool = False
    session_budget: TokenBucket = field(default_factory=lambda: TokenBucket(rate=SESSION_RATE, burst=SESSION_BURST))
    """New SFU sessions this page may still open (see `SESSION_BURST`)."""
    _push: SessionSlot = field(default_factory=lambda: SessionSlot(role='push'))
    _pull: SessionSlot = field(default_factory=lambda: SessionSlot(role='pull'))
    _keys: dict[str, KeyRecord] = field(default_factory=dict)  # pushed key -> state
    _tiles: dict[str, KeyRecord] = field(default_factory=dict)  # pulled tile key -> state

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
            try:
                watches = await self._revive(late, 'silent')
            except CallsError as error:  # a periodic recheck: one kind of error for its caller; `on_broken` heals
                raise NegotiationError('Publishing a camera that started late failed; retrying.') from error
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

    async def probe(self) -> list[str]:
        """Ask the SFU whether this page's sessions are still alive there; returns the roles ('push', 'pull') whose
        session is gone, or whose media the SFU dropped while we believe it is sending.

        The SFU drops a session whose connection failed on its side (an ICE consent that expired while its host was
        starved of CPU, say) and the browser may not call its own connection failed for a long time, or ever: the
        page would keep showing, and publishing, nothing. Read-only (GET session); a session busy with an exchange
        is skipped, and a transient error says nothing.
        """
        gone: list[str] = []
        for slot in (self._push, self._pull):
            session_id = slot.id
            if session_id is None or slot.broken or slot.lock.locked() or self.closed:
                continue
            try:
                state = await self.client.get_session(session_id)
            except CallsApiError as error:
                if error.status in (404, 410):
                    gone.append(slot.role)
                continue
            except CallsError:
                continue
            if slot is self._push:
                inactive = {t.mid for t in state.tracks or [] if t.status == 'inactive' and t.mid}
                sending = {r.mid for r in self._keys.values() if r.state is KeyState.SENDING and r.mid}
                if inactive & sending:
                    gone.append(slot.role)
        if gone:
            log.warning(
                'room=%s participant=%s: the SFU no longer has our %s session',
                self.room,
                self.participant_id,
                ' and '.join(gone),
            )
        return gone

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
