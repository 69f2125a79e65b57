"""Issue #10's browser rows through the real pages (NiceGUI's simulated user, the page's `MediaSession` element):
a page reporting thousands of cameras and "adding" them all, and a page flooding and forging events through the
element's real listeners. The browser is a fake answering `run_method` (`user.javascript_rules`), the Calls
exchanges a fake `PageMedia` (test_restore_page.py's)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from nicegui.testing import User

from components.call import Call
from components.media_session import EVENT_LIMITS, MAX_DEVICES, MediaSession
from pages.in_room import _calls
from rooms import MAX_CAMERAS

from .test_restore_page import (
    RUN_METHOD,
    FakeBrowser,
    FakeMedia,
    count,
    install_fakes,
    open_page,
    station,
    the,
    wait_for,
)

THOUSANDS = [{'deviceId': f'dev-{i:05}', 'label': f'Camera\t{i}\x00 ' + 'x' * 200} for i in range(5000)]


class CountingBrowser(FakeBrowser):
    """Counts the captures the server asks for."""

    def __init__(self, devices: list[dict[str, str]]) -> None:
        super().__init__(devices)
        self.cameras_opened = 0

    def __call__(self, match: re.Match[str]) -> Any:
        if '"openLocal"' in match.group(1) and '"camera"' in match.group(1):
            self.cameras_opened += 1
        return super().__call__(match)


def the_call(user: User) -> Call:
    assert user.client is not None
    return _calls[user.client.id]


async def test_a_page_reporting_thousands_of_cameras_lists_32_and_publishes_at_most_16(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fakes(user, monkeypatch)
    browser = CountingBrowser([dict(d) for d in THOUSANDS])
    user.javascript_rules[RUN_METHOD] = browser
    pushed: list[str] = []
    push = FakeMedia.push

    async def counting(self: FakeMedia, keys: list[str]) -> Any:
        pushed.extend(keys)
        return await push(self, keys)

    monkeypatch.setattr(FakeMedia, 'push', counting)
    room = 'many-cameras'
    await open_page(user, room, 'hospital', 'Scripted Station')
    await wait_for(lambda: count(user, 'camera-device') == MAX_DEVICES)
    for index in range(MAX_DEVICES):  # "Add" on every row, as a script clicking through the page would
        the(user, 'camera-toggle', index).click()
    await wait_for(lambda: len(station(room).cameras) == MAX_CAMERAS)
    await wait_for(lambda: browser.cameras_opened >= MAX_CAMERAS)
    await asyncio.sleep(0.3)  # the clicks past the rule have been handled: nothing more is captured or pushed
    assert browser.cameras_opened == MAX_CAMERAS
    assert len([k for k in pushed if k.startswith('cam-')]) == MAX_CAMERAS
    assert all(c.locator is not None for c in station(room).cameras), 'everything pushed is announced'
    assert all('\t' not in c.label and '\x00' not in c.label and len(c.label) <= 60 for c in station(room).cameras)
    await user.should_see(f'A station publishes at most {MAX_CAMERAS} cameras.')


async def test_forged_and_flooding_events_through_the_pages_element(
    user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fakes(user, monkeypatch)
    room = 'forged-events'
    await open_page(user, room, 'room', 'Mallory')
    call = the_call(user)
    await wait_for(lambda: call.me is not None and call.me.mic is not None)
    element = user.find(kind=MediaSession)
    session = next(iter(element.elements))
    assert isinstance(session, MediaSession)
    for i in range(300):
        element.trigger('connection', {'role': f'role-{i}', 'state': 'failed'})
        element.trigger('connection', [i, {'x': i}])
        element.trigger('speaking', {'speaking': [i]})
        element.trigger('local_ended', {'key': {'k': i}})
        element.trigger('heartbeat', 'x' * 1000)
        element.trigger('devicechange', {})
        element.trigger('quality', {'degraded': True, 'inboundLoss': 'lots'})
    assert set(call.connection) <= {'push', 'pull'}
    assert session.gate.dropped > 1500  # past each event's burst, dropped
    assert set(session.gate.buckets) <= set(EVENT_LIMITS)
    assert not call.left and call.me is not None and call.me.mic is not None  # nothing was unpublished
