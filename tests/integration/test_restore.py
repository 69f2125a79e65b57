"""Remembered setups as pure data: the JSON round trip, tolerance of whatever a storage file holds, one entry per
room + page, writes only on change, a bounded number of setups, and which cameras can come back."""

from __future__ import annotations

import json
from typing import Any

from components.restore import MAX_SETUPS, STORAGE_KEY, CameraSetup, Memory, Setup, plan_cameras, setup_key
from rooms import MAX_CAMERAS

STATION = Setup(
    mic=False,
    cameras=(
        CameraSetup(device_id='dev-a', label='Gantry left', enabled=True),
        CameraSetup(device_id='dev-b', label='Patient face', enabled=False),
    ),
    screen=True,
)


class CountingDict(dict[str, Any]):
    """A storage stand-in that counts top-level writes (NiceGUI persists on those)."""

    writes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_a_setup_survives_a_json_round_trip() -> None:
    for setup in (STATION, Setup(), Setup(camera=False, maximised='MRI — Left'), Setup(pins=('Ada', 'Bob (you)'))):
        assert Setup.from_json(json.loads(json.dumps(setup.to_json()))) == setup


def test_whatever_a_storage_file_holds_gives_a_usable_setup() -> None:
    assert Setup.from_json(None) == Setup()
    assert Setup.from_json(['not', 'a', 'dict']) == Setup()
    odd = Setup.from_json(
        {
            'mic': 'yes',  # not a bool: default
            'camera': False,
            'cameras': [
                {'device_id': 'dev-a', 'label': 'Left', 'enabled': False},
                {'device_id': 'dev-a', 'label': 'duplicate'},  # one device once
                {'device_id': '', 'label': 'no device'},
                {'device_id': 'dev-c', 'label': 'x' * 500},  # too long: blank label (the room's default applies)
                {'device_id': 'dev-d', 'label': 'bad\x00label'},
                'garbage',
                {'label': 'no id'},
            ],
            'screen': 1,
            'maximised': 42,
            'pins': ['Ada', 7, '', 'Bob'],
        }
    )
    assert odd == Setup(
        mic=True,
        camera=False,
        cameras=(
            CameraSetup(device_id='dev-a', label='Left', enabled=False),
            CameraSetup(device_id='dev-c', label=''),
            CameraSetup(device_id='dev-d', label=''),
        ),
        screen=False,
        maximised=None,
        pins=('Ada', 'Bob'),
    )
    many = Setup.from_json({'cameras': [{'device_id': f'dev-{i}'} for i in range(MAX_CAMERAS + 5)]})
    assert len(many.cameras) == MAX_CAMERAS


def test_memory_is_per_room_and_page_and_writes_only_changes() -> None:
    storage = CountingDict()
    hospital = Memory(storage, 'mri-3', 'hospital')
    technician = Memory(storage, 'mri-3', 'technician')
    other_room = Memory(storage, 'ct-1', 'hospital')
    assert hospital.load() is None

    assert hospital.save(STATION)
    assert not hospital.save(STATION)  # unchanged: nothing written
    assert storage.writes == 1
    technician.save(Setup(mic=False, maximised='MRI Suite — Left'))
    assert hospital.load() == STATION
    assert technician.load() == Setup(mic=False, maximised='MRI Suite — Left')
    assert other_room.load() is None
    assert set(storage[STORAGE_KEY]) == {setup_key('mri-3', 'hospital'), setup_key('mri-3', 'technician')}

    changed = Setup(mic=True, cameras=STATION.cameras[:1])
    assert hospital.save(changed)
    assert hospital.load() == changed
    # What is stored is plain JSON (NiceGUI writes it to a file).
    assert json.loads(json.dumps(storage[STORAGE_KEY])) == storage[STORAGE_KEY]


def test_a_browser_keeps_the_most_recent_setups_only() -> None:
    storage: dict[str, Any] = {}
    for index in range(MAX_SETUPS + 3):
        Memory(storage, f'room-{index}', 'room').save(Setup(mic=False))
    Memory(storage, 'room-3', 'room').save(Setup(camera=False))  # saved again: now the most recent
    kept = list(storage[STORAGE_KEY])
    assert len(kept) == MAX_SETUPS
    assert kept[-1] == 'room-3/room'
    assert not {'room-0/room', 'room-1/room', 'room-2/room'} & set(kept)  # the oldest went
    assert Memory(storage, 'room-3', 'room').load() == Setup(camera=False)


def test_a_corrupt_storage_entry_is_replaced_not_fatal() -> None:
    storage: dict[str, Any] = {STORAGE_KEY: 'garbage'}
    memory = Memory(storage, 'mri-3', 'hospital')
    assert memory.load() is None
    assert memory.save(STATION)
    assert memory.load() == STATION


def test_remembered_cameras_come_back_only_when_their_device_is_there() -> None:
    found, missing = plan_cameras(STATION.cameras, ['dev-b', 'dev-z'])
    assert [c.device_id for c in found] == ['dev-b']
    assert [c.device_id for c in missing] == ['dev-a']
    assert plan_cameras((), ['dev-a']) == ([], [])
