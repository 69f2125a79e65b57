from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rooms import (
    KEEP,
    MAX_CAMERAS,
    CameraFeed,
    ChangeKind,
    InvalidInputError,
    NotAllowedError,
    PublishedTrack,
    Role,
    Room,
    RoomChange,
    TrackLocator,
    UnknownCameraError,
    UnknownParticipantError,
)

L = TrackLocator.parse


@pytest.fixture
def changes() -> list[RoomChange]:
    return []


@pytest.fixture
def room(changes: list[RoomChange]) -> Room:
    return Room(name='mri', on_change=changes.append)


def kinds(changes: list[RoomChange]) -> list[tuple[ChangeKind, str]]:
    return [(c.kind, c.participant_id) for c in changes]


def test_join_creates_a_participant_and_announces_it(room: Room, changes: list[RoomChange]) -> None:
    p = room.join('a', '  Ada ', 'regular', now=10.0)
    assert (p.id, p.name, p.role, p.joined_at, p.last_heartbeat, p.last_active) == (
        'a',
        'Ada',
        Role.REGULAR,
        10,
        10,
        10,
    )
    assert (p.mic, p.camera, p.screen, p.cameras, p.raised_hand, p.speaking) == (None, None, None, [], False, False)
    assert room.get('a') is p
    assert 'a' in room
    assert not room.is_empty
    assert changes == [RoomChange(room='mri', kind=ChangeKind.JOINED, participant_id='a')]


@pytest.mark.parametrize(
    ('pid', 'name', 'role', 'error'),
    [
        ('', 'Ada', 'regular', InvalidInputError),
        ('a:b', 'Ada', 'regular', InvalidInputError),
        ('a', '', 'regular', InvalidInputError),
        ('a', 'x' * 51, 'regular', InvalidInputError),
        ('a', 'Ada', 'admin', InvalidInputError),
    ],
)
def test_join_validates(room: Room, pid: str, name: str, role: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        room.join(pid, name, role, now=0.0)
    assert room.is_empty


def test_rejoin_with_same_role_keeps_tracks_and_refreshes(room: Room, changes: list[RoomChange]) -> None:
    p = room.join('a', 'Ada', Role.REGULAR, now=0.0)
    room.set_mic('a', 's/mic')
    changes.clear()
    again = room.join('a', 'Ada', Role.REGULAR, now=5.0)
    assert again is p
    assert p.last_heartbeat == 5.0
    assert p.joined_at == 0.0
    assert p.mic == PublishedTrack(locator=L('s/mic'))
    assert changes == []
    room.join('a', 'Ada L.', Role.REGULAR, now=6.0)
    assert kinds(changes) == [(ChangeKind.RENAMED, 'a')]


def test_rejoin_with_another_role_is_refused(room: Room) -> None:
    room.join('a', 'Ada', Role.HOSPITAL, now=0.0)
    with pytest.raises(NotAllowedError, match='leave before'):
        room.join('a', 'Ada', Role.TECHNICIAN, now=1.0)


def test_leave_returns_the_participant_and_its_tracks(room: Room, changes: list[RoomChange]) -> None:
    room.join('h', 'MRI', Role.HOSPITAL, now=0.0)
    room.set_mic('h', 's/mic')
    room.add_camera('h', 'd1', 'Bore', locator='s/c1')
    room.add_camera('h', 'd2', 'Door')
    changes.clear()
    gone = room.leave('h')
    assert gone is not None and gone.id == 'h'
    assert room.is_empty
    assert changes == [
        RoomChange(room='mri', kind=ChangeKind.LEFT, participant_id='h', unpublished=(L('s/mic'), L('s/c1')))
    ]
    assert room.leave('h') is None
    assert len(changes) == 1


def test_unknown_participant(room: Room) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: room.get('x'),
        lambda: room.heartbeat('x', 0.0),
        lambda: room.set_mic('x', None),
        lambda: room.set_camera('x', None),
        lambda: room.set_screen('x', None),
        lambda: room.add_camera('x', 'd'),
        lambda: room.update_camera('x', 'd', enabled=False),
        lambda: room.remove_camera('x', 'd'),
        lambda: room.raise_hand('x', True, 0.0),
        lambda: room.set_speaking('x', True, 0.0),
        lambda: room.rename('x', 'X'),
    ]
    for call in calls:
        with pytest.raises(UnknownParticipantError, match="no participant 'x' in room 'mri'"):
            call()
        with pytest.raises(KeyError):
            call()


