"""What a person set up on an in-room page, remembered per browser and per room + page, and restored with no click
after a reload, a lost websocket or an app restart.

- `Setup` and `CameraSetup` are pure data with a tolerant JSON round trip: whatever a storage file holds (an older
  format, a hand edit) yields a usable setup, never an exception.
- `Memory` is the thin glue to a mutable mapping: NiceGUI's `app.storage.user` (per browser, persisted under
  NICEGUI_STORAGE_PATH and signed with the storage secret, so it survives app restarts). `save` reassigns the
  top-level key whenever the setup changed, which makes NiceGUI write the file; unchanged setups write nothing.
- `plan_cameras` decides which remembered cameras can come back on this machine, and which are gone.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rooms.model import DEVICE_ID_MAX_LENGTH, LABEL_MAX_LENGTH
from rooms.room import MAX_CAMERAS

STORAGE_KEY = 'setups'  # one entry per room + page, most recently saved last
MAX_SETUPS = 32  # a browser that visits many rooms keeps the most recent setups only
MAX_PINS = 9


@dataclass(frozen=True, kw_only=True, slots=True)
class CameraSetup:
    """A hospital camera as its person left it: which device, the label technicians see, whether it sends."""

    device_id: str
    label: str = ''
    enabled: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class Setup:
    """One page's setup. Stations use `cameras`; technicians and meeting participants use `camera` (their own);
    `maximised` (technician) and `pins` (meeting) name tiles by their label, which survives new participant ids."""

    mic: bool = True
    camera: bool = True
    cameras: tuple[CameraSetup, ...] = ()
    screen: bool = False  # shared when last saved: a screen cannot be captured again without a user gesture
    maximised: str | None = None
    pins: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            'mic': self.mic,
            'camera': self.camera,
            'cameras': [{'device_id': c.device_id, 'label': c.label, 'enabled': c.enabled} for c in self.cameras],
            'screen': self.screen,
            'maximised': self.maximised,
            'pins': list(self.pins),
        }

    @classmethod
    def from_json(cls, data: object) -> Setup:
        """Read a stored setup; anything malformed falls back to the default for that field."""
        if not isinstance(data, dict):
            return cls()
        cameras: list[CameraSetup] = []
        seen: set[str] = set()
        raw_cameras = data.get('cameras')
        for raw in raw_cameras if isinstance(raw_cameras, list) else []:
            camera = _camera(raw)
            if camera is not None and camera.device_id not in seen and len(cameras) < MAX_CAMERAS:
                seen.add(camera.device_id)
                cameras.append(camera)
        raw_pins = data.get('pins')
        pins = tuple(p for p in (raw_pins if isinstance(raw_pins, list) else []) if _is_label(p))[:MAX_PINS]
        maximised = data.get('maximised')
        return cls(
            mic=_flag(data.get('mic'), True),
            camera=_flag(data.get('camera'), True),
            cameras=tuple(cameras),
            screen=_flag(data.get('screen'), False),
            maximised=maximised if _is_label(maximised) else None,
            pins=pins,
        )


def _flag(value: object, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _is_label(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 2 * LABEL_MAX_LENGTH + 8 and value.isprintable()


def _camera(raw: object) -> CameraSetup | None:
    if not isinstance(raw, dict):
        return None
    device_id, label = raw.get('device_id'), raw.get('label', '')
    if not isinstance(device_id, str) or not 0 < len(device_id) <= DEVICE_ID_MAX_LENGTH or not device_id.isprintable():
        return None
    if not isinstance(label, str) or len(label) > LABEL_MAX_LENGTH or not label.isprintable():
        label = ''
    return CameraSetup(device_id=device_id, label=label, enabled=_flag(raw.get('enabled'), True))


def setup_key(room: str, page: str) -> str:
    """The storage entry of one room + page (a browser can be a station in one room and a technician in another)."""
    return f'{room}/{page}'


def plan_cameras(
    remembered: Sequence[CameraSetup], present: Iterable[str]
) -> tuple[list[CameraSetup], list[CameraSetup]]:
    """Split remembered cameras into (those whose device is on this machine now, those that are gone)."""
    devices = set(present)
    found = [c for c in remembered if c.device_id in devices]
    missing = [c for c in remembered if c.device_id not in devices]
    return found, missing


class Memory:
    """One page's remembered setup inside a per-browser storage mapping."""

    def __init__(self, storage: MutableMapping[str, Any], room: str, page: str) -> None:
        self.storage = storage
        self.key = setup_key(room, page)

    def load(self) -> Setup | None:
        """The setup saved for this room + page in this browser, or None when there is none."""
        setups = self.storage.get(STORAGE_KEY)
        if not isinstance(setups, dict) or self.key not in setups:
            return None
        return Setup.from_json(setups[self.key])

    def save(self, setup: Setup) -> bool:
        """Remember `setup`; returns whether anything was written (nothing when it is what is stored already)."""
        stored = self.storage.get(STORAGE_KEY)
        setups = dict(stored) if isinstance(stored, dict) else {}
        value = setup.to_json()
        if setups.get(self.key) == value:
            return False
        setups.pop(self.key, None)
        setups[self.key] = value  # most recent last
        for old in list(setups)[: max(len(setups) - MAX_SETUPS, 0)]:
            del setups[old]
        self.storage[STORAGE_KEY] = setups  # a new top-level value: NiceGUI persists it
        return True
