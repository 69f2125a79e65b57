"""The door of a room: ownership, lock, cap, the waiting room, admissions, removals and unique names (pure)."""

from __future__ import annotations

import pytest

from rooms import NotAllowedError, Role, RoomRegistry
from rooms.access import Entry, Member, Pass, RoomAccess, unique_name
from rooms.model import InvalidInputError
from rooms.room import ChangeKind, Room, RoomChange

NOW = 100.0


def host_room() -> tuple[Room, list[RoomChange]]:
    changes: list[RoomChange] = []
    room = Room(name='k3j5qz7m2a4b6c8d0e2f4g6h', on_change=changes.append)
    room.join('host', 'Dr Ada', Role.HOSPITAL, NOW)
    room.entered('host', Member(browser='b-host', grant='host-grant', admin=True, verified=False))
    return room, changes


def test_the_host_owns_the_room_and_always_enters() -> None:
    room, _ = host_room()
    assert room.access.owner == 'host-grant'
    assert room.access.is_admin('host')
    room.lock('host', True)
    room.set_capacity('host', 1)
    host = Pass(browser='b-host-2', role=Role.TECHNICIAN, grant='host-grant', admin=True)
    assert room.access.entry(host, room.present_browsers()) is Entry.ENTER


def test_someone_with_only_the_address_waits() -> None:
    room, _ = host_room()
    stranger = Pass(browser='b1', role=Role.TECHNICIAN)
    assert room.access.entry(stranger) is Entry.WAIT
    assert RoomAccess().entry(Pass(browser='b1', role=Role.REGULAR)) is Entry.WAIT  # a room nobody made: the same


def test_invites_enter_or_wait_by_role_and_the_stations_approval_rule() -> None:
    access = RoomAccess()
    station = Pass(browser='b1', role=Role.HOSPITAL, grant='g1')
    technician = Pass(browser='b2', role=Role.TECHNICIAN, grant='g2')
    guest = Pass(browser='b3', role=Role.REGULAR, grant='g3')
    asks = Pass(browser='b4', role=Role.REGULAR, grant='g4', approval=True)
    assert access.entry(station) is Entry.ENTER
    assert access.entry(technician) is Entry.WAIT  # by default technicians wait for the station's approval
    assert access.entry(guest) is Entry.ENTER
    assert access.entry(asks) is Entry.WAIT  # the invite asks for approval
    access.technician_approval = False
    assert access.entry(technician) is Entry.ENTER


def test_only_the_host_and_stations_decide_and_only_the_host_moderates() -> None:
    room, changes = host_room()
    room.join('st', 'Ward 7', Role.HOSPITAL, NOW)
    room.entered('st', Member(browser='b-st', grant='g-st', verified=True))
    room.join('t1', 'Tom', Role.TECHNICIAN, NOW)
    room.entered('t1', Member(browser='b-t1', grant='g-t1'))
    assert room.set_technician_approval('st', False) is not None
    assert room.access.technician_approval is False
    with pytest.raises(NotAllowedError):
        room.set_technician_approval('t1', True)
    for action in (lambda: room.lock('st', True), lambda: room.set_capacity('st', 3), lambda: room.remove('st', 't1')):
        with pytest.raises(NotAllowedError):
            action()
    with pytest.raises(NotAllowedError):
        room.remove('host', 'host')
    assert changes[-1].kind is ChangeKind.ACCESS and changes[-1].decision == 'approval'


def test_knock_admit_enter() -> None:
    room, changes = host_room()
    tom = Pass(browser='b1', role=Role.TECHNICIAN, grant='g1')
    knock = room.knock(knock_id='k1', name='Tom', pass_=tom, now=NOW)
    assert changes[-1] == RoomChange(room=room.name, kind=ChangeKind.ACCESS, participant_id='k1', decision='knock')
    assert room.access.knocks_for(Role.HOSPITAL, admin=False) == [knock]
    assert room.access.knocks_for(Role.TECHNICIAN, admin=False) == []  # technicians see nobody waiting
    assert room.access.knocks_for(Role.REGULAR, admin=True) == [knock]
    room.admit('host', 'k1')
    assert changes[-1].decision == 'admitted' and changes[-1].by == 'host'
    assert room.access.waiting == {}
    assert room.access.entry(tom) is Entry.ENTER
    assert room.access.entry(Pass(browser='b1', role=Role.REGULAR)) is Entry.WAIT  # only as admitted
    with pytest.raises(NotAllowedError):
        room.admit('host', 'k1')  # already decided


def test_knock_deny_and_withdraw() -> None:
    room, changes = host_room()
    pass_ = Pass(browser='b1', role=Role.REGULAR)
    room.knock(knock_id='k1', name='Eve', pass_=pass_, now=NOW)
    room.join('t1', 'Tom', Role.TECHNICIAN, NOW)
    with pytest.raises(NotAllowedError):
        room.deny('t1', 'k1')  # a technician does not decide
    room.deny('host', 'k1')
    assert changes[-1].decision == 'denied'
    assert room.access.entry(pass_) is Entry.WAIT
    room.knock(knock_id='k2', name='Eve', pass_=pass_, now=NOW)
    room.knock(knock_id='k3', name='Eve', pass_=pass_, now=NOW + 1)  # knocking again replaces the earlier knock
    assert list(room.access.waiting) == ['k3']
    assert room.withdraw('k3') is not None and room.withdraw('k3') is None
    assert changes[-1].decision == 'withdrawn'


