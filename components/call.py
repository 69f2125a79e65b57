"""A page's presence in a room: joins room state, publishes local media, pulls what the rules allow, and leaves.

Pages build their UI around one `Call`; it is the glue between `rooms` (pure state), `media.negotiation`
(Calls exchanges) and the page's `MediaSession` element (the browser).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nicegui import background_tasks

from components.media_session import MediaSession
from media.calls_api import CallsError
from media.calls_api import TrackLocator as WireLocator
from media.negotiation import NegotiationError, PageMedia
from rooms import (
    ChangeKind,
    Participant,
    Role,
    Room,
    RoomChange,
    RoomError,
    RoomRegistry,
    Source,
    TrackLocator,
    clean_label,
    may_pull,
    visible_tracks,
)
from rooms.limits import TokenBucket
from rooms.model import LABEL_MAX_LENGTH
from rooms.room import MAX_CAMERAS

log = logging.getLogger(__name__)
SYNC_BACKOFF_FIRST = 1.0  # seconds before the first retry of a failed media sync
SYNC_BACKOFF_MAX = 30.0  # the cap: a page whose media keeps failing asks once every 30 s, not every second
CONNECTION_ROLES = frozenset({'push', 'pull'})  # the page's two peer connections
CONNECTION_STATES = frozenset({'new', 'connecting', 'connected', 'disconnected', 'failed', 'closed'})
RECOVERY_RATE = 1 / 20  # rebuilt sessions a page's "connection failed" may cause: 1 per 20 s on average …
RECOVERY_BURST = 2.0  # … after a burst of 2 (both peer connections failing at once)
SOURCES = frozenset({'mic', 'camera', 'screen'})
PROBE_INTERVAL = 10.0  # seconds between asking the SFU whether the page's sessions are alive (a GET each)
DISCONNECTED_GRACE = 10.0  # a peer connection 'disconnected' this long is rebuilt like a failed one


def sync_backoff(failures: int) -> float:
    """Seconds to wait after `failures` consecutive failed syncs: 1, 2, 4, 8, 16, 30, 30, …"""
    return min(SYNC_BACKOFF_FIRST * 2.0 ** max(failures - 1, 0), SYNC_BACKOFF_MAX)


@dataclass(kw_only=True, slots=True)
class LocalTrack:
    """Something this page captures and publishes."""

    key: str
    source: str  # 'mic' | 'camera' | 'screen'
    device_id: str | None = None
    label: str = ''
    enabled: bool = True


@dataclass(kw_only=True)
class Call:
    """One participant's page in one room."""

    registry: RoomRegistry
    room: Room
    role: Role
    name: str
    session: MediaSession
    media: PageMedia
    participant_id: str
    on_room_change: Callable[[], Any] = lambda: None
    on_status: Callable[[str, str], Any] = lambda state, message: None
    on_muted: Callable[[str], Any] = lambda by_name: None
    pull_filter: Callable[[str], bool] | None = None
    on_watching: Callable[[str, bool], Any] = lambda key, started: None
    """Told (tile key, True) once a pull of a video or screen tile really succeeded, and (tile key, False) when
    this page stops receiving it (unpulled, left, or dropped by a rebuilt session): who saw which camera, when."""
    watching: set[str] = field(default_factory=set)  # video/screen tiles received now, as told to `on_watching`
    local: dict[str, LocalTrack] = field(default_factory=dict)
    connection: dict[str, str] = field(default_factory=dict)
    left: bool = False
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _worker: asyncio.Task[None] | None = None
    _unsubscribe: Callable[[], Any] | None = None
    _recovering: bool = False
    _failed_roles: set[str] = field(default_factory=set)  # peer connections ('push', 'pull') to rebuild
    _recoveries: TokenBucket = field(default_factory=lambda: TokenBucket(rate=RECOVERY_RATE, burst=RECOVERY_BURST))
    _recovery_timer: asyncio.TimerHandle | None = None  # one deferred recovery while the budget is spent
    _disconnected_since: dict[str, float] = field(default_factory=dict)  # role -> monotonic time it went down
    _watchdog: asyncio.Task[None] | None = None
    _publishing: dict[str, LocalTrack] = field(default_factory=dict)  # admitted, being captured and pushed

    @classmethod
    def create(
        cls, *, registry: RoomRegistry, room_name: str, role: Role, name: str, session: MediaSession, client: Any
    ) -> Call:
        """Join `room_name` as `role` (the role was granted by `pages.roles`) and wire the page's media."""
        room = registry.get_or_create(room_name)
        participant_id = uuid.uuid4().hex[:16]

        def authorise(locator: WireLocator) -> bool:
            return may_pull(participant_id, room, str(locator))

        media = PageMedia(
            client=client, driver=session, room=room_name, participant_id=participant_id, may_pull=authorise
        )
        call = cls(
            registry=registry,
            room=room,
            role=role,
            name=name,
            session=session,
            media=media,
            participant_id=participant_id,
        )
        media.on_locator = call._locator_changed
        media.on_broken = call._dirty.set  # the sync loop heals the broken session (with backoff)
        room.join(participant_id, name, role, time.monotonic())
        call._unsubscribe = registry.subscribe(room_name, call._changed)
        session.on('heartbeat', lambda _: call.heartbeat())
        session.on('connection', call._connection)
        session.on('local_ended', call._local_ended)
        session.on('speaking', call._speaking)
        call._worker = background_tasks.create(call._sync_loop(), name=f'pulls {room_name}/{participant_id}')
        call._watchdog = background_tasks.create(call._watch_sessions(), name=f'watchdog {room_name}/{participant_id}')
        call._dirty.set()
        return call

    @property
    def me(self) -> Participant | None:
        return self.room.participants.get(self.participant_id)  # None once expired or left, never raises

    # ---- publishing -------------------------------------------------------------------------------------------

    async def publish(self, track: LocalTrack) -> str | None:
        """Capture and push `track`; returns an error message for the user, or None."""
        problems = await self.publish_all([track])
        return problems[0] if problems else None

    async def publish_all(self, tracks: list[LocalTrack]) -> list[str]:
        """Capture `tracks`, then push them in ONE offer (one Calls exchange, not one per track).

        Returns the messages for the user of whatever could not be captured or published.
        """
        admitted, problems = self._admissible(tracks)
        for track in admitted:  # reserved while being captured and pushed: concurrent publishes see them
            self._publishing[track.key] = track
        try:
            return [*problems, *await self._publish_admitted(admitted)]
        finally:
            for track in admitted:
                self._publishing.pop(track.key, None)

    async def _publish_admitted(self, admitted: list[LocalTrack]) -> list[str]:
        problems: list[str] = []
        opened: list[LocalTrack] = []
        for track in admitted:
            try:
                result = await self.session.open_local(track.key, track.source, track.device_id)
            except NegotiationError as error:  # the browser did not answer, or answered nonsense
                problems.append(str(error))
                continue
            if self.left:
                break
            if not result.get('ok'):
                problems.append(str(result.get('error', {}).get('message') or 'The device could not be opened.'))
                continue
            # What the room announces: a cleaned label cut to the room's limit (a capture card's long name), and
            # the device asked for (a page cannot turn one requested device into another).
            track.label = clean_label(track.label or result.get('label'), LABEL_MAX_LENGTH)
            track.device_id = track.device_id or str(result.get('deviceId') or '') or None
            self.local[track.key] = track
            opened.append(track)
        if not opened:
            return problems
        try:
            locators = await self.media.push([track.key for track in opened])
        except (CallsError, NegotiationError) as error:
            log.warning(
                'room=%s participant=%s: publishing %s failed: %s',
                self.room.name,
                self.participant_id,
                ','.join(track.key for track in opened),
                error,
            )
            await self._quietly(self.media.unpush([track.key for track in opened]), 'forgetting a failed push')
            for track in opened:
                await self._quietly(self.session.close_local(track.key), 'releasing a failed capture')
                self.local.pop(track.key, None)
            self._dirty.set()  # the push session is rebuilt and whatever else it carried pushed again
            return [*problems, 'Publishing failed; try again.']
        refused: list[LocalTrack] = []
        for track in opened:
            try:
                self._announce(track, locators.get(track.key))
            except RoomError as error:  # the room refuses it (a rule it alone knows): nothing stays published
                log.info(
                    'room=%s participant=%s: announcing %s: %s', self.room.name, self.participant_id, track.key, error
                )
                problems.append(str(error))
                refused.append(track)
        if refused:
            keys = [track.key for track in refused]
            await self._quietly(self.media.unpush(keys), 'forgetting a refused push')
            for track in refused:
                await self._quietly(self.session.close_local(track.key), 'releasing a refused capture')
                self.local.pop(track.key, None)
        return problems

    def _admissible(self, tracks: list[LocalTrack]) -> tuple[list[LocalTrack], list[str]]:
        """The room's rules, checked before anything is captured or pushed: one microphone, one screen (none for a
        technician), one camera (a hospital station: up to `MAX_CAMERAS`, one per device); the rest is refused."""
        admitted: list[LocalTrack] = []
        problems: list[str] = []
        for track in tracks:
            taken = [
                t for t in [*self.local.values(), *self._publishing.values(), *admitted] if t.source == track.source
            ]
            problem = None
            if track.source not in SOURCES:
                problem = 'Unknown kind of device.'
            elif track.key in self.local or track.key in self._publishing or any(t.key == track.key for t in admitted):
                problem = 'Already published.'
            elif track.source == 'screen' and self.role == Role.TECHNICIAN:
                problem = 'A technician station does not share its screen.'
            elif track.source == 'camera' and self.role == Role.HOSPITAL:
                if track.device_id and any(t.device_id == track.device_id for t in taken):
                    problem = 'This camera is already added.'
                elif len(taken) >= MAX_CAMERAS:
                    problem = f'A station publishes at most {MAX_CAMERAS} cameras.'
            elif taken:
                problem = f'Only one {"microphone" if track.source == "mic" else track.source} can be published.'
            if problem is None:
                admitted.append(track)
            else:
                problems.append(problem)
        if problems:
            log.info('room=%s participant=%s: refused to publish: %s', self.room.name, self.participant_id, problems)
        return admitted, problems

    async def unpublish(self, key: str) -> None:
        """Stop sending and capturing `key`."""
        track = self.local.pop(key, None)
        if track is None:
            return
        try:
            self._announce(track, None, removed=True)
        except RoomError as error:  # never announced (refused by the room): nothing to withdraw
            log.info('room=%s participant=%s: withdrawing %s: %s', self.room.name, self.participant_id, key, error)
        await self._quietly(self.media.unpush([key]), f'unpublishing {key}')
        await self._quietly(self.session.close_local(key), f'releasing {key}')
        self._dirty.set()

    async def set_enabled(self, key: str, enabled: bool) -> str | None:
        """Mute/unmute a local track without renegotiation; everyone sees the flag at once."""
        track = self.local.get(key)
        if track is None:
            return 'Nothing to switch.'
        result = await self.session.set_local_enabled(key, enabled)
        if not result.get('ok'):
            return str(result.get('error', {}).get('message') or 'The device could not be switched.')
        track.enabled = enabled
        if not enabled:  # off: everyone sees it at once; the locator is kept while the SFU keeps the track
            self._announce(track, self.media.pushed.get(key))
            await self._quietly(self.media.pause(key, sends_while_off=track.source == 'mic'), f'pausing {key}')
            if track.source == 'mic':
                self._set_speaking(False)
            return None
        # On again: after a long pause the SFU has dropped the track (30 s without media), so `resume` publishes it
        # again when needed and the room learns the new locator; a short pause keeps the locator.
        if not await self._quietly(self.media.resume(key), f'resuming {key}'):
            self._dirty.set()  # failed: the sync loop heals the push session and pushes it again
        if self.local.get(key) is track and track.enabled:
            self._announce(track, self.media.pushed.get(key))
        return None

    def announce(self, key: str) -> None:
        """Tell the room about local track `key` as it is now (e.g. a silent camera that started sending)."""
        track = self.local.get(key)
        if track is not None:
            self._announce(track, self.media.pushed.get(key))

    def rename(self, key: str, label: str) -> str | None:
        """Change the label others see on a local track's tile (hospital cameras); returns an error message or None."""
        track = self.local.get(key)
        if track is None:
            return 'Nothing to rename.'
        old = track.label
        track.label = clean_label(label, 4 * LABEL_MAX_LENGTH)  # too long still says so (the room's error)
        try:
            self._announce(track, self.media.pushed.get(key))
        except RoomError as error:
            track.label = old
            return str(error)
        return None

    def _locator_changed(self, key: str, locator: WireLocator | None) -> None:
        """PageMedia's news: `key` was pushed again (rebuilt session, re-publish) or lost its push for now."""
        track = self.local.get(key)
        if track is None or self.left:
            return
        try:
            self._announce(track, locator)
        except RoomError as error:
            log.info('room=%s participant=%s: announcing %s: %s', self.room.name, self.participant_id, key, error)
        if locator is None:
            self._dirty.set()

    async def _quietly(self, step: Awaitable[Any], what: str) -> bool:
        """Run one media step for a user action; a failure is logged (the sync loop heals), never raised into the
        page. Returns True when it succeeded."""
        try:
            await step
        except Exception as error:  # Calls, negotiation, a browser method timing out, the page's client gone
            if not self.left:
                log.warning('room=%s participant=%s: %s failed: %r', self.room.name, self.participant_id, what, error)
            return False
        return True

    def _announce(self, track: LocalTrack, locator: WireLocator | None, *, removed: bool = False) -> None:
        room_locator = TrackLocator.parse(str(locator)) if locator is not None else None
        pid = self.participant_id
        if self.me is None:
            return
        if track.source == 'mic':
            self.room.set_mic(pid, None if removed else room_locator, enabled=track.enabled)
        elif track.source == 'screen':
            self.room.set_screen(pid, None if removed else room_locator, enabled=track.enabled)
        elif self.role == Role.HOSPITAL:
            device = track.device_id or track.key
            if removed:
                self.room.remove_camera(pid, device)
            elif self.me.camera_feed(device) is None:
                self.room.add_camera(pid, device, track.label, enabled=track.enabled, locator=room_locator)
            else:
                self.room.update_camera(pid, device, label=track.label, enabled=track.enabled, locator=room_locator)
        else:
            self.room.set_camera(pid, None if removed else room_locator, enabled=track.enabled)

    # ---- presence -------------------------------------------------------------------------------------------

    def raise_hand(self, raised: bool) -> None:
        """Raise or lower this participant's hand (everyone in the meeting sees it)."""
        if self.me is not None:
            self.room.raise_hand(self.participant_id, raised, time.monotonic())

    def request_mute(self, target_id: str) -> str | None:
        """Ask another participant's page to switch its microphone off; returns an error message or None."""
        try:
            self.room.request_mute(self.participant_id, target_id)
        except RoomError as error:
            return str(error)
        log.info('room=%s participant=%s asked %s to mute', self.room.name, self.participant_id, target_id)
        return None

    def _speaking(self, event: Any) -> None:
        args = event.args
        if not isinstance(args, dict) or not isinstance(args.get('speaking'), bool):
            return
        mic = self.local.get('mic')
        self._set_speaking(args['speaking'] and mic is not None and mic.enabled)

    def _set_speaking(self, speaking: bool) -> None:
        if self.me is not None:
            self.room.set_speaking(self.participant_id, speaking, time.monotonic())

    async def _muted_by(self, asker_id: str | None) -> None:
        asker = self.room.participants.get(asker_id or '')
        mic = self.local.get('mic')
        if mic is None or not mic.enabled:
            return
        problem = await self.set_enabled('mic', False)
        if problem is None:
            self.on_muted(asker.name if asker is not None else 'Someone')

    # ---- receiving --------------------------------------------------------------------------------------------

    def wanted_pulls(self) -> dict[str, WireLocator]:
        """Tile key -> locator of everything this participant may receive right now."""
        me = self.me
        if me is None:
            return {}
        wanted = self.pull_filter or (lambda key: True)
        return {
            track.key: WireLocator.parse(str(track.locator))
            for track in visible_tracks(me, self.room)
            if track.locator is not None and wanted(track.key)
        }

    def refresh_pulls(self) -> None:
        """Re-apply `wanted_pulls` (after `pull_filter`'s answer changed, e.g. a new stage)."""
        self._dirty.set()

    def _changed(self, change: RoomChange) -> None:
        if change.kind in {ChangeKind.LEFT, ChangeKind.EXPIRED} and change.participant_id == self.participant_id:
            background_tasks.create(self.leave(), name='leave after expiry')
            return
        if change.kind is ChangeKind.MUTE_REQUESTED and change.participant_id == self.participant_id:
            background_tasks.create(self._muted_by(change.by), name='muted by another participant')
        self._dirty.set()
        self.on_room_change()

    async def _sync_loop(self) -> None:
        """Heal what failed and make the pulled set follow the room; after a failure wait 1, 2, 4 … 30 s before
        trying again (reset by a success), so a page whose media keeps failing does not hammer the SFU."""
        failures = 0
        while not self.left:
            await self._dirty.wait()
            self._dirty.clear()
            if self.left or self._recovering:
                continue
            try:
                if self.media.needs_heal:
                    await self.media.heal()
                await self.media.sync_pulls(self.wanted_pulls())
            except Exception as error:  # Calls, negotiation, or the page went away mid-exchange
                self._update_watching()
                if self.left:
                    continue
                failures += 1
                delay = sync_backoff(failures)
                if isinstance(error, (CallsError, NegotiationError)):
                    log.warning(
                        'room=%s participant=%s: media sync failed (retry in %.0f s): %s',
                        self.room.name,
                        self.participant_id,
                        delay,
                        error,
                    )
                else:
                    log.exception('room=%s participant=%s: sync failed', self.room.name, self.participant_id)
                await asyncio.sleep(delay)
                self._dirty.set()
            else:
                failures = 0
                self._update_watching()

    def _update_watching(self) -> None:
        """Tell `on_watching` which video/screen tiles started or stopped being received since last time."""
        now = set() if self.left else {key for key in self.media.pulled if _is_video_tile(key)}
        started, ended = sorted(now - self.watching), sorted(self.watching - now)
        self.watching = now
        for key, on in [*((k, False) for k in ended), *((k, True) for k in started)]:
            try:
                self.on_watching(key, on)
            except Exception:  # an audit hook failing must not stop media
                log.exception('room=%s participant=%s: on_watching(%s)', self.room.name, self.participant_id, key)

    # ---- liveness ---------------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        try:
            self.room.heartbeat(self.participant_id, time.monotonic())
        except RoomError:
            background_tasks.create(self.leave(), name='leave after missed heartbeats')

    def _connection(self, event: Any) -> None:
        args = event.args
        role = args.get('role') if isinstance(args, dict) else None
        state = args.get('state') if isinstance(args, dict) else None
        if not isinstance(role, str) or not isinstance(state, str):
            return
        if role not in CONNECTION_ROLES or state not in CONNECTION_STATES:
            log.debug('room=%s participant=%s: unknown connection event dropped', self.room.name, self.participant_id)
            return
        before = self.connection.get(role)
        self.connection[role] = state
        if state == 'disconnected':
            self._disconnected_since.setdefault(role, time.monotonic())
        else:
            self._disconnected_since.pop(role, None)
        worst = (
            'failed'
            if 'failed' in self.connection.values()
            else ('connected' if all(s == 'connected' for s in self.connection.values()) else 'connecting')
        )
        self.on_status(worst, f'{role}: {state}')
        if state == 'failed' and before != 'failed' and not self.left:
            self._failed_roles.add(role)
            self._start_recovery()

    async def _watch_sessions(self) -> None:
        """Every PROBE_INTERVAL: rebuild what is dead though nobody said so — a session the SFU dropped (the browser
        may keep calling its connection 'connected' or 'disconnected' for ever), or a connection 'disconnected' for
        longer than DISCONNECTED_GRACE. Rebuilds go through the same budget as a failed connection's."""
        while not self.left:
            await asyncio.sleep(PROBE_INTERVAL)
            if self.left or self._recovering:
                continue
            now = time.monotonic()
            dead = {role for role, since in self._disconnected_since.items() if now - since >= DISCONNECTED_GRACE}
            try:
                dead |= set(await self.media.probe())
            except Exception as error:  # the probe is advisory: never let it end the watchdog
                log.debug('room=%s participant=%s: probe failed: %s', self.room.name, self.participant_id, error)
            dead &= CONNECTION_ROLES
            if dead and not self.left:
                log.info(
                    'room=%s participant=%s: rebuilding %s (dead without a failure event)',
                    self.room.name,
                    self.participant_id,
                    ', '.join(sorted(dead)),
                )
                for role in dead:
                    self._disconnected_since.pop(role, None)
                self._failed_roles |= dead
                self._start_recovery()

    def _start_recovery(self) -> None:
        """Rebuild the failed roles' sessions now if the page's recovery budget allows (every rebuild is a new SFU
        session); else once, when the budget allows again and a connection is still failed. Never queued."""
        if self._recovering or self.left or not self._failed_roles:
            return
        now = time.monotonic()
        if self._recoveries.take(now):
            self._recovering = True  # set before the task runs: a second event must not start a second recovery
            background_tasks.create(self._recover(), name='media recovery')
            return
        if self._recovery_timer is None:
            log.debug('room=%s participant=%s: recovery deferred (budget spent)', self.room.name, self.participant_id)
            wait = max(0.0, (1.0 - self._recoveries.tokens) / RECOVERY_RATE)
            self._recovery_timer = asyncio.get_running_loop().call_later(wait, self._deferred_recovery)

    def _deferred_recovery(self) -> None:
        self._recovery_timer = None
        self._failed_roles &= {role for role, state in self.connection.items() if state == 'failed'}
        self._start_recovery()

    async def _recover(self) -> None:
        """Rebuild the failed peer connections' sessions only (a failed pull leaves our own tracks alone)."""
        self._recovering = True
        self.on_status('reconnecting', 'Reconnecting media…')
        try:
            roles = sorted(self._failed_roles)
            self._failed_roles.clear()
            for role in roles:
                self.connection.pop(role, None)  # the failed connection is replaced; its new one reports anew
            locators = await self.media.recover(roles)
            self._update_watching()
            for key, locator in locators.items():
                if key in self.local:
                    self._announce(self.local[key], locator)
        except Exception as error:  # any failure here means: tell the user, retry on the next change
            log.warning('room=%s participant=%s: recovery failed: %s', self.room.name, self.participant_id, error)
            self.on_status('failed', 'Media connection failed. Reload the page to try again.')
        finally:
            self._recovering = False
            self._dirty.set()
            self._start_recovery()  # a connection that failed meanwhile: within the budget, or deferred once

    def _local_ended(self, event: Any) -> None:
        key = event.args.get('key') if isinstance(event.args, dict) else None
        track = self.local.get(key) if isinstance(key, str) else None
        if track is None or key is None:
            return
        if track.source == 'screen':  # the browser's "Stop sharing": keep the slot, show the screen as not shared
            background_tasks.create(self.set_enabled(key, False), name='screen share ended')
        else:
            background_tasks.create(self.unpublish(key), name='local track ended')

    async def leave(self) -> None:
        """Leave the room and free everything at the SFU; safe to call twice."""
        if self.left:
            return
        self.left = True
        self._dirty.set()
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if self._recovery_timer is not None:
            self._recovery_timer.cancel()
            self._recovery_timer = None
        self._update_watching()  # whatever was watched ends now
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.room.leave(self.participant_id)
        self.registry.drop_if_empty(self.room.name)
        await self.media.close()
        log.info(
            'room=%s participant=%s (%s) left; closed media sessions %s',
            self.room.name,
            self.participant_id,
            self.name,
            ','.join(self.media.session_ids) or '-',
        )


def _is_video_tile(key: str) -> bool:
    """A tile key ("pid:source" or "pid:camera:deviceId", see `rooms.tile_key`) of a camera or a screen."""
    parts = key.split(':', 2)
    return len(parts) > 1 and parts[1] in (Source.CAMERA, Source.SCREEN)