@pytest.mark.parametrize(
    ('last_heartbeats', 'now', 'timeout', 'expired'),
    [
        ({'a': 0.0, 'b': 10.0}, 15.0, 15.0, []),  # exactly the timeout: still in
        ({'a': 0.0, 'b': 10.0}, 15.5, 15.0, ['a']),
        ({'a': 0.0, 'b': 10.0}, 30.0, 15.0, ['a', 'b']),
        ({'a': 0.0, 'b': 10.0}, 6.0, 5.0, ['a']),
        ({}, 100.0, 15.0, []),
    ],
)
def test_expire_removes_silent_participants(
    room: Room,
    changes: list[RoomChange],
    last_heartbeats: dict[str, float],
    now: float,
    timeout: float,
    expired: list[str],
) -> None:
    for pid, beat in last_heartbeats.items():
        room.join(pid, pid, Role.REGULAR, now=0.0)
        room.heartbeat(pid, beat)
    if 'a' in room:
        room.set_camera('a', 'sa/cam')
    changes.clear()
    removed = room.expire(now, timeout)
    assert [p.id for p in removed] == expired
    assert sorted(room.participants) == sorted(set(last_heartbeats) - set(expired))
    assert kinds(changes) == [(ChangeKind.EXPIRED, pid) for pid in expired]
    if 'a' in expired:
        assert changes[0].unpublished == (L('sa/cam'),)


def test_heartbeats_keep_a_participant_alive_and_never_go_back(room: Room) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    for now in (5.0, 10.0, 15.0, 20.0):
        room.heartbeat('a', now)
        assert room.expire(now + 14.0) == []
    room.heartbeat('a', 3.0)  # a late, out-of-order beat
    assert room.get('a').last_heartbeat == 20.0
    assert [p.id for p in room.expire(35.1)] == ['a']
    with pytest.raises(UnknownParticipantError):
        room.heartbeat('a', 36.0)


@pytest.mark.parametrize('timeout', [0.0, -1.0])
def test_expire_rejects_a_non_positive_timeout(room: Room, timeout: float) -> None:
    with pytest.raises(InvalidInputError):
        room.expire(0.0, timeout)


@pytest.mark.parametrize('setter', ['set_mic', 'set_camera', 'set_screen'])
def test_single_track_lifecycle(room: Room, changes: list[RoomChange], setter: str) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    attr = {'set_mic': 'mic', 'set_camera': 'camera', 'set_screen': 'screen'}[setter]
    set_track = getattr(room, setter)
    changes.clear()

    first = set_track('a', 's/one')
    assert first == RoomChange(room='mri', kind=ChangeKind.TRACKS, participant_id='a')
    assert getattr(room.get('a'), attr) == PublishedTrack(locator=L('s/one'))
    assert set_track('a', L('s/one')) is None  # unchanged: no change, no announcement
    assert set_track('a', 's/one', False).unpublished == ()  # muted / off, same track
    assert getattr(room.get('a'), attr) == PublishedTrack(locator=L('s/one'), enabled=False)
    assert set_track('a', 's/two').unpublished == (L('s/one'),)  # replaced: close the old one
    assert set_track('a', None).unpublished == (L('s/two'),)
    assert getattr(room.get('a'), attr) is None
    assert set_track('a', None) is None
    assert len(changes) == 4


@pytest.mark.parametrize(
    ('role', 'setter'),
    [(Role.HOSPITAL, 'set_camera'), (Role.TECHNICIAN, 'set_screen')],
)
def test_role_capabilities_for_single_tracks(room: Room, role: Role, setter: str) -> None:
    room.join('p', 'P', role, now=0.0)
    with pytest.raises(NotAllowedError):
        getattr(room, setter)('p', 's/x')


@pytest.mark.parametrize('role', [Role.TECHNICIAN, Role.REGULAR])
def test_only_hospitals_have_several_cameras(room: Room, role: Role) -> None:
    room.join('p', 'P', role, now=0.0)
    with pytest.raises(NotAllowedError, match='only a hospital'):
        room.add_camera('p', 'd1')