def test_a_station_needs_a_station_invite() -> None:
    room, _ = host_room()
    with pytest.raises(NotAllowedError):
        room.knock(knock_id='k1', name='Fake Ward', pass_=Pass(browser='b1', role=Role.HOSPITAL), now=NOW)


def test_a_removed_invite_waits_until_readmitted() -> None:
    room, changes = host_room()
    tom = Pass(browser='b1', role=Role.TECHNICIAN, grant='g1')
    room.access.technician_approval = False
    room.join('t1', 'Tom', Role.TECHNICIAN, NOW)
    room.entered('t1', Member(browser='b1', grant='g1'))
    room.set_camera('t1', 'push/cam')
    removed = room.remove('host', 't1')
    assert removed.name == 'Tom' and 't1' not in room
    last = changes[-1]
    assert (last.kind, last.participant_id, last.by) == (ChangeKind.LEFT, 't1', 'host')
    assert [str(locator) for locator in last.unpublished] == ['push/cam']  # their tracks are closed
    assert room.access.entry(tom) is Entry.WAIT  # the same invite cannot come straight back
    assert room.access.entry(Pass(browser='b9', role=Role.TECHNICIAN, grant='g1')) is Entry.WAIT  # not elsewhere
    knock = room.knock(knock_id='k1', name='Tom', pass_=tom, now=NOW)
    assert knock.removed_before
    room.admit('host', 'k1')
    assert room.access.entry(tom) is Entry.ENTER  # readmitted


def test_removing_someone_let_in_from_the_waiting_room_bans_their_browser() -> None:
    room, _ = host_room()
    eve = Pass(browser='b1', role=Role.REGULAR)
    room.knock(knock_id='k1', name='Eve', pass_=eve, now=NOW)
    room.admit('host', 'k1')
    room.join('r1', 'Eve', Role.REGULAR, NOW)
    room.entered('r1', Member(browser='b1', grant=''))
    room.remove('host', 'r1')
    assert room.access.entry(eve) is Entry.WAIT
    assert room.access.admitted == {}


def test_locked_rooms_make_everyone_new_wait() -> None:
    room, changes = host_room()
    room.lock('host', True)
    assert changes[-1].decision == 'locked'
    assert room.lock('host', True) is None
    assert room.access.entry(Pass(browser='b1', role=Role.HOSPITAL, grant='g1')) is Entry.WAIT
    room.lock('host', False)
    assert changes[-1].decision == 'unlocked'
    assert room.access.entry(Pass(browser='b1', role=Role.HOSPITAL, grant='g1')) is Entry.ENTER


def test_the_cap_counts_participants_but_not_a_reload_of_the_same_browser() -> None:
    room, _ = host_room()
    room.set_capacity('host', 2)
    room.join('st', 'Ward 7', Role.HOSPITAL, NOW)
    room.entered('st', Member(browser='b-st', grant='g-st'))
    station = Pass(browser='b-st', role=Role.HOSPITAL, grant='g-st')
    other = Pass(browser='b2', role=Role.HOSPITAL, grant='g2')
    assert room.access.entry(other, room.present_browsers()) is Entry.FULL
    assert room.access.entry(station, room.present_browsers()) is Entry.ENTER  # its reload
    with pytest.raises(InvalidInputError):
        room.set_capacity('host', 0)
    room.set_capacity('host', None)
    assert room.access.entry(other, room.present_browsers()) is Entry.ENTER


def test_display_names_are_unique_within_a_room() -> None:
    room, _ = host_room()
    assert room.unique_name('Tom') == 'Tom'
    room.join('t1', 'Tom', Role.TECHNICIAN, NOW)
    assert room.unique_name(' tom ') == 'tom (2)'
    assert room.unique_name('Tom', pid='t1') == 'Tom'  # one's own name is not taken
    room.join('t2', 'Tom (2)', Role.TECHNICIAN, NOW)
    assert room.unique_name('TOM') == 'TOM (3)'
    long = 'x' * 50
    assert unique_name(long, [long]) == 'x' * 46 + ' (2)'


def test_leaving_forgets_the_member_and_rooms_with_a_door_policy_are_kept() -> None:
    registry = RoomRegistry()
    room = registry.get_or_create('k3j5qz7m2a4b6c8d0e2f4g6h')
    room.join('host', 'Dr Ada', Role.REGULAR, NOW)
    room.entered('host', Member(browser='b', grant='hg', admin=True))
    room.lock('host', True)
    room.leave('host')
    assert room.access.members == {}
    assert not registry.drop_if_empty(room.name)  # locked: kept
    room.access.locked = False
    assert registry.drop_if_empty(room.name)


def test_observers_hear_every_room() -> None:
    registry = RoomRegistry()
    heard: list[tuple[str, ChangeKind]] = []
    registry.observers.append(lambda change: heard.append((change.room, change.kind)))
    registry.get_or_create('a').join('p1', 'Ada', Role.REGULAR, NOW)
    registry.get_or_create('b').join('p2', 'Bob', Role.REGULAR, NOW)
    assert heard == [('a', ChangeKind.JOINED), ('b', ChangeKind.JOINED)]


def test_a_removed_moderator_waits_too_and_the_owner_cannot_be_removed() -> None:
    room, _ = host_room()
    room.join('mod', 'Dr Bo', Role.REGULAR, NOW)
    room.entered('mod', Member(browser='b-mod', grant='g-mod', admin=True))
    with pytest.raises(NotAllowedError):
        room.remove('mod', 'host')  # the room's creator stays
    room.remove('host', 'mod')
    assert room.access.entry(Pass(browser='b-mod', role=Role.REGULAR, grant='g-mod', admin=True)) is Entry.WAIT
