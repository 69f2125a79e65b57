from __future__ import annotations

import itertools

import pytest

from rooms import (
    CameraFeed,
    Kind,
    Participant,
    PublishedTrack,
    Role,
    Room,
    Source,
    TrackLocator,
    VisibleTrack,
    audience,
    can_hear,
    can_see,
    may_pull,
    tile_key,
    visible_participants,
    visible_tracks,
)
from rooms.visibility import visible_sources

H, T, R = Role.HOSPITAL, Role.TECHNICIAN, Role.REGULAR

# What a viewer receives from a publisher, by role: the original's rules, written out in full.
EXPECTED: dict[tuple[Role, Role], set[Source]] = {
    (H, H): set(),
    (H, T): {Source.CAMERA, Source.MIC},
    (H, R): set(),
    (T, H): {Source.CAMERA, Source.MIC, Source.SCREEN},
    (T, T): set(),
    (T, R): set(),
    (R, H): set(),
    (R, T): set(),
    (R, R): {Source.CAMERA, Source.MIC, Source.SCREEN},
}


def person(pid: str, role: Role, name: str | None = None) -> Participant:
    return Participant(id=pid, name=name or pid.upper(), role=role, joined_at=0.0, last_heartbeat=0.0, last_active=0.0)


def publishing_everything(pid: str, role: Role) -> Participant:
    """A publisher with every kind of track set directly, so only the visibility rules decide."""
    p = person(pid, role)
    p.mic = PublishedTrack(locator=TrackLocator(pid, 'mic'))
    p.screen = PublishedTrack(locator=TrackLocator(pid, 'screen'))
    if role is Role.HOSPITAL:
        p.cameras = [CameraFeed(device_id='dev1', label='Bore', locator=TrackLocator(pid, 'cam1'))]
    else:
        p.camera = PublishedTrack(locator=TrackLocator(pid, 'camera'))
    return p


def room_of(*people: Participant) -> Room:
    return Room(name='r', participants={p.id: p for p in people})


@pytest.mark.parametrize(('viewer_role', 'publisher_role', 'source'), list(itertools.product(Role, Role, Source)))
def test_visibility_matrix(viewer_role: Role, publisher_role: Role, source: Source) -> None:
    viewer = publishing_everything('viewer', viewer_role)
    publisher = publishing_everything('pub', publisher_role)
    room = room_of(viewer, publisher)
    expected = source in EXPECTED[viewer_role, publisher_role]

    tracks = [t for t in visible_tracks(viewer, room) if t.source is source]
    assert bool(tracks) is expected
    assert all(t.publisher_id == 'pub' for t in tracks)
    assert (source in visible_sources(viewer, publisher)) is expected

    locators = {
        Source.MIC: TrackLocator('pub', 'mic'),
        Source.SCREEN: TrackLocator('pub', 'screen'),
        Source.CAMERA: TrackLocator('pub', 'cam1' if publisher_role is Role.HOSPITAL else 'camera'),
    }
    assert may_pull(viewer, room, locators[source]) is expected
    assert may_pull(viewer, room, str(locators[source])) is expected
    # Nobody pulls their own tracks.
    assert not may_pull(viewer, room, TrackLocator('viewer', str(source)))


@pytest.mark.parametrize(('viewer_role', 'publisher_role'), list(itertools.product(Role, Role)))
def test_see_and_hear_by_role(viewer_role: Role, publisher_role: Role) -> None:
    viewer, publisher = person('v', viewer_role), person('p', publisher_role)
    sources = EXPECTED[viewer_role, publisher_role]
    assert can_see(viewer, publisher) is bool(sources & {Source.CAMERA, Source.SCREEN})
    assert can_hear(viewer, publisher) is (Source.MIC in sources)
    room = room_of(viewer, publisher)
    assert (visible_participants(viewer, room) == [publisher]) is bool(sources)
    assert (viewer in audience(publisher, room)) is bool(sources)


@pytest.mark.parametrize('role', list(Role))
def test_nobody_sees_or_hears_themselves(role: Role) -> None:
    me = publishing_everything('me', role)
    room = room_of(me)
    assert not can_see(me, me)
    assert not can_hear(me, me)
    assert visible_tracks(me, room) == []
    assert not any(may_pull(me, room, locator) for locator in me.locators())