def test_a_locator_cannot_be_published_twice(room: Room) -> None:
    room.join('h', 'MRI', Role.HOSPITAL, now=0.0)
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    room.set_mic('h', 's/mic')
    room.add_camera('h', 'd1', locator='s/c1')
    room.add_camera('h', 'd2')
    with pytest.raises(NotAllowedError, match='already published'):
        room.set_camera('a', 's/mic')
    with pytest.raises(NotAllowedError):
        room.update_camera('h', 'd2', locator='s/c1')
    with pytest.raises(NotAllowedError):
        room.add_camera('h', 'd3', locator='s/mic')
    with pytest.raises(NotAllowedError):
        room.set_screen('h', 's/c1')
    assert room.get('h').camera_feed('d2') == CameraFeed(device_id='d2', label='Camera d2')


def test_malformed_locator_strings_are_refused(room: Room) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    with pytest.raises(InvalidInputError):
        room.set_mic('a', 'no-slash')
    assert room.get('a').mic is None


def test_hospital_cameras(room: Room, changes: list[RoomChange]) -> None:
    room.join('h', 'MRI 1', Role.HOSPITAL, now=0.0)
    changes.clear()
    room.add_camera('h', 'dev-bore-0001', '  Bore  ')
    room.add_camera('h', 'dev-door-0002', '', enabled=False)
    station = room.get('h')
    assert station.cameras == [
        CameraFeed(device_id='dev-bore-0001', label='Bore'),
        CameraFeed(device_id='dev-door-0002', label='Camera dev-door', enabled=False),
    ]
    with pytest.raises(NotAllowedError, match='already added'):
        room.add_camera('h', 'dev-bore-0001')
    with pytest.raises(InvalidInputError):
        room.add_camera('h', 'x', 'y' * 61)
    with pytest.raises(InvalidInputError):
        room.add_camera('h', '')

    # Sending starts: the locator arrives.
    assert room.update_camera('h', 'dev-bore-0001', locator='s/bore') is not None
    # Privacy toggle keeps the track; nothing to close.
    off = room.update_camera('h', 'dev-bore-0001', enabled=False)
    assert off is not None and off.unpublished == ()
    assert station.cameras[0] == CameraFeed(device_id='dev-bore-0001', label='Bore', enabled=False, locator=L('s/bore'))
    assert room.update_camera('h', 'dev-bore-0001', enabled=False) is None
    assert room.update_camera('h', 'dev-bore-0001', label='Bore ') is None  # same label once stripped
    assert room.update_camera('h', 'dev-bore-0001', enabled=True) is not None
    assert room.update_camera('h', 'dev-bore-0001', label='Bore (left)', locator=KEEP) is not None
    assert station.cameras[0].label == 'Bore (left)'
    # A new push replaces the track: the old one is to be closed.
    replaced = room.update_camera('h', 'dev-bore-0001', locator=L('s/bore2'))
    assert replaced is not None and replaced.unpublished == (L('s/bore'),)
    stopped = room.update_camera('h', 'dev-bore-0001', locator=None)
    assert stopped is not None and stopped.unpublished == (L('s/bore2'),)
    room.update_camera('h', 'dev-bore-0001', locator='s/bore3')

    removed = room.remove_camera('h', 'dev-bore-0001')
    assert removed.unpublished == (L('s/bore3'),)
    assert room.remove_camera('h', 'dev-door-0002').unpublished == ()
    assert station.cameras == []
    with pytest.raises(UnknownCameraError, match="no camera 'dev-door-0002'"):
        room.remove_camera('h', 'dev-door-0002')
    with pytest.raises(UnknownCameraError):
        room.update_camera('h', 'nope', enabled=True)
    assert all(c.kind is ChangeKind.TRACKS for c in changes)
    assert len(changes) == 11


def test_a_station_has_at_most_max_cameras(room: Room) -> None:
    room.join('h', 'MRI', Role.HOSPITAL, now=0.0)
    for i in range(MAX_CAMERAS):
        room.add_camera('h', f'd{i}')
    with pytest.raises(NotAllowedError, match='at most'):
        room.add_camera('h', 'one-more')


