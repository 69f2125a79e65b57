"""Remembered setups through NiceGUI's simulated user: what a person sets up on a station or technician page comes
back with no click when the page is opened again in the same browser (a reload, or a page reloaded by NiceGUI after
an app restart), and a camera that is gone is left out with a notice.

The browser's media client is a fake answering `run_method` (`user.javascript_rules`), and the Calls exchanges are a
fake `PageMedia`: these tests are about the page's memory and restore, the e2e tests prove media in Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
from nicegui import app, ui
from nicegui.testing import User
from nicegui.testing.user_interaction import UserInteraction

from components.media_session import MediaSession
from components.video_tile import VideoTile
from media.calls_api import TrackLocator
from media.negotiation import NegotiationError
from pages.in_room import _calls
from rooms import Participant, Role, RoomRegistry

RUN_METHOD = re.compile(r'return runMethod\(\d+, "call", (.*)\)$', re.DOTALL)
DEVICES = [{'deviceId': 'dev-left', 'label': 'Left camera'}, {'deviceId': 'dev-right', 'label': 'Right camera'}]


class FakeBrowser:
    """The page's MediaClient as Python sees it: capture always works for the devices it has."""

    def __init__(self, devices: list[dict[str, str]]) -> None:
        self.devices = devices

    def __call__(self, match: re.Match[str]) -> Any:
        method, *args = json.loads(match.group(1))
        if method == 'openLocal':
            spec = args[0]
            if spec['source'] != 'camera' or spec['deviceId'] is None:  # mic, screen, a page's default camera
                return {'ok': True, 'label': f'Fake {spec["source"]}', 'deviceId': f'{spec["source"]}-0'}
            device = next((d for d in self.devices if d['deviceId'] == spec['deviceId']), None)
            if device is None:
                return {'ok': False, 'error': {'code': 'NotFoundError', 'message': 'Requested device not found'}}
            return {'ok': True, 'label': device['label'], 'deviceId': device['deviceId']}
        if method == 'listDevices':
            return {'cameras': self.devices}
        if method == 'setLocalEnabled':
            return {'ok': True}
        return None


class FakeMedia:
    """Stands in for `media.negotiation.PageMedia`: every push succeeds at once; nothing is pulled."""

    def __init__(self, **_: Any) -> None:
        self.pushed: dict[str, TrackLocator] = {}
        self.silent: dict[str, TrackLocator] = {}
        self.pulled: dict[str, tuple[TrackLocator, str]] = {}
        self.session_ids: list[str] = []
        self.needs_heal = False
        self.on_locator: Any = None

    async def push(self, keys: list[str]) -> dict[str, TrackLocator]:
        for key in keys:
            self.pushed[key] = TrackLocator(session_id='a' * 32, track_name=key)
        return {key: self.pushed[key] for key in keys}

    async def unpush(self, keys: list[str]) -> None:
        for key in keys:
            self.pushed.pop(key, None)

    async def resume(self, key: str) -> TrackLocator | None:
        return self.pushed.get(key)

    async def sync_pulls(self, wanted: dict[str, TrackLocator]) -> dict[str, str]:
        return {}

    def __getattr__(self, name: str) -> Any:  # any other exchange: done, nothing to report
        async def done(*args: Any, **kwargs: Any) -> None:
            return None

        return done


def install_fakes(user: User, monkeypatch: pytest.MonkeyPatch) -> FakeBrowser:
    """Fake browser media client and Calls exchanges for pages opened by `user`."""
    monkeypatch.setattr('components.call.PageMedia', FakeMedia)
    fake = FakeBrowser([dict(d) for d in DEVICES])
    user.javascript_rules[RUN_METHOD] = fake
    return fake


@pytest.fixture
def browser(user: User, monkeypatch: pytest.MonkeyPatch) -> FakeBrowser:
    return install_fakes(user, monkeypatch)


def registry() -> RoomRegistry:
    rooms = app.state.rooms
    assert isinstance(rooms, RoomRegistry)
    return rooms


def count(user: User, marker: str) -> int:
    """How many elements are marked `marker` (0 while there are none yet)."""
    try:
        return len(user.find(marker=marker).elements)
    except AssertionError:
        return 0


def tile_of(element: ui.element) -> ui.element:
    while not isinstance(element, VideoTile):
        parent = element.parent_slot.parent if element.parent_slot else None
        assert parent is not None
        element = parent
    return element


