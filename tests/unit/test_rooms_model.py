from __future__ import annotations

import pytest

from rooms import (
    CameraFeed,
    InvalidInputError,
    Participant,
    PublishedTrack,
    Role,
    TrackLocator,
    UnknownCameraError,
    UnknownParticipantError,
    validate_camera_label,
    validate_display_name,
)
from rooms.model import validate_device_id, validate_participant_id


@pytest.mark.parametrize(
    ('text', 'session_id', 'track_name'),
    [
        ('abc123/mic', 'abc123', 'mic'),
        ('9f86d081884c7d65/3b1c-4a2e-9d7f', '9f86d081884c7d65', '3b1c-4a2e-9d7f'),
        ('s/t', 's', 't'),
    ],
)
def test_locator_round_trip(text: str, session_id: str, track_name: str) -> None:
    locator = TrackLocator.parse(text)
    assert locator == TrackLocator(session_id, track_name)
    assert str(locator) == text
    assert TrackLocator.parse(str(locator)) == locator


@pytest.mark.parametrize(
    'text',
    ['', 'abc', '/', 'abc/', '/mic', 'a/b/c', ' a/b', 'a/b ', 'a /b', 'a/b\n', 'a\x00/b', 'x' * 257 + '/t', None, 42],
)
def test_locator_parse_rejects_malformed(text: object) -> None:
    with pytest.raises(InvalidInputError):
        TrackLocator.parse(text)


def test_locator_is_a_value_error_and_hashable() -> None:
    with pytest.raises(ValueError, match='session id'):
        TrackLocator('', 'mic')
    with pytest.raises(ValueError, match='track name'):
        TrackLocator('s', 'a/b')
    assert len({TrackLocator('s', 't'), TrackLocator('s', 't')}) == 1


@pytest.mark.parametrize(
    ('text', 'expected'),
    [('Ada', 'Ada'), ('  Dr. Grace Hopper  ', 'Dr. Grace Hopper'), ('x' * 50, 'x' * 50), (' é ', 'é')],
)
def test_display_name_accepted(text: str, expected: str) -> None:
    assert validate_display_name(text) == expected


@pytest.mark.parametrize('text', ['', '   ', 'x' * 51, 'tab\tinside', 'bell\x07', None, 3])
def test_display_name_rejected(text: object) -> None:
    with pytest.raises(InvalidInputError):
        validate_display_name(text)


@pytest.mark.parametrize(
    ('label', 'expected'),
    [
        ('MRI bore', 'MRI bore'),
        ('  Console  ', 'Console'),
        ('', 'Camera 0123abcd'),
        ('   ', 'Camera 0123abcd'),
        ('x' * 60, 'x' * 60),
    ],
)
def test_camera_label_accepted(label: str, expected: str) -> None:
    assert validate_camera_label(label, '0123abcdef') == expected


@pytest.mark.parametrize('label', ['x' * 61, 'line\nbreak', None])
def test_camera_label_rejected(label: object) -> None:
    with pytest.raises(InvalidInputError):
        validate_camera_label(label, 'dev')


@pytest.mark.parametrize('device_id', ['', 'x' * 257, 'a\nb', None])
def test_device_id_rejected(device_id: object) -> None:
    with pytest.raises(InvalidInputError):
        validate_device_id(device_id)


def test_device_id_accepted() -> None:
    assert validate_device_id('default') == 'default'


@pytest.mark.parametrize('pid', ['', 'a:b', 'a b', 'x' * 129, 'nul\x00', None])
def test_participant_id_rejected(pid: object) -> None:
    with pytest.raises(InvalidInputError):
        validate_participant_id(pid)


def test_participant_id_accepted() -> None:
    assert validate_participant_id('3f2c1e9a-uuid') == '3f2c1e9a-uuid'


def test_role_values_match_the_original() -> None:
    assert [str(role) for role in Role] == ['hospital', 'technician', 'regular']


def test_participant_locators_and_feeds() -> None:
    mic = TrackLocator('s', 'mic')
    cam = TrackLocator('s', 'cam1')
    screen = TrackLocator('s', 'screen')
    station = Participant(
        id='h',
        name='MRI 1',
        role=Role.HOSPITAL,
        joined_at=0.0,
        last_heartbeat=0.0,
        last_active=0.0,
        mic=PublishedTrack(locator=mic),
        screen=PublishedTrack(locator=screen, enabled=False),
        cameras=[
            CameraFeed(device_id='d1', label='Bore', locator=cam),
            CameraFeed(device_id='d2', label='Door'),
        ],
    )
    assert station.locators() == [mic, screen, cam]
    assert station.camera_feed('d2') == CameraFeed(device_id='d2', label='Door')
    assert station.camera_feed('nope') is None
    assert not station.sharing_screen
    station.screen = PublishedTrack(locator=screen)
    assert station.sharing_screen


def test_not_found_errors_read_cleanly_and_are_key_errors() -> None:
    assert str(UnknownParticipantError('no participant x')) == 'no participant x'
    assert str(UnknownCameraError('no camera y')) == 'no camera y'
    assert str(UnknownParticipantError()) == ''
    assert str(UnknownCameraError()) == ''
    assert issubclass(UnknownParticipantError, KeyError)
    assert issubclass(UnknownCameraError, KeyError)


def test_clean_label_strips_controls_collapses_whitespace_and_truncates() -> None:
    from rooms import clean_label, validate_camera_label
    from rooms.model import LABEL_MAX_LENGTH

    assert clean_label('  HD\tPro\x00 Webcam\n C920 \u200b ') == 'HD Pro Webcam C920'
    hdmi = 'Elgato Cam Link 4K HDMI Capture (USB 3.0, 1080p60) — Operating Theatre 3 North Wing'
    assert len(hdmi) > LABEL_MAX_LENGTH
    label = clean_label(hdmi)
    assert len(label) == LABEL_MAX_LENGTH and label.endswith('…') and label.startswith('Elgato Cam Link 4K')
    assert validate_camera_label(label, 'dev') == label  # what the room accepts
    assert clean_label('x' * 1_000_000, 10) == 'x' * 9 + '…'
    assert clean_label(None) == '' and clean_label(['label']) == '' and clean_label('abc', 0) == ''
    assert clean_label('\x1b[31m red') == '[31m red'
