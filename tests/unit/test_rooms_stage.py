from __future__ import annotations

import pytest

from rooms import (
    InvalidInputError,
    Role,
    Room,
    ViewerStage,
    resolve_roster,
    stage_candidates,
    stage_limit,
    stage_roster,
)


@pytest.mark.parametrize(
    ('width', 'sharing', 'limit'),
    [
        (320, False, 2),
        (599, True, 2),
        (599.9, False, 2),
        (600, False, 9),
        (600, True, 5),
        (1920, True, 5),
        (1920, False, 9),
    ],
)
def test_stage_limit(width: float, sharing: bool, limit: int) -> None:
    assert stage_limit(width, sharing) == limit


@pytest.mark.parametrize(
    ('previous', 'candidates', 'limit', 'pinned', 'expected'),
    [
        # The original's resolveRoster cases (useStageManager.test.ts), with the limit not binding.
        pytest.param('abcd', 'bcad', 9, '', 'abcd', id='keeps positions when candidates reorder'),
        pytest.param('abc', 'cad', 9, '', 'adc', id='a dropped slot goes to the newcomer'),
        pytest.param('ac', 'abcd', 9, '', 'acbd', id='extra newcomers are appended'),
        pytest.param('abcd', 'abc', 9, '', 'abc', id='missing tiles are dropped'),
        pytest.param('', 'abc', 9, '', 'abc', id='an empty stage is filled'),
        # The limit picks the most wanted candidates.
        pytest.param('', 'abcde', 2, '', 'ab', id='limit on an empty stage'),
        pytest.param('ab', 'cab', 2, '', 'ac', id='the newcomer takes the slot of whoever fell off'),
        pytest.param('abc', 'abcd', 3, '', 'abc', id='a full stage does not move for a quiet newcomer'),
        pytest.param('abc', 'dabc', 3, '', 'abd', id='the most active newcomer replaces the least wanted'),
        pytest.param('abcde', 'abcde', 2, '', 'ab', id='a shrinking limit keeps the front'),
        pytest.param('abc', 'abc', 0, '', '', id='a zero limit empties the stage'),
        # Pinned tiles are always kept, even beyond the limit.
        pytest.param('ab', 'abcd', 2, 'd', 'ad', id='a pinned tile takes a slot'),
        pytest.param('abc', 'abcd', 2, 'cd', 'dc', id='more pinned than the limit: all pinned, nothing else'),
        pytest.param('ab', 'ab', 2, 'z', 'ab', id='a pinned tile that is gone is not shown'),
        pytest.param('aab', 'abb', 9, '', 'ab', id='duplicates are ignored'),
    ],
)
def test_resolve_roster(previous: str, candidates: str, limit: int, pinned: str, expected: str) -> None:
    assert resolve_roster(list(previous), list(candidates), limit, set(pinned)) == list(expected)


def test_resolve_roster_rejects_a_negative_limit() -> None:
    with pytest.raises(InvalidInputError):
        resolve_roster([], ['a'], -1)


def meeting() -> Room:
    room = Room(name='m')
    for i, pid in enumerate(['me', 'a', 'b', 'c']):
        room.join(pid, pid.upper(), Role.REGULAR, now=float(i))
    room.join('h', 'MRI', Role.HOSPITAL, now=10.0)
    room.set_screen('h', 'sh/screen')  # a station's screen is not for the meeting room
    return room


def test_stage_candidates_self_then_screens_then_activity() -> None:
    room = meeting()
    me = room.get('me')
    assert stage_candidates(me, room) == ['me:camera', 'c:camera', 'b:camera', 'a:camera']
    room.set_speaking('a', True, now=20.0)
    room.set_screen('b', 'sb/screen')
    room.set_screen('me', 'sme/screen')
    assert stage_candidates(me, room) == ['me:camera', 'me:screen', 'b:screen', 'a:camera', 'c:camera', 'b:camera']


def test_stage_roster_combines_limit_candidates_and_stability() -> None:
    room = meeting()
    me = room.get('me')
    stage = stage_roster(me, room, [], width_px=1280)
    assert stage == ['me:camera', 'c:camera', 'b:camera', 'a:camera']
    assert stage_roster(me, room, stage, width_px=500) == ['me:camera', 'c:camera']
    room.set_screen('a', 'sa/screen')
    room.raise_hand('b', True, now=30.0)
    assert stage_roster(me, room, stage, width_px=1280) == ['me:camera', 'c:camera', 'b:camera', 'a:camera', 'a:screen']
    assert stage_roster(me, room, stage, width_px=1280, pinned={'a:screen'}) == [
        'me:camera',
        'c:camera',
        'b:camera',
        'a:camera',
        'a:screen',
    ]


def test_a_station_sharing_does_not_shrink_the_meeting_stage() -> None:
    room = Room(name='m')
    for i in range(7):
        room.join(f'p{i}', f'P{i}', Role.REGULAR, now=float(i))
    room.join('h', 'MRI', Role.HOSPITAL, now=0.0)
    room.set_screen('h', 'sh/screen')
    assert len(stage_roster(room.get('p0'), room, [], width_px=1280)) == 7
    room.set_screen('p3', 'sp3/screen')
    assert len(stage_roster(room.get('p0'), room, [], width_px=1280)) == 5


def test_viewer_stage_pins_a_new_screen_and_forgets_it_when_sharing_stops() -> None:
    room = meeting()
    stage = ViewerStage()
    assert stage.update(room.get('me'), room) == ['me:camera', 'c:camera', 'b:camera', 'a:camera']  # newest first
    room.set_screen('b', 's/screen')
    roster = stage.update(room.get('me'), room)
    assert stage.pinned == {'b:screen'}
    assert 'b:screen' in roster
    stage.toggle_pin('b:screen')  # the viewer unpins it: it stays unpinned while the share goes on
    stage.update(room.get('me'), room)
    assert stage.pinned == set()
    room.set_screen('b', 's/screen', enabled=False)
    stage.update(room.get('me'), room)
    room.set_screen('b', 's/screen', enabled=True)  # a new share is pinned again
    stage.update(room.get('me'), room)
    assert stage.pinned == {'b:screen'}


def test_viewer_stage_does_not_pin_ones_own_screen_and_drops_pins_of_people_who_left() -> None:
    room = meeting()
    stage = ViewerStage()
    room.set_screen('me', 's/mine')
    stage.toggle_pin('c:camera')
    assert 'me:screen' in stage.update(room.get('me'), room)
    assert stage.pinned == {'c:camera'}
    room.leave('c')
    assert 'c:camera' not in stage.update(room.get('me'), room)
    assert stage.pinned == set()


def test_viewer_stage_narrow_window_keeps_the_viewer_and_the_most_recently_active() -> None:
    room = meeting()
    stage = ViewerStage(width=480)
    room.set_speaking('a', True, now=50.0)
    assert stage.update(room.get('me'), room) == ['me:camera', 'a:camera']
    stage.toggle_pin('b:camera')  # a pin is shown even beyond the limit
    assert stage.update(room.get('me'), room) == ['me:camera', 'b:camera']  # b takes the slot a had
