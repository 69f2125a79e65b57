"""A page keeps its place while its NiceGUI client exists: the server heartbeats for it (so a page offline for less
than the reconnect timeout is never expired), expiry never undercuts the reconnect timeout, and a page that really
closes (its `pagehide` beacon) leaves at once — but only its own browser can say so."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from nicegui import core
from nicegui.testing import User

import app as orange
from pages import in_room
from rooms import Participant, RoomRegistry
from tests.integration.test_restore_page import FakeBrowser, install_fakes, open_page, wait_for
from tests.integration.test_restore_page import in_room as page_in_room


@pytest.fixture
def browser(user: User, monkeypatch: pytest.MonkeyPatch) -> FakeBrowser:
    return install_fakes(user, monkeypatch)


def registry() -> RoomRegistry:
    rooms = core.app.state.rooms
    assert isinstance(rooms, RoomRegistry)
    return rooms


def only(room: str) -> Participant:
    people = list(registry().get_or_create(room).participants.values())
    assert len(people) == 1, people
    return people[0]


def test_expiry_never_undercuts_the_reconnect_timeout() -> None:
    assert orange.RECONNECT_TIMEOUT >= 30
    assert orange.EXPIRY_TIMEOUT > orange.RECONNECT_TIMEOUT


async def test_the_server_heartbeats_for_a_page_whose_client_exists(
    user: User, browser: FakeBrowser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(in_room, 'KEEPALIVE_INTERVAL', 0.05)
    room = 'live-keepalive'
    await open_page(user, room, 'technician', 'Tech Tom')  # the simulated browser itself never heartbeats
    await wait_for(lambda: len(registry().get_or_create(room).participants) == 1)
    me = only(room)
    me.last_heartbeat = time.monotonic() - 3600  # as if the page had been silent for an hour
    await wait_for(lambda: time.monotonic() - me.last_heartbeat < 1)
    assert not registry().expire_all(time.monotonic() + orange.RECONNECT_TIMEOUT, orange.EXPIRY_TIMEOUT)
    assert only(room) is me


async def test_only_the_pages_own_browser_can_close_it(user: User, browser: FakeBrowser) -> None:
    room = 'live-beacon'
    client = await open_page_client(user, room)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(core.app), base_url='http://test') as stranger:
        response = await stranger.post(f'/api/page-closed?client_id={client}')  # no session cookie of that browser
    assert response.status_code == 204
    await asyncio.sleep(0.2)
    assert page_in_room(client)
    response = await user.http_client.post(f'/api/page-closed?client_id={client}')
    assert response.status_code == 204
    await wait_for(lambda: not page_in_room(client))
    assert room not in registry() or not registry().get_or_create(room).participants


async def open_page_client(user: User, room: str) -> str:
    await open_page(user, room, 'hospital', 'MRI Suite')
    assert user.client is not None
    await wait_for(lambda: page_in_room(user.client.id if user.client else ''))
    return user.client.id
