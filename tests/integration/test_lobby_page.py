"""The lobby through NiceGUI's simulated user: who is in the room (live) and direct links that continue after naming."""

import time

from nicegui import app
from nicegui.testing import User

from rooms import Role, RoomRegistry


def registry() -> RoomRegistry:
    rooms = app.state.rooms
    assert isinstance(rooms, RoomRegistry)
    return rooms


def texts(user: User, marker: str) -> list[str]:
    """The visible text of every element marked `marker` (labels joined)."""
    found = []
    for element in user.find(marker=marker).elements:
        found.append(' '.join(str(getattr(e, 'text', '')) for e in element.descendants() if getattr(e, 'text', '')))
    return found


async def test_the_lobby_shows_who_is_in_the_room_and_follows_changes(user: User) -> None:
    await user.open('/mri-3')
    await user.should_see(marker='roster-empty')
    room = registry().get_or_create('mri-3')
    now = time.time()
    room.join('h1', 'MRI Suite', Role.HOSPITAL, now)
    room.add_camera('h1', 'dev-a', 'Left', locator='push1/cam-a')
    room.add_camera('h1', 'dev-b', 'Right', locator='push1/cam-b')
    room.add_camera('h1', 'dev-c', 'Depth')  # added but not sending: technicians cannot see it
    room.join('t1', 'Tech Tom', Role.TECHNICIAN, now)
    room.join('r1', 'Ada', Role.REGULAR, now)
    room.join('r2', 'Bob', Role.REGULAR, now)

    await user.should_see(marker='roster-station')
    assert texts(user, 'roster-station') == ['MRI Suite hospital station · 2 cameras']
    assert texts(user, 'roster-technician') == ['Tech Tom technician']
    assert texts(user, 'roster-meeting') == ['Ada, Bob 2 in the meeting']
    await user.should_not_see(marker='roster-empty')

    room.update_camera('h1', 'dev-b', enabled=False)
    room.leave('t1')
    room.leave('r2')
    await user.should_not_see(marker='roster-technician')
    assert texts(user, 'roster-station') == ['MRI Suite hospital station · 1 camera']
    assert texts(user, 'roster-meeting') == ['Ada 1 in the meeting']

    for pid in ('h1', 'r1'):
        room.leave(pid)
    await user.should_see(marker='roster-empty')


async def test_viewing_the_lobby_creates_no_room(user: User) -> None:
    await user.open('/ct-1')
    await user.should_see(marker='roster-empty')
    assert 'ct-1' not in registry()


async def test_a_direct_link_asks_for_a_name_then_continues_to_the_page(user: User) -> None:
    await user.open('/')  # the browser's session cookie first, as a real browser has it before any redirect runs
    await user.open('/ct-2/technician')
    await user.should_see(marker='next-hint')
    await user.should_see('Enter your name to join as technician.')
    user.find(marker='display-name').type('Tech Tom').trigger('keydown.enter')
    await user.should_see('Technician station · ct-2')
    assert user.back_history[-1] == '/ct-2/technician'
    assert [p.name for p in registry().get_or_create('ct-2').participants.values()] == ['Tech Tom']


async def test_the_named_page_waits_for_a_valid_name(user: User) -> None:
    await user.open('/ct-3?next=hospital')
    await user.should_see('Enter your name to join as hospital station.')
    user.find(marker='display-name').trigger('keydown.enter')
    await user.should_see('Enter your name so that others know who you are.')
    await user.should_not_see('Hospital station · ct-3')


async def test_an_unknown_next_page_is_ignored(user: User) -> None:
    await user.open('/ct-4?next=https://evil.example')
    await user.should_not_see(marker='next-hint')
    user.find(marker='display-name').type('Nurse Kim').trigger('keydown.enter')
    await user.should_see('Nurse Kim')
    assert user.back_history[-1] == '/ct-4?next=https://evil.example'