def pinned_labels(user: User) -> list[str]:
    """Labels of the meeting tiles in the pinned grid."""
    return [
        str(tile.props['label'])
        for tile in user.find(kind=VideoTile).elements
        if tile.parent_slot and 'pinned-grid' in tile.parent_slot.parent._markers
    ]


def the(user: User, marker: str, index: int) -> UserInteraction[ui.element]:
    """The `index`-th element marked `marker`, in creation order."""
    elements = sorted(user.find(marker=marker).elements, key=lambda e: e.id)
    return UserInteraction(user, {elements[index]}, None)


async def open_page(user: User, room: str, page: str, name: str) -> None:
    """Open `/{room}/{page}` as `name` (once per browser: the name is kept) and let the browser say it is ready."""
    await user.open('/')
    user.find(marker='display-name').type(name)
    user.find(marker='room-name').type(room)
    user.find(marker='join-room').click()
    await user.should_see(marker='room-title')
    await user.open(f'/{room}/{page}')
    user.find(kind=MediaSession).trigger('ready')


async def reopen(user: User, room: str, page: str) -> None:
    """The page goes away as a browser's reload does (the pagehide beacon) and opens again in the same browser."""
    old = user.client
    assert old is not None
    response = await user.http_client.post(f'/api/page-closed?client_id={old.id}')
    assert response.status_code == 204
    await wait_for(lambda: not in_room(old.id))  # the participant left at once, not after the reconnect timeout
    await user.open(f'/{room}/{page}')
    user.find(kind=MediaSession).trigger('ready')


def in_room(client_id: str) -> bool:
    call = _calls.get(client_id)
    return call is not None and not call.left


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'condition not met'
        await asyncio.sleep(0.05)


def station(room: str) -> Participant:
    stations = registry().get_or_create(room).stations()
    assert len(stations) == 1, stations
    return stations[0]


async def test_a_station_setup_round_trip(user: User, browser: FakeBrowser) -> None:
    room = 'restore-station'
    await open_page(user, room, 'hospital', 'MRI Suite')
    await wait_for(lambda: count(user, 'camera-device') == len(browser.devices))
    the(user, 'camera-toggle', 0).click()
    await user.should_see(marker='camera-card')
    the(user, 'camera-toggle', 1).click()
    await wait_for(lambda: count(user, 'camera-card') == 2)
    the(user, 'camera-label', 0).clear().type('Gantry left').trigger('keydown.enter')
    the(user, 'camera-enabled', 1).click()  # the second camera stops sending
    the(user, 'toggle-mic', 0).click()
    await wait_for(
        lambda: (
            [(c.label, c.enabled) for c in station(room).cameras]
            == [
                ('Gantry left', True),
                ('Right camera', False),
            ]
        )
    )

    await reopen(user, room, 'hospital')

    # No click: the cameras are back by device, with their labels and sending switches, and the microphone is off.
    await wait_for(lambda: count(user, 'camera-card') == 2)
    labels = [e.value for e in sorted(user.find(kind=ui.input, marker='camera-label').elements, key=lambda e: e.id)]
    assert labels == ['Gantry left', 'Right camera']
    switches = [
        e.value for e in sorted(user.find(kind=ui.switch, marker='camera-enabled').elements, key=lambda e: e.id)
    ]
    assert switches == [True, False]
    me = station(room)
    assert [(c.device_id, c.label, c.enabled) for c in me.cameras] == [
        ('dev-left', 'Gantry left', True),
        ('dev-right', 'Right camera', False),
    ]
    await wait_for(lambda: me.mic is not None and not me.mic.enabled)


async def test_a_camera_that_is_gone_is_left_out_with_a_notice(user: User, browser: FakeBrowser) -> None:
    room = 'restore-gone'
    await open_page(user, room, 'hospital', 'CT Room')
    await wait_for(lambda: count(user, 'camera-device') == len(browser.devices))
    the(user, 'camera-toggle', 0).click()
    the(user, 'camera-toggle', 1).click()
    await wait_for(lambda: len(station(room).cameras) == 2)
    the(user, 'toggle-screen', 0).click()  # shared when the page goes away
    await wait_for(lambda: station(room).sharing_screen)

    browser.devices.pop(0)  # the left camera was unplugged meanwhile
    await reopen(user, room, 'hospital')

    await user.should_see('"Left camera" from your last setup is not on this machine any more; it was left out.')
    await user.should_see('Your screen was shared before the page reloaded. Share it again when needed.')
    await wait_for(lambda: [c.device_id for c in station(room).cameras] == ['dev-right'])
    assert not station(room).sharing_screen  # a screen needs a click to be captured again


