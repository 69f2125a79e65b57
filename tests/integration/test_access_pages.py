"""Room access through NiceGUI's simulated users (`ROOM_ACCESS=invite`): knock → admit → in; knock → deny; a removed
participant cannot come straight back with the same invite; refused invites reveal nothing; the role comes from the
grant, never from the page's address."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nicegui import app
from nicegui.testing import User

from components.invites import invite_path, mint
from rooms import Role, Room, RoomRegistry

SECRET = 'integration-invite-secret-0123456789abcdef'
pytestmark = pytest.mark.usefixtures('invite_access')


@pytest.fixture
def invite_access(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('ROOM_ACCESS', 'invite')
    monkeypatch.setenv('INVITE_SECRET', SECRET)


async def new_browser(create_user: Callable[[], User]) -> User:
    """Another browser, with its session cookie (a real browser has it before any redirect runs)."""
    other = create_user()
    await other.open('/')
    return other


async def arrive(user: User, path: str, *, marker: str | None = None, text: str | None = None) -> None:
    """Wait (bounded) for the page the app sent `user` to. NiceGUI's simulated navigation runs in a background task
    whose failure is silent (seen on a machine under heavy load); then the page is opened as the browser would have
    done. The e2e tests prove the redirects themselves (`wait_for_url`)."""
    try:
        await see(user, text, marker=marker)
    except AssertionError:
        await user.open(path)
        await see(user, text, marker=marker)


def registry() -> RoomRegistry:
    rooms = app.state.rooms
    assert isinstance(rooms, RoomRegistry)
    return rooms


def room_of(address: str) -> Room:
    room = registry().get(address)
    assert room is not None
    return room


def people(address: str) -> list[tuple[str, Role]]:
    return [(p.name, p.role) for p in room_of(address).participants.values()]


def texts(user: User, marker: str) -> list[str]:
    found = []
    for element in user.find(marker=marker).elements:
        parts = [str(getattr(e, 'text', '')) for e in [element, *element.descendants()] if getattr(e, 'text', '')]
        found.append(' '.join(parts))
    return found


async def see(user: User, target: str | None = None, *, marker: str | None = None) -> None:
    """Like `should_see`, with time (bounded: 20 s) for a navigation (a page built in a background task) to land."""
    if target is None:
        await user.should_see(marker=marker, retries=200)
    else:
        await user.should_see(target, retries=200)


async def host_station(user: User, name: str = 'Dr Ada') -> str:
    """Create a room from the home page (its creator is the host) and enter it as its hospital station."""
    await user.open('/')
    user.find(marker='display-name').type(name)
    user.find(marker='new-room').click()
    await see(user, marker='room-title')
    address = user.back_history[-1].strip('/')
    assert len(address) == 24 and address.isalnum()  # 120 random bits, not a readable name
    user.find(marker='join-hospital').click()
    await see(user, marker='access-panel')
    assert people(address) == [(name, Role.HOSPITAL)]
    return address


async def knock(user: User, address: str, name: str, way: str = 'join-technician') -> None:
    await user.open(f'/{address}')
    await see(user, marker='knock-title')
    await user.should_not_see(marker='roster')
    await user.should_not_see(marker='room-title')
    user.find(marker='display-name').type(name)
    user.find(marker=way).click()
    await see(user, marker='waiting')


async def test_knock_admit_in(user: User, create_user: Callable[[], User]) -> None:
    address = await host_station(user)
    stranger = await new_browser(create_user)
    await stranger.open(f'/{address}/technician')  # only the address: the page is not opened, the door is
    await arrive(stranger, f'/{address}?next=technician', marker='knock-title')
    await stranger.should_not_see('Dr Ada')
    assert people(address) == [('Dr Ada', Role.HOSPITAL)]
    await knock(stranger, address, 'Tech Tom')
    assert people(address) == [('Dr Ada', Role.HOSPITAL)]  # waiting is not being in
    await see(user, marker='knock')
    assert texts(user, 'knock-name') == ['Tech Tom'] and texts(user, 'knock-role') == ['technician']
    user.find(marker='admit').click()
    await arrive(stranger, f'/{address}/technician', text='Technician station')
    assert people(address) == [('Dr Ada', Role.HOSPITAL), ('Tech Tom', Role.TECHNICIAN)]
    await see(user, 'Nobody is waiting')
    kinds = [r.kind for r in app.state.audit.records(address)]
    assert {'room_created', 'invite_minted', 'knock', 'admitted', 'joined'} <= set(kinds), kinds
    user.find(marker='audit-open').click()  # the host's view of the room's trail
    await see(user, marker='audit-table')


async def test_knock_deny(user: User, create_user: Callable[[], User]) -> None:
    address = await host_station(user)
    stranger = await new_browser(create_user)
    await knock(stranger, address, 'Eve', way='join-meeting')
    await see(user, marker='knock')
    assert texts(user, 'knock-role') == ['meeting guest']
    user.find(marker='deny').click()
    await see(stranger, marker='knock-denied')
    await stranger.open(f'/{address}/room')
    await see(stranger, marker='knock-title')  # still at the door
    assert people(address) == [('Dr Ada', Role.HOSPITAL)]


async def test_kicked_technician_cannot_come_back_with_the_same_invite_until_readmitted(
    user: User, create_user: Callable[[], User]
) -> None:
    address = await host_station(user)
    token, grant = mint(SECRET, room=address, role='technician', ttl=3600)
    tech = await new_browser(create_user)
    await tech.open(invite_path(grant, token))  # the invite link: a technician waits for the station by default
    await arrive(tech, f'/{address}?next=technician', marker='join-technician')
    tech.find(marker='display-name').type('Tech Tom')
    tech.find(marker='join-technician').click()
    await see(tech, marker='waiting')
    await see(user, marker='knock')
    user.find(marker='admit').click()
    await arrive(tech, f'/{address}/technician', text='Technician station')
    assert ('Tech Tom', Role.TECHNICIAN) in people(address)

    await see(user, marker='member')
    user.find(marker='remove').click()
    await arrive(tech, f'/{address}?removed=1', marker='removed-notice')
    assert people(address) == [('Dr Ada', Role.HOSPITAL)]
    await tech.open(invite_path(grant, token))  # the same invite: back at the door, not in
    await arrive(tech, f'/{address}?next=technician', marker='join-technician')
    await tech.open(f'/{address}/technician')
    await arrive(tech, f'/{address}?next=technician', marker='join-technician')
    assert people(address) == [('Dr Ada', Role.HOSPITAL)]
    tech.find(marker='join-technician').click()
    await see(tech, marker='waiting')
    await see(user, 'removed earlier')
    user.find(marker='admit').click()  # readmitted
    await arrive(tech, f'/{address}/technician', text='Technician station')
    assert ('Tech Tom', Role.TECHNICIAN) in people(address)


async def test_a_station_invite_enters_at_once_with_its_verified_name(
    user: User, create_user: Callable[[], User]
) -> None:
    address = await host_station(user)
    token, grant = mint(SECRET, room=address, role='hospital', ttl=365 * 86400, name='Ward 7 — MRI bore')
    station = await new_browser(create_user)
    await station.open(invite_path(grant, token))
    await arrive(station, f'/{address}?next=hospital', text='You join as Ward 7 — MRI bore')
    station.find(marker='join-hospital').click()
    await arrive(station, f'/{address}/hospital', text='Hospital station')
    assert ('Ward 7 — MRI bore', Role.HOSPITAL) in people(address)
    member = next(m for pid, m in room_of(address).access.members.items() if m.grant == grant.jti)
    assert member.verified
    await station.open(f'/{address}/hospital')  # reopened later: the kept grant, no link needed
    await see(station, 'Hospital station')


async def test_refused_invites_reveal_nothing(user: User, create_user: Callable[[], User]) -> None:
    address = await host_station(user)
    visitor = await new_browser(create_user)
    cases = {
        'has expired': mint(SECRET, room=address, role='technician', ttl=60, now=1_000_000)[0],
        'not valid': mint('another-secret-that-is-long-enough-0123', room=address, role='technician', ttl=60)[0],
        'different room': mint(SECRET, room='b' * 24, role='technician', ttl=60)[0],
    }
    for words, token in cases.items():
        await visitor.open(f'/{address}/technician?invite={token}')
        await see(visitor, marker='access-refused')
        await visitor.should_see(words)
        await visitor.should_not_see('Dr Ada')
        await visitor.should_not_see(marker='roster')
    wrong_role = mint(SECRET, room=address, role='technician', ttl=60)[0]
    await visitor.open(f'/{address}/hospital?invite={wrong_role}')
    await see(visitor, 'does not open this page')
    assert people(address) == [('Dr Ada', Role.HOSPITAL)]


async def test_the_role_comes_from_the_grant_not_the_address(user: User, create_user: Callable[[], User]) -> None:
    address = await host_station(user)
    room_of(address).access.technician_approval = False
    token, grant = mint(SECRET, room=address, role='technician', ttl=3600, name='Tech Tom')
    tech = await new_browser(create_user)
    await tech.open(invite_path(grant, token))
    await arrive(tech, f'/{address}?next=technician', marker='join-technician')
    await tech.open(f'/{address}/hospital')  # the grant is a technician's: no station page for it
    await tech.should_not_see('Hospital station')
    await arrive(tech, f'/{address}?next=hospital', marker='join-technician')
    await tech.open(f'/{address}/technician')  # approval off: straight in
    await see(tech, 'Technician station')
    assert people(address) == [('Dr Ada', Role.HOSPITAL), ('Tech Tom', Role.TECHNICIAN)]


async def test_unique_names_and_a_locked_room(user: User, create_user: Callable[[], User]) -> None:
    address = await host_station(user)
    first = await new_browser(create_user)
    await knock(first, address, 'Dr Ada')
    await see(user, marker='knock')
    user.find(marker='admit').click()
    await arrive(first, f'/{address}/technician', text='Technician station')
    assert people(address) == [('Dr Ada', Role.HOSPITAL), ('Dr Ada (2)', Role.TECHNICIAN)]
    user.find(marker='lock-switch').click()
    assert room_of(address).access.locked
    token, grant = mint(SECRET, room=address, role='hospital', ttl=3600, name='Ward 9')
    station = await new_browser(create_user)
    await station.open(invite_path(grant, token))
    await arrive(station, f'/{address}?next=hospital', marker='join-hospital')
    station.find(marker='join-hospital').click()
    await see(station, marker='waiting')  # locked: even a station waits
    assert len(people(address)) == 2
