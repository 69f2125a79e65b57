"""One room: its participants and every mutation of them, each returning (and announcing) what changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final

from rooms.access import Knock, Member, Pass, RoomAccess, unique_name
from rooms.model import (
    CameraFeed,
    InvalidInputError,
    NotAllowedError,
    Participant,
    PublishedTrack,
    Role,
    TrackLocator,
    UnknownCameraError,
    UnknownParticipantError,
    validate_camera_label,
    validate_device_id,
    validate_display_name,
    validate_participant_id,
)
from rooms.visibility import can_hear

HEARTBEAT_TIMEOUT: Final = 15.0
MAX_CAMERAS: Final = 16


class ChangeKind(StrEnum):
    """What kind of change a RoomChange reports."""

    JOINED = 'joined'
    LEFT = 'left'
    EXPIRED = 'expired'
    TRACKS = 'tracks'
    HAND = 'hand'
    SPEAKING = 'speaking'
    RENAMED = 'renamed'
    MUTE_REQUESTED = 'mute_requested'
    ACCESS = 'access'  # the door changed: a knock, an admission or denial, the lock, the cap, the approval rule


@dataclass(frozen=True, kw_only=True, slots=True)
class RoomChange:
    """One change to a room; `unpublished` lists locators no longer published (close them at the SFU).

    `by` names who caused a change made on someone else's behalf (the participant who asked for a mute, the host who
    removed someone: a LEFT change with `by`). An ACCESS change names the knock in `participant_id` when it is about
    one (`decision` 'knock', 'withdrawn', 'admitted' or 'denied'), else the participant who changed the policy.
    """

    room: str
    kind: ChangeKind
    participant_id: str
    unpublished: tuple[TrackLocator, ...] = ()
    by: str | None = None
    decision: str | None = None


class _Keep(Enum):
    KEEP = 'keep'


KEEP: Final = _Keep.KEEP
"""Passed as `locator` to Room.update_camera to leave the camera's locator as it is."""


def _as_locator(locator: TrackLocator | str | None) -> TrackLocator | None:
    return TrackLocator.parse(locator) if isinstance(locator, str) else locator