async def test_a_technician_gets_mic_camera_and_maximised_tile_back(user: User, browser: FakeBrowser) -> None:
    room = 'restore-tech'
    hospital = registry().get_or_create(room)
    hospital.join('h1', 'MRI Suite', Role.HOSPITAL, time.monotonic())
    hospital.add_camera('h1', 'dev-a', 'Left', locator=f'{"b" * 32}/cam-1')
    hospital.add_camera('h1', 'dev-b', 'Right', locator=f'{"b" * 32}/cam-2')
    await open_page(user, room, 'technician', 'Tech Tom')
    await wait_for(lambda: count(user, 'tile-maximise') == 2)
    me = next(p for p in hospital.participants.values() if p.role is Role.TECHNICIAN)
    await wait_for(lambda: me.camera is not None and me.mic is not None)  # published on arrival
    the(user, 'tile-maximise', 1).click()  # "MRI Suite — Right"
    the(user, 'toggle-camera', 0).click()
    await wait_for(lambda: me.camera is not None and not me.camera.enabled)

    await reopen(user, room, 'technician')

    tech = next(p for p in hospital.participants.values() if p.role is Role.TECHNICIAN)
    assert tech.id != me.id
    await wait_for(lambda: tech.camera is not None and not tech.camera.enabled)
    assert tech.mic is not None and tech.mic.enabled
    grid = user.find(marker='feed-grid').elements.pop()
    await wait_for(lambda: any('col-span-full' in tile.classes for tile in grid.default_slot.children))
    maximised = next(tile for tile in grid.default_slot.children if 'col-span-full' in tile.classes)
    assert maximised.props['label'] == 'MRI Suite — Right'
    hospital.leave('h1')


async def test_a_meeting_participant_gets_mic_and_pins_back(user: User, browser: FakeBrowser) -> None:
    room = 'restore-meeting'
    meeting = registry().get_or_create(room)
    meeting.join('r1', 'Bob', Role.REGULAR, time.monotonic())
    await open_page(user, room, 'room', 'Ada')
    me = next(p for p in meeting.participants.values() if p.name == 'Ada')
    await wait_for(lambda: me.camera is not None and me.mic is not None and count(user, 'tile-pin') == 2)
    bob_pin = next(e for e in user.find(marker='tile-pin').elements if tile_of(e).props['label'] == 'Bob')
    UserInteraction(user, {bob_pin}, None).click()
    await wait_for(lambda: pinned_labels(user) == ['Bob'])
    the(user, 'toggle-mic', 0).click()
    await wait_for(lambda: me.mic is not None and not me.mic.enabled)

    await reopen(user, room, 'room')

    again = next(p for p in meeting.participants.values() if p.name == 'Ada')
    assert again.id != me.id
    await wait_for(lambda: again.mic is not None and not again.mic.enabled)
    assert again.camera is not None and again.camera.enabled
    await wait_for(lambda: pinned_labels(user) == ['Bob'])
    meeting.leave('r1')


async def test_a_restore_whose_first_push_fails_tries_again(
    user: User, browser: FakeBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = 'restore-retry'
    await open_page(user, room, 'hospital', 'X-ray')
    await wait_for(lambda: count(user, 'camera-device') == len(browser.devices))
    the(user, 'camera-toggle', 1).click()
    await wait_for(lambda: len(station(room).cameras) == 1)

    failures = ['push']  # the first push of a camera after the reload fails (a rebuilt SFU session, say)
    push = FakeMedia.push

    async def flaky(self: FakeMedia, keys: list[str]) -> dict[str, TrackLocator]:
        if failures and any(key.startswith('cam-') for key in keys):
            failures.pop()
            raise NegotiationError('the SFU session went away')
        return await push(self, keys)

    monkeypatch.setattr(FakeMedia, 'push', flaky)
    monkeypatch.setattr('components.camera_manager.RESTORE_RETRY_DELAY', 0.01)
    await reopen(user, room, 'hospital')

    await wait_for(lambda: [c.device_id for c in station(room).cameras] == ['dev-right'])
    assert not failures
    await user.should_not_see('Could not restore a camera: Publishing failed; try again.')