def test_raise_hand_and_speaking_record_activity(room: Room, changes: list[RoomChange]) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    changes.clear()
    assert room.raise_hand('a', True, now=3.0) is not None
    assert room.get('a').raised_hand and room.get('a').last_active == 3.0
    assert room.raise_hand('a', True, now=4.0) is None
    assert room.raise_hand('a', False, now=5.0) is not None
    assert room.get('a').last_active == 4.0  # lowering a hand is not activity

    assert room.set_speaking('a', True, now=6.0) is not None
    assert room.set_speaking('a', True, now=7.0) is None  # still speaking: activity, no announcement
    assert room.get('a').last_active == 7.0
    assert room.set_speaking('a', False, now=8.0) is not None
    assert room.get('a').last_active == 7.0
    assert not room.get('a').speaking
    assert kinds(changes) == [
        (ChangeKind.HAND, 'a'),
        (ChangeKind.HAND, 'a'),
        (ChangeKind.SPEAKING, 'a'),
        (ChangeKind.SPEAKING, 'a'),
    ]


def test_request_mute_asks_the_target_page_on_behalf_of_the_asker(room: Room, changes: list[RoomChange]) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    room.join('b', 'Bo', Role.REGULAR, now=0.0)
    room.set_mic('b', 's1/mic')
    changes.clear()
    change = room.request_mute('a', 'b')
    assert change == RoomChange(room='mri', kind=ChangeKind.MUTE_REQUESTED, participant_id='b', by='a')
    assert changes == [change]
    assert room.get('b').mic == PublishedTrack(locator=L('s1/mic'), enabled=True)  # the target's page mutes


def test_request_mute_of_a_muted_or_micless_participant_changes_nothing(room: Room, changes: list[RoomChange]) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    room.join('b', 'Bo', Role.REGULAR, now=0.0)
    changes.clear()
    assert room.request_mute('a', 'b') is None
    room.set_mic('b', 's1/mic', enabled=False)
    changes.clear()
    assert room.request_mute('a', 'b') is None
    assert changes == []


@pytest.mark.parametrize(
    ('asker_role', 'target_role', 'same', 'problem'),
    [
        (Role.REGULAR, Role.REGULAR, True, 'your own microphone'),
        (Role.TECHNICIAN, Role.TECHNICIAN, False, 'does not hear'),
        (Role.REGULAR, Role.HOSPITAL, False, 'does not hear'),
        (Role.HOSPITAL, Role.REGULAR, False, 'does not hear'),
    ],
)
def test_request_mute_is_refused_for_oneself_and_for_whom_one_does_not_hear(
    room: Room, changes: list[RoomChange], asker_role: Role, target_role: Role, same: bool, problem: str
) -> None:
    room.join('a', 'Ada', asker_role, now=0.0)
    target = 'a' if same else 'b'
    if not same:
        room.join('b', 'Bo', target_role, now=0.0)
        room.set_mic('b', 's1/mic')
    changes.clear()
    with pytest.raises(NotAllowedError, match=problem):
        room.request_mute('a', target)
    assert changes == []


def test_request_mute_names_unknown_participants(room: Room) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    with pytest.raises(UnknownParticipantError):
        room.request_mute('a', 'ghost')
    with pytest.raises(UnknownParticipantError):
        room.request_mute('ghost', 'a')


def test_rename(room: Room, changes: list[RoomChange]) -> None:
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    changes.clear()
    assert room.rename('a', ' Ada ') is None
    assert room.rename('a', 'Ada Lovelace') == RoomChange(room='mri', kind=ChangeKind.RENAMED, participant_id='a')
    assert room.get('a').name == 'Ada Lovelace'
    with pytest.raises(InvalidInputError):
        room.rename('a', '   ')
    assert len(changes) == 1


def test_counts_and_stations(room: Room) -> None:
    assert room.technician_count() == 0
    assert room.stations() == []
    assert not room.anyone_sharing()
    h1 = room.join('h1', 'MRI', Role.HOSPITAL, now=0.0)
    room.join('t1', 'Tess', Role.TECHNICIAN, now=0.0)
    room.join('t2', 'Tom', Role.TECHNICIAN, now=0.0)
    room.join('r1', 'Rae', Role.REGULAR, now=0.0)
    h2 = room.join('h2', 'CT', Role.HOSPITAL, now=0.0)
    assert room.technician_count() == 2
    assert room.stations() == [h1, h2]
    room.set_screen('h2', 's/screen')
    assert room.anyone_sharing()
    room.leave('t1')
    assert room.technician_count() == 1


def test_a_room_without_listener_still_reports_changes() -> None:
    room = Room(name='quiet')
    room.join('a', 'Ada', Role.REGULAR, now=0.0)
    change = room.set_mic('a', 's/m')
    assert change == RoomChange(room='quiet', kind=ChangeKind.TRACKS, participant_id='a')
