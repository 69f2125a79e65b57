"""Room data: roles, participants, their published tracks and the errors room operations raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

NAME_MAX_LENGTH = 50
LABEL_MAX_LENGTH = 60
DEVICE_ID_MAX_LENGTH = 256
PARTICIPANT_ID_MAX_LENGTH = 128
LOCATOR_PART_MAX_LENGTH = 256


class RoomError(Exception):
    """Base class of every error raised by `rooms`."""


class InvalidInputError(RoomError, ValueError):
    """A name, label, locator or other input does not pass validation."""


class UnknownParticipantError(RoomError, KeyError):
    """No participant with this id is in the room."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class UnknownCameraError(RoomError, KeyError):
    """The station has no camera with this device id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class NotAllowedError(RoomError):
    """The operation is valid input but not allowed for this participant (role, ownership, state)."""


class Role(StrEnum):
    """What a participant joined as; decides what it publishes and whom it sees."""

    HOSPITAL = 'hospital'
    TECHNICIAN = 'technician'
    REGULAR = 'regular'


class Kind(StrEnum):
    """Media kind of a track."""

    VIDEO = 'video'
    AUDIO = 'audio'


class Source(StrEnum):
    """Where a track comes from."""

    CAMERA = 'camera'
    MIC = 'mic'
    SCREEN = 'screen'


def _check_locator_part(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f'{what} must be a non-empty string')
    if len(value) > LOCATOR_PART_MAX_LENGTH:
        raise InvalidInputError(f'{what} is longer than {LOCATOR_PART_MAX_LENGTH} characters')
    if '/' in value or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidInputError(f'{what} must not contain "/", whitespace or control characters: {value!r}')
    return value


@dataclass(frozen=True, slots=True)
class TrackLocator:
    """Where a published track lives at the SFU: the Calls session and the track name in it."""

    session_id: str
    track_name: str

    def __post_init__(self) -> None:
        _check_locator_part('session id', self.session_id)
        _check_locator_part('track name', self.track_name)

    def __str__(self) -> str:
        return f'{self.session_id}/{self.track_name}'

    @classmethod
    def parse(cls, text: object) -> TrackLocator:
        """Parse a "sessionId/trackName" string; raise InvalidInputError when malformed."""
        if not isinstance(text, str) or text.count('/') != 1:
            raise InvalidInputError(f'a track locator is "sessionId/trackName", got {text!r}')
        session_id, track_name = text.split('/')
        return cls(session_id, track_name)


@dataclass(kw_only=True, slots=True)
class PublishedTrack:
    """A track a participant publishes, and whether it currently carries media (unmuted)."""

    locator: TrackLocator
    enabled: bool = True


@dataclass(kw_only=True, slots=True)
class CameraFeed:
    """One of a hospital station's cameras; `locator` stays None until the camera is really sending."""

    device_id: str
    label: str
    enabled: bool = True
    locator: TrackLocator | None = None


@dataclass(kw_only=True, slots=True)
class Participant:
    """A person (or station) in a room, with the tracks it publishes."""

    id: str
    name: str
    role: Role
    joined_at: float
    last_heartbeat: float
    last_active: float
    raised_hand: bool = False
    speaking: bool = False
    mic: PublishedTrack | None = None
    camera: PublishedTrack | None = None
    screen: PublishedTrack | None = None
    cameras: list[CameraFeed] = field(default_factory=list)

    def camera_feed(self, device_id: str) -> CameraFeed | None:
        """Return the hospital camera with this device id, if any."""
        return next((feed for feed in self.cameras if feed.device_id == device_id), None)

    def locators(self) -> list[TrackLocator]:
        """Every track locator this participant publishes (mic, camera, screen, hospital cameras)."""
        found = [track.locator for track in (self.mic, self.camera, self.screen) if track is not None]
        found.extend(feed.locator for feed in self.cameras if feed.locator is not None)
        return found

    @property
    def sharing_screen(self) -> bool:
        """True while the participant actually shares a screen."""
        return self.screen is not None and self.screen.enabled


def validate_display_name(text: object) -> str:
    """Return the stripped display name, or raise InvalidInputError unless it is 1-50 characters."""
    if not isinstance(text, str):
        raise InvalidInputError('a display name must be a string')
    name = text.strip()
    if not 1 <= len(name) <= NAME_MAX_LENGTH:
        raise InvalidInputError(f'a display name must be 1 to {NAME_MAX_LENGTH} characters')
    if not name.isprintable():
        raise InvalidInputError('a display name must not contain control characters')
    return name


def validate_participant_id(pid: object) -> str:
    """Return the participant id, or raise InvalidInputError (it must be printable, without ":" or whitespace)."""
    if not isinstance(pid, str) or not 1 <= len(pid) <= PARTICIPANT_ID_MAX_LENGTH:
        raise InvalidInputError(f'a participant id must be a string of 1 to {PARTICIPANT_ID_MAX_LENGTH} characters')
    if ':' in pid or any(ch.isspace() or not ch.isprintable() for ch in pid):
        raise InvalidInputError(f'a participant id must not contain ":", whitespace or control characters: {pid!r}')
    return pid


def validate_device_id(device_id: object) -> str:
    """Return the device id, or raise InvalidInputError when empty, too long or not printable."""
    if not isinstance(device_id, str) or not device_id:
        raise InvalidInputError('a camera device id must be a non-empty string')
    if len(device_id) > DEVICE_ID_MAX_LENGTH or not device_id.isprintable():
        raise InvalidInputError(f'a camera device id must be printable and at most {DEVICE_ID_MAX_LENGTH} characters')
    return device_id


def validate_camera_label(label: object, device_id: str) -> str:
    """Return the stripped label (the original's fallback "Camera {first 8 of device id}" when blank)."""
    if not isinstance(label, str):
        raise InvalidInputError('a camera label must be a string')
    text = label.strip()
    if not text:
        return f'Camera {device_id[:8]}'
    if len(text) > LABEL_MAX_LENGTH:
        raise InvalidInputError(f'a camera label must be at most {LABEL_MAX_LENGTH} characters')
    if not text.isprintable():
        raise InvalidInputError('a camera label must not contain control characters')
    return text


def clean_label(text: object, max_length: int = LABEL_MAX_LENGTH) -> str:
    """A label a browser reported (a device's name), fit to show and announce: control and format characters
    removed, whitespace runs collapsed to one space, stripped, and cut to `max_length` characters (ending in "…" when
    cut). Anything but a string gives ''."""
    if not isinstance(text, str) or max_length < 1:
        return ''
    text = text[: max_length * 8]  # bounded work for a page that sends megabytes
    words = ''.join(ch if ch.isprintable() else ' ' for ch in text).split()
    label = ' '.join(words)
    if len(label) <= max_length:
        return label
    return label[: max_length - 1].rstrip() + '…'
