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
    TrackLocator,
    may_pull,
    visible_tracks,
)

log = logging.getLogger(__name__)
SYNC_BACKOFF_FIRST = 1.0  # seconds before the first retry of a failed media sync
SYNC_BACKOFF_MAX = 30.0  # the cap: a page whose media keeps failing asks once every 30 s, not every second


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
    local: dict[str, LocalTrack] = field(default_factory=dict)
    connection: dict[str, str] = field(default_factory=dict)
    left: bool = False
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _worker: asyncio.Task[None] | None = None
    _unsubscribe: Callable[[], Any] | None = None
    _recovering: bool = False
    _failed_roles: set[str] = field(default_factory=set)  # peer connections ('push', 'pull') to rebuild

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
        problems: list[str] = []
        opened: list[LocalTrack] = []
        for track in tracks:
            result = await self.session.open_local(track.key, track.source, track.device_id)
            if not result.get('ok'):
                problems.append(str(result.get('error', {}).get('message') or 'The device could not be opened.'))
                continue
            track.label = track.label or str(result.get('label') or '')
            track.device_id = str(result.get('deviceId') or track.device_id or '')
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
        for track in opened:
            self._announce(track, locators.get(track.key))
        return problems

    async def unpublish(self, key: str) -> None:
        """Stop sending and capturing `key`."""
        track = self.local.pop(key, None)
        if track is None:
            return
        self._announce(track, None, removed=True)
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
        track.label = label.strip()
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
        mic = self.local.get('mic')
        self._set_speaking(bool(event.args.get('speaking')) and mic is not None and mic.enabled)

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

    # ---- liveness ---------------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        try:
            self.room.heartbeat(self.participant_id, time.monotonic())
        except RoomError:
            background_tasks.create(self.leave(), name='leave after missed heartbeats')

    def _connection(self, event: Any) -> None:
        role, state = event.args.get('role'), event.args.get('state')
        self.connection[role] = state
        worst = (
            'failed'
            if 'failed' in self.connection.values()
            else ('connected' if all(s == 'connected' for s in self.connection.values()) else 'connecting')
        )
        self.on_status(worst, f'{role}: {state}')
        if state == 'failed' and role in ('push', 'pull') and not self.left:
            self._failed_roles.add(role)
            if not self._recovering:
                background_tasks.create(self._recover(), name='media recovery')

    async def _recover(self) -> None:
        """Rebuild the failed peer connections' sessions only (a failed pull leaves our own tracks alone)."""
        self._recovering = True
        self.on_status('reconnecting', 'Reconnecting media…')
        try:
            while self._failed_roles and not self.left:
                roles = sorted(self._failed_roles)
                self._failed_roles.clear()
                for role in roles:
                    self.connection.pop(role, None)  # the failed connection is replaced; its new one reports anew
                locators = await self.media.recover(roles)
                for key, locator in locators.items():
                    if key in self.local:
                        self._announce(self.local[key], locator)
        except Exception as error:  # any failure here means: tell the user, retry on the next change
            log.warning('room=%s participant=%s: recovery failed: %s', self.room.name, self.participant_id, error)
            self.on_status('failed', 'Media connection failed. Reload the page to try again.')
        finally:
            self._recovering = False
            self._dirty.set()

    def _local_ended(self, event: Any) -> None:
        key = event.args.get('key')
        track = self.local.get(key)
        if track is None:
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