def test_technician_tiles_for_a_station_with_several_cameras() -> None:
    station = person('h1', Role.HOSPITAL, 'MRI 1')
    station.mic = PublishedTrack(locator=TrackLocator('sh', 'mic'), enabled=False)
    station.cameras = [
        CameraFeed(device_id='d1', label='Bore', locator=TrackLocator('sh', 'c1')),
        CameraFeed(device_id='d2', label='Door', enabled=False, locator=TrackLocator('sh', 'c2')),
        CameraFeed(device_id='d3', label='Console'),  # not sending yet
        CameraFeed(device_id='d4', label='Patient', locator=TrackLocator('sh', 'c4')),
    ]
    station.screen = PublishedTrack(locator=TrackLocator('sh', 'screen'))
    tech = person('t1', Role.TECHNICIAN, 'Tess')
    room = room_of(station, tech)

    assert visible_tracks(tech, room) == [
        VisibleTrack(
            publisher_id='h1',
            kind=Kind.AUDIO,
            source=Source.MIC,
            locator=TrackLocator('sh', 'mic'),
            label='MRI 1',
            key='h1:mic',
            enabled=False,
        ),
        VisibleTrack(
            publisher_id='h1',
            kind=Kind.VIDEO,
            source=Source.CAMERA,
            locator=TrackLocator('sh', 'c1'),
            label='MRI 1 — Bore',
            key='h1:camera:d1',
            device_id='d1',
        ),
        VisibleTrack(
            publisher_id='h1',
            kind=Kind.VIDEO,
            source=Source.CAMERA,
            locator=TrackLocator('sh', 'c4'),
            label='MRI 1 — Patient',
            key='h1:camera:d4',
            device_id='d4',
        ),
        VisibleTrack(
            publisher_id='h1',
            kind=Kind.VIDEO,
            source=Source.SCREEN,
            locator=TrackLocator('sh', 'screen'),
            label='MRI 1 — Screen',
            key='h1:screen',
        ),
    ]
    # A disabled camera is a privacy switch: not even pullable by a technician who knows its locator.
    assert not may_pull(tech, room, TrackLocator('sh', 'c2'))
    assert may_pull(tech, room, 'sh/c4')


@pytest.mark.parametrize('screen', [None, PublishedTrack(locator=TrackLocator('sh', 'screen'), enabled=False)])
def test_no_phantom_screen_tile_while_not_sharing(screen: PublishedTrack | None) -> None:
    station = person('h1', Role.HOSPITAL)
    station.screen = screen
    tech = person('t1', Role.TECHNICIAN)
    room = room_of(station, tech)
    assert [t for t in visible_tracks(tech, room) if t.source is Source.SCREEN] == []
    assert not may_pull(tech, room, TrackLocator('sh', 'screen'))


def test_single_camera_off_is_still_listed_with_its_flag() -> None:
    alice, bob = person('a', Role.REGULAR, 'Alice'), person('b', Role.REGULAR, 'Bob')
    bob.camera = PublishedTrack(locator=TrackLocator('sb', 'cam'), enabled=False)
    room = room_of(alice, bob)
    [track] = visible_tracks(alice, room)
    assert (track.key, track.label, track.enabled, track.kind) == ('b:camera', 'Bob', False, Kind.VIDEO)


def test_hospital_sees_each_technician_in_join_order() -> None:
    station = person('h', Role.HOSPITAL)
    techs = [person(f't{i}', Role.TECHNICIAN) for i in range(3)]
    regular = person('r', Role.REGULAR)
    room = room_of(techs[2], station, regular, techs[0], techs[1])
    assert visible_participants(station, room) == [techs[2], techs[0], techs[1]]
    assert audience(station, room) == [techs[2], techs[0], techs[1]]


@pytest.mark.parametrize('locator', ['', 'garbage', 'a/b/c', 'sb/unknown', 'elsewhere/cam'])
def test_may_pull_refuses_unknown_or_malformed(locator: str) -> None:
    alice, bob = person('a', Role.REGULAR), person('b', Role.REGULAR)
    bob.camera = PublishedTrack(locator=TrackLocator('sb', 'cam'))
    assert not may_pull(alice, room_of(alice, bob), locator)


def test_may_pull_refuses_a_viewer_not_in_the_room() -> None:
    alice, bob = person('a', Role.REGULAR), person('b', Role.REGULAR)
    bob.camera = PublishedTrack(locator=TrackLocator('sb', 'cam'))
    room = room_of(alice, bob)
    assert may_pull(alice, room, 'sb/cam')
    assert may_pull('a', room, 'sb/cam')
    assert not may_pull('b', room, 'sb/cam')
    assert not may_pull('x', room, 'sb/cam')
    assert not may_pull(person('x', Role.REGULAR), room, 'sb/cam')
    # A stale object for an id that left and rejoined does not carry the old rights.
    assert not may_pull(person('a', Role.REGULAR), room, 'sb/cam')
    other_room = Room(name='other', participants={'b': bob})
    assert not may_pull(alice, other_room, 'sb/cam')


@pytest.mark.parametrize(
    ('pid', 'source', 'device_id', 'key'),
    [('p', Source.MIC, None, 'p:mic'), ('p', Source.CAMERA, None, 'p:camera'), ('p', Source.CAMERA, 'd', 'p:camera:d')],
)
def test_tile_key(pid: str, source: Source, device_id: str | None, key: str) -> None:
    assert tile_key(pid, source, device_id) == key
