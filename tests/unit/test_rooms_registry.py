from __future__ import annotations

import logging

import pytest

from rooms import (
    ChangeKind,
    InvalidInputError,
    Role,
    RoomChange,
    RoomRegistry,
    TrackLocator,
    normalise_room_name,
    validate_room_name,
)


@pytest.mark.parametrize(
    ('text', 'name'),
    [
        ('abc', 'abc'),
        ('V1StGXR8', 'V1StGXR8'),
        ('mri-1_b', 'mri-1_b'),
        ('MRI suite 3', 'MRI-suite-3'),
        ('  ct room ', 'ct-room'),
        ('a  b', 'a--b'),
        ('x' * 64, 'x' * 64),
        ('newcastle', 'newcastle'),
    ],
)
def test_normalise_room_name(text: str, name: str) -> None:
    assert normalise_room_name(text) == name


@pytest.mark.parametrize(
    'text',
    [
        '',
        '   ',
        'x' * 65,
        'a/b',
        '../etc',
        'a?b=c',
        'a#b',
        'a%20b',
        'été',
        'tab\there',
        'new',
        'NEW',
        'api',
        'set-username',
        'sfu',
        '_nicegui',
        None,
        7,
    ],
)
def test_normalise_room_name_rejects(text: object) -> None:
    with pytest.raises(InvalidInputError):
        normalise_room_name(text)


def test_validate_room_name_does_not_rewrite() -> None:
    assert validate_room_name('a-b') == 'a-b'
    with pytest.raises(ValueError):
        validate_room_name('a b')


def test_get_or_create() -> None:
    registry = RoomRegistry()
    assert registry.get('mri') is None
    room = registry.get_or_create('mri')
    assert registry.get_or_create('mri') is room
    assert registry.get('mri') is room
    assert 'mri' in registry and len(registry) == 1
    assert registry.names() == ['mri']
    with pytest.raises(InvalidInputError):
        registry.get_or_create('bad name')
    assert len(registry) == 1


def test_subscribers_hear_every_change_to_their_room_only() -> None:
    registry = RoomRegistry()
    heard: list[RoomChange] = []
    other: list[RoomChange] = []
    registry.subscribe('mri', heard.append)
    registry.subscribe('ct', other.append)
    room = registry.get_or_create('mri')
    room.join('h', 'MRI', Role.HOSPITAL, now=0.0)
    room.set_mic('h', 's/mic')
    room.heartbeat('h', 1.0)  # no visible change, no announcement
    room.leave('h')
    assert [(c.room, c.kind) for c in heard] == [
        ('mri', ChangeKind.JOINED),
        ('mri', ChangeKind.TRACKS),
        ('mri', ChangeKind.LEFT),
    ]
    assert heard[-1].unpublished == (TrackLocator('s', 'mic'),)
    assert other == []


def test_unsubscribe_is_idempotent_and_only_removes_its_own_callback() -> None:
    registry = RoomRegistry()
    heard: list[str] = []
    stop_a = registry.subscribe('mri', lambda c: heard.append('a'))
    stop_b = registry.subscribe('mri', lambda c: heard.append('b'))
    assert registry.subscriber_count('mri') == 2
    stop_a()
    stop_a()
    assert registry.subscriber_count('mri') == 1
    registry.get_or_create('mri').join('x', 'X', Role.REGULAR, now=0.0)
    assert heard == ['b']
    stop_b()
    assert registry.subscriber_count('mri') == 0
    with pytest.raises(InvalidInputError):
        registry.subscribe('no good', lambda c: None)


def test_a_late_unsubscribe_does_not_touch_newer_subscriptions() -> None:
    registry = RoomRegistry()
    stop_old = registry.subscribe('mri', lambda c: None)
    stop_old()
    registry.subscribe('mri', lambda c: None)
    stop_old()
    assert registry.subscriber_count('mri') == 1


def test_a_failing_subscriber_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    registry = RoomRegistry()
    heard: list[object] = []

    def broken(change: RoomChange) -> None:
        raise RuntimeError('page is gone')

    registry.subscribe('mri', heard.append)
    registry.subscribe('mri', broken)
    registry.subscribe('mri', lambda c: heard.append(c.participant_id))
    with caplog.at_level(logging.ERROR, logger='rooms.registry'):
        registry.get_or_create('mri').join('x', 'X', Role.REGULAR, now=0.0)
    assert len(heard) == 2 and heard[1] == 'x'
    assert 'page is gone' in caplog.text


def test_a_subscriber_may_unsubscribe_while_being_notified() -> None:
    registry = RoomRegistry()
    heard: list[str] = []
    stop = registry.subscribe('mri', lambda c: stop())
    registry.subscribe('mri', lambda c: heard.append(c.kind))
    room = registry.get_or_create('mri')
    room.join('x', 'X', Role.REGULAR, now=0.0)
    room.join('y', 'Y', Role.REGULAR, now=0.0)
    assert heard == ['joined', 'joined']
    assert registry.subscriber_count('mri') == 1


def test_drop_if_empty() -> None:
    registry = RoomRegistry()
    assert not registry.drop_if_empty('nothing')
    room = registry.get_or_create('mri')
    room.join('x', 'X', Role.REGULAR, now=0.0)
    assert not registry.drop_if_empty('mri')
    stop = registry.subscribe('mri', lambda c: None)
    room.leave('x')
    assert not registry.drop_if_empty('mri')  # a page still shows it
    stop()
    assert registry.drop_if_empty('mri')
    assert 'mri' not in registry
    assert room.on_change is None
    assert registry.get_or_create('mri') is not room


def test_expire_all() -> None:
    registry = RoomRegistry()
    mri = registry.get_or_create('mri')
    ct = registry.get_or_create('ct')
    xr = registry.get_or_create('xray')
    mri.join('h', 'MRI', Role.HOSPITAL, now=0.0)
    mri.join('t', 'Tess', Role.TECHNICIAN, now=0.0)
    ct.join('c', 'CT', Role.HOSPITAL, now=0.0)
    xr.join('x', 'XR', Role.HOSPITAL, now=0.0)
    registry.subscribe('ct', lambda c: None)
    mri.heartbeat('t', 10.0)

    assert registry.expire_all(14.0) == {}
    removed = registry.expire_all(20.0)
    assert {name: [p.id for p in gone] for name, gone in removed.items()} == {'mri': ['h'], 'ct': ['c'], 'xray': ['x']}
    assert registry.names() == ['mri', 'ct']  # xray emptied and unwatched: dropped; ct is still watched
    assert [p.id for p in registry.expire_all(30.0, timeout=5.0)['mri']] == ['t']
    assert registry.names() == ['ct']


def test_a_failing_subscriber_is_logged_without_its_state(caplog: pytest.LogCaptureFixture) -> None:
    class Page:
        secret = 'session-4f1c Ward 11 track-names'

        def __repr__(self) -> str:
            return self.secret

        def changed(self, change: object) -> None:
            raise RuntimeError('boom')

    registry = RoomRegistry()
    page = Page()
    registry.subscribe('mri', page.changed)
    with caplog.at_level(logging.ERROR):
        registry.get_or_create('mri').join('x', 'X', Role.REGULAR, now=0.0)
    assert 'Page.changed' in caplog.text and 'room=mri' in caplog.text
    assert Page.secret not in caplog.text