@dataclass(kw_only=True, slots=True)
class Room:
    """A room's participants; `on_change` (set by the registry) hears about every change made here."""

    name: str
    participants: dict[str, Participant] = field(default_factory=dict)
    access: RoomAccess = field(default_factory=RoomAccess)
    title: str = ''  # the readable name shown to those inside (the address is random)
    on_change: Callable[[RoomChange], None] | None = field(default=None, repr=False, compare=False)

    # -- queries ---------------------------------------------------------------------------------------------------

    def get(self, pid: str) -> Participant:
        """Return the participant with this id, or raise UnknownParticipantError."""
        try:
            return self.participants[pid]
        except KeyError:
            raise UnknownParticipantError(f'no participant {pid!r} in room {self.name!r}') from None

    def __contains__(self, pid: object) -> bool:
        return pid in self.participants

    @property
    def is_empty(self) -> bool:
        """True when nobody is in the room."""
        return not self.participants

    def stations(self) -> list[Participant]:
        """The hospital stations in the room, in join order."""
        return [p for p in self.participants.values() if p.role is Role.HOSPITAL]

    def technician_count(self) -> int:
        """How many technicians are in the room (what a hospital shows as "watching")."""
        return sum(1 for p in self.participants.values() if p.role is Role.TECHNICIAN)

    def anyone_sharing(self) -> bool:
        """True while at least one participant shares a screen."""
        return any(p.sharing_screen for p in self.participants.values())

    # -- membership ------------------------------------------------------------------------------------------------

    def join(self, pid: str, name: str, role: Role | str, now: float) -> Participant:
        """Add a participant (or refresh a reconnecting one with the same id and role) and return it."""
        validate_participant_id(pid)
        display_name = validate_display_name(name)
        try:
            role = Role(role)
        except ValueError:
            raise InvalidInputError(f'unknown role {role!r}') from None
        existing = self.participants.get(pid)
        if existing is not None:
            if existing.role is not role:
                raise NotAllowedError(
                    f'{pid!r} is in room {self.name!r} as {existing.role}; leave before joining as {role}'
                )
            existing.last_heartbeat = max(existing.last_heartbeat, now)
            if existing.name != display_name:
                existing.name = display_name
                self._emit(ChangeKind.RENAMED, pid)
            return existing
        participant = Participant(
            id=pid, name=display_name, role=role, joined_at=now, last_heartbeat=now, last_active=now
        )
        self.participants[pid] = participant
        self._emit(ChangeKind.JOINED, pid)
        return participant

    def leave(self, pid: str) -> Participant | None:
        """Remove a participant and return it (None if already gone) so the caller can close its tracks."""
        participant = self.participants.pop(pid, None)
        if participant is not None:
            self.access.left(pid)
            self._emit(ChangeKind.LEFT, pid, tuple(participant.locators()))
        return participant

    def heartbeat(self, pid: str, now: float) -> None:
        """Record that the participant is alive (raises UnknownParticipantError once it has expired)."""
        participant = self.get(pid)
        participant.last_heartbeat = max(participant.last_heartbeat, now)

    def expire(self, now: float, timeout: float = HEARTBEAT_TIMEOUT) -> list[Participant]:
        """Remove and return everyone whose last heartbeat is more than `timeout` seconds before `now`."""
        if timeout <= 0:
            raise InvalidInputError('the heartbeat timeout must be positive')
        stale = [p for p in self.participants.values() if now - p.last_heartbeat > timeout]
        for participant in stale:
            del self.participants[participant.id]
            self.access.left(participant.id)
            self._emit(ChangeKind.EXPIRED, participant.id, tuple(participant.locators()))
        return stale

    # -- single tracks ---------------------------------------------------------------------------------------------

    def set_mic(self, pid: str, locator: TrackLocator | str | None, enabled: bool = True) -> RoomChange | None:
        """Publish (or with None, withdraw) the participant's microphone; `enabled` False means muted."""
        participant = self.get(pid)
        new = self._published(participant.mic, locator, enabled)
        old, participant.mic = participant.mic, new
        return self._track_changed(pid, old, new)

    def set_camera(self, pid: str, locator: TrackLocator | str | None, enabled: bool = True) -> RoomChange | None:
        """Publish (or withdraw) the single camera of a technician or regular user; `enabled` False means off."""
        participant = self.get(pid)
        if participant.role is Role.HOSPITAL:
            raise NotAllowedError('a hospital station publishes cameras with add_camera')
        new = self._published(participant.camera, locator, enabled)
        old, participant.camera = participant.camera, new
        return self._track_changed(pid, old, new)

    def set_screen(self, pid: str, locator: TrackLocator | str | None, enabled: bool = True) -> RoomChange | None:
        """Start (locator) or stop (None) sharing a screen; technicians have no screen to share."""
        participant = self.get(pid)
        if participant.role is Role.TECHNICIAN:
            raise NotAllowedError('a technician station does not share its screen')
        new = self._published(participant.screen, locator, enabled)
        old, participant.screen = participant.screen, new
        return self._track_changed(pid, old, new)

    # -- hospital cameras ------------------------------------------------------------------------------------------

    def add_camera(
        self, pid: str, device_id: str, label: str = '', enabled: bool = True, locator: TrackLocator | str | None = None
    ) -> RoomChange:
        """Add a camera to a hospital station (its locator usually follows with update_camera once sending)."""
        participant = self._station(pid)
        validate_device_id(device_id)
        if participant.camera_feed(device_id) is not None:
            raise NotAllowedError(f'camera {device_id!r} is already added')
        if len(participant.cameras) >= MAX_CAMERAS:
            raise NotAllowedError(f'a station publishes at most {MAX_CAMERAS} cameras')
        feed = CameraFeed(device_id=device_id, label=validate_camera_label(label, device_id), enabled=enabled)
        feed.locator = self._checked_locator(_as_locator(locator), None)
        participant.cameras.append(feed)
        return self._emit(ChangeKind.TRACKS, pid)

    def update_camera(
        self,
        pid: str,
        device_id: str,
        *,
        label: str | None = None,
        enabled: bool | None = None,
        locator: TrackLocator | str | _Keep | None = KEEP,
    ) -> RoomChange | None:
        """Change a station camera's label, enabled flag and/or locator (None: not sending); None if unchanged."""
        feed = self._feed(pid, device_id)
        new_label = feed.label if label is None else validate_camera_label(label, device_id)
        new_enabled = feed.enabled if enabled is None else enabled
        new_locator = feed.locator if locator is KEEP else self._checked_locator(_as_locator(locator), feed.locator)
        if (new_label, new_enabled, new_locator) == (feed.label, feed.enabled, feed.locator):
            return None
        old_locator = feed.locator
        feed.label, feed.enabled, feed.locator = new_label, new_enabled, new_locator
        gone = (old_locator,) if old_locator is not None and old_locator != new_locator else ()
        return self._emit(ChangeKind.TRACKS, pid, gone)

    def remove_camera(self, pid: str, device_id: str) -> RoomChange:
        """Remove a station camera; the change lists its locator so the caller can close the track."""
        feed = self._feed(pid, device_id)
        self.participants[pid].cameras.remove(feed)
        return self._emit(ChangeKind.TRACKS, pid, () if feed.locator is None else (feed.locator,))

    # -- presence --------------------------------------------------------------------------------------------------

    def raise_hand(self, pid: str, raised: bool, now: float) -> RoomChange | None:
        """Raise or lower the participant's hand (raising counts as activity for the stage)."""
        participant = self.get(pid)
        if raised:
            participant.last_active = max(participant.last_active, now)
        if participant.raised_hand == raised:
            return None
        participant.raised_hand = raised
        return self._emit(ChangeKind.HAND, pid)

    def set_speaking(self, pid: str, speaking: bool, now: float) -> RoomChange | None:
        """Record whether the participant is speaking (speaking counts as activity for the stage)."""
        participant = self.get(pid)
        if speaking:
            participant.last_active = max(participant.last_active, now)
        if participant.speaking == speaking:
            return None
        participant.speaking = speaking
        return self._emit(ChangeKind.SPEAKING, pid)

    def request_mute(self, by: str, target: str) -> RoomChange | None:
        """Ask `target`'s page to switch its microphone off, on behalf of `by` (None when it is already off).

        Only someone who hears the target may ask (same room, a role that receives its microphone); nobody can
        unmute anyone else. The target's own page carries the mute out and announces it like any other mute.
        """
        asker, muted = self.get(by), self.get(target)
        if asker.id == muted.id:
            raise NotAllowedError('switch your own microphone off with your microphone button')
        if not can_hear(asker, muted):
            raise NotAllowedError(f'{asker.name} does not hear {muted.name} and cannot mute them')
        if muted.mic is None or not muted.mic.enabled:
            return None
        return self._emit(ChangeKind.MUTE_REQUESTED, target, by=by)

    def rename(self, pid: str, name: str) -> RoomChange | None:
        """Change the participant's display name (1-50 characters after stripping)."""
        participant = self.get(pid)
        display_name = validate_display_name(name)
        if participant.name == display_name:
            return None
        participant.name = display_name
        return self._emit(ChangeKind.RENAMED, pid)

    # -- the door ------------------------------------------------------------------------------------------------

    def unique_name(self, name: str, pid: str | None = None) -> str:
        """`name`, or a numbered variant that nobody else in the room (but `pid`) has."""
        wanted = validate_display_name(name)
        return unique_name(wanted, (p.name for p in self.participants.values() if p.id != pid))

    def present_browsers(self) -> list[str]:
        """The browsers of the participants in the room (for the cap)."""
        return [m.browser for pid, m in self.access.members.items() if pid in self.participants]

    def entered(self, pid: str, member: Member) -> None:
        """Remember how participant `pid` got in (its pass); the host's grant makes the room theirs."""
        self.get(pid)
        self.access.enter(pid, member)
        if member.admin and not self.access.owner:
            self.access.owner = member.grant

    def knock(self, *, knock_id: str, name: str, pass_: Pass, now: float) -> Knock:
        """Wait at the door; the host and the room's stations see the knock."""
        knock = self.access.knock(knock_id=knock_id, name=validate_display_name(name), pass_=pass_, now=now)
        self._emit(ChangeKind.ACCESS, knock_id, decision='knock')
        return knock

    def withdraw(self, knock_id: str) -> Knock | None:
        """The knocker left the door."""
        knock = self.access.withdraw(knock_id)
        if knock is not None:
            self._emit(ChangeKind.ACCESS, knock_id, decision='withdrawn')
        return knock

    def admit(self, by: str, knock_id: str) -> Knock:
        """The host or a hospital station lets a knock in."""
        self._decider(by)
        knock = self.access.admit(knock_id)
        self._emit(ChangeKind.ACCESS, knock_id, by=by, decision='admitted')
        return knock

    def deny(self, by: str, knock_id: str) -> Knock:
        """The host or a hospital station turns a knock away."""
        self._decider(by)
        knock = self.access.deny(knock_id)
        self._emit(ChangeKind.ACCESS, knock_id, by=by, decision='denied')
        return knock

    def remove(self, by: str, target: str) -> Participant:
        """The host removes a participant: it leaves now (its pages close its tracks), and its invite (or browser)
        cannot come back in without being readmitted from the waiting room."""
        self._host(by)
        if by == target:
            raise NotAllowedError('leave with your own Leave button')
        participant = self.get(target)
        member = self.access.members.get(target)
        if member is not None and member.grant and member.grant == self.access.owner:
            raise NotAllowedError("the room's owner cannot be removed")
        del self.participants[target]
        self.access.remove(target)
        self._emit(ChangeKind.LEFT, target, tuple(participant.locators()), by=by)
        return participant

    def lock(self, by: str, locked: bool) -> RoomChange | None:
        """The host locks the room (everyone new waits for approval) or unlocks it."""
        self._host(by)
        if self.access.locked == locked:
            return None
        self.access.locked = locked
        return self._emit(ChangeKind.ACCESS, by, by=by, decision='locked' if locked else 'unlocked')

    def set_capacity(self, by: str, capacity: int | None) -> RoomChange | None:
        """The host caps the number of participants (None: no cap); those inside stay."""
        self._host(by)
        if self.access.capacity == capacity:
            return None
        self.access.set_capacity(capacity)
        return self._emit(ChangeKind.ACCESS, by, by=by, decision='capacity')

    def set_technician_approval(self, by: str, required: bool) -> RoomChange | None:
        """A hospital station (or the host) decides whether technicians wait for approval before seeing cameras."""
        self._decider(by)
        if self.access.technician_approval == required:
            return None
        self.access.technician_approval = required
        return self._emit(ChangeKind.ACCESS, by, by=by, decision='approval')

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _emit(
        self,
        kind: ChangeKind,
        pid: str,
        unpublished: tuple[TrackLocator, ...] = (),
        by: str | None = None,
        decision: str | None = None,
    ) -> RoomChange:
        change = RoomChange(
            room=self.name, kind=kind, participant_id=pid, unpublished=unpublished, by=by, decision=decision
        )
        if self.on_change is not None:
            self.on_change(change)
        return change

    def _host(self, pid: str) -> Participant:
        participant = self.get(pid)
        if not self.access.is_admin(pid):
            raise NotAllowedError('only the host does this')
        return participant

    def _decider(self, pid: str) -> Participant:
        participant = self.get(pid)
        if not self.access.may_decide(participant.role, self.access.is_admin(pid)):
            raise NotAllowedError('only the host and the hospital stations let people in')
        return participant

    def _station(self, pid: str) -> Participant:
        participant = self.get(pid)
        if participant.role is not Role.HOSPITAL:
            raise NotAllowedError('only a hospital station publishes several cameras')
        return participant

    def _feed(self, pid: str, device_id: str) -> CameraFeed:
        feed = self._station(pid).camera_feed(device_id)
        if feed is None:
            raise UnknownCameraError(f'station {pid!r} has no camera {device_id!r}')
        return feed

    def _checked_locator(self, locator: TrackLocator | None, current: TrackLocator | None) -> TrackLocator | None:
        """Refuse a locator that is already published in this room by another participant or another slot."""
        if locator is None or locator == current:
            return locator
        if any(locator in p.locators() for p in self.participants.values()):
            raise NotAllowedError(f'track {locator} is already published in room {self.name!r}')
        return locator

    def _published(
        self, current: PublishedTrack | None, locator: TrackLocator | str | None, enabled: bool
    ) -> PublishedTrack | None:
        checked = self._checked_locator(_as_locator(locator), None if current is None else current.locator)
        return None if checked is None else PublishedTrack(locator=checked, enabled=enabled)

    def _track_changed(self, pid: str, old: PublishedTrack | None, new: PublishedTrack | None) -> RoomChange | None:
        if old == new:
            return None
        gone = (old.locator,) if old is not None and (new is None or new.locator != old.locator) else ()
        return self._emit(ChangeKind.TRACKS, pid, gone)
