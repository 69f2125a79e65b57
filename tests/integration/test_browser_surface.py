"""Issue #10, the browser's rows: what a page (a modified one) sends reaches `Call` through the page's event gate and
is bounded there; aiortc pages (`browser_pages.PageSession`) against the embedded SFU, wired by `Call.create`.

- a page emitting `connection {state: failed}` over and over builds a bounded number of SFU sessions, and arbitrary
  role keys grow nothing; the call keeps flowing;
- a station "adding" more cameras than the room allows: the rest is refused before anything is captured or pushed;
- a real camera whose label is over 60 characters (an HDMI capture card) is announced with a cleaned, shortened
  label and plays on a technician's tile;
- `Call.on_watching` tells when a video tile is really received and when that ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from components.call import RECOVERY_BURST, Call, LocalTrack
from media.sfu import EmbeddedSFU
from rooms import Role, clean_label
from rooms.model import LABEL_MAX_LENGTH

from .browser_pages import CountingClient, Page, calls, client, errors, until

__all__ = ['calls', 'client', 'errors']  # fixtures

HDMI = 'Elgato Cam Link 4K\tHDMI  Capture (USB 3.0, 1080p60) —\nOperating Theatre 3, North Wing, bay'


async def meeting(calls: Callable[..., Page]) -> tuple[Page, Page]:
    """Two regular participants publishing microphone and camera, each receiving the other."""
    alice, bob = calls('alpha', 'Alice'), calls('alpha', 'Bob')
    for page in (alice, bob):
        assert (
            await page.call.publish_all(
                [LocalTrack(key='mic', source='mic'), LocalTrack(key='camera', source='camera')]
            )
            == []
        )
    await alice.flowing(f'{bob.pid}:camera', f'{bob.pid}:mic')
    await bob.flowing(f'{alice.pid}:camera')
    return alice, bob


def sessions_made() -> int:
    return CountingClient.created


async def test_a_connection_failed_flood_builds_a_bounded_number_of_sessions(
    calls: Callable[..., Page], sfu: EmbeddedSFU, errors: list[BaseException]
) -> None:
    alice, bob = await meeting(calls)
    before, held = sessions_made(), sfu.stats()['sessions']

    for _ in range(6):  # each time: the page says a connection came back, then that it failed
        for role in ('push', 'pull'):
            alice.session.emit('connection', {'role': role, 'state': 'connecting'})
            alice.session.emit('connection', {'role': role, 'state': 'failed'})
        await asyncio.sleep(0.3)  # pacing only: the page's recovery task starts
        await until(lambda: not alice.call._recovering, 'the recovery in progress ends')
    assert sessions_made() - before <= 2 * RECOVERY_BURST, 'each recovery rebuilds at most the two sessions'
    assert sfu.stats()['sessions'] - held <= 2 * RECOVERY_BURST

    for i in range(1000):  # made-up roles and states
        alice.session.emit('connection', {'role': f'role-{i}', 'state': 'failed'})
        alice.session.emit('connection', {'role': 'push', 'state': f'state-{i}'})
        alice.session.emit('connection', [i])
    assert set(alice.call.connection) <= {'push', 'pull'}
    assert sessions_made() - before <= 2 * RECOVERY_BURST
    # The call carries on both ways (bob re-pulls alice's re-published tracks).
    await bob.flowing(f'{alice.pid}:camera', f'{alice.pid}:mic')
    await alice.flowing(f'{bob.pid}:camera')
    assert errors == []


async def test_events_over_a_pages_budget_are_dropped_not_queued(calls: Callable[..., Page]) -> None:
    alice = calls('alpha', 'Alice')
    assert await alice.call.publish(LocalTrack(key='mic', source='mic')) is None
    flips = 0
    room = alice.call.room

    def count(change: object) -> None:
        nonlocal flips
        flips += 1

    room.on_change = count
    for i in range(2000):
        alice.session.emit('speaking', {'speaking': i % 2 == 0})
        alice.session.emit('heartbeat', {})
    assert flips <= 10, 'a burst of speaking flips, then nothing until the budget refills'
    assert alice.session.gate.dropped >= 3900
    assert set(alice.session.gate.buckets) <= {'speaking', 'heartbeat'}


@pytest.fixture
def small_station(monkeypatch: pytest.MonkeyPatch) -> int:
    """A room rule of 3 cameras per station (16 in production) keeps aiortc's encoders few."""
    monkeypatch.setattr('rooms.room.MAX_CAMERAS', 3)
    monkeypatch.setattr('components.call.MAX_CAMERAS', 3)
    return 3


async def test_a_station_adding_more_cameras_than_the_room_allows_pushes_none_of_the_extra(
    calls: Callable[..., Page], small_station: int, errors: list[BaseException]
) -> None:
    station = calls('ward', 'MRI Suite', Role.HOSPITAL)
    tech = calls('ward', 'Tech', Role.TECHNICIAN)
    first = [LocalTrack(key='cam-1', source='camera', device_id='dev-1')]
    assert await station.call.publish_all(first) == []
    many = [LocalTrack(key=f'cam-{i}', source='camera', device_id=f'dev-{i}') for i in range(2, 30)]
    many.append(LocalTrack(key='cam-dup', source='camera', device_id='dev-1'))  # the same device again
    problems = await station.call.publish_all(many)

    assert len(station.session.opened) == small_station, 'nothing past the room rule is captured'
    assert len(problems) == len(many) - (small_station - 1)
    assert 'at most 3 cameras' in problems[-2] and 'already added' in problems[-1]
    me = station.call.me
    assert me is not None
    assert [c.device_id for c in me.cameras] == ['dev-1', 'dev-2', 'dev-3']
    await until(lambda: all(c.locator is not None for c in me.cameras), 'every camera pushed is announced')
    assert len(station.call.media.pushed) == small_station  # the SFU holds what the room announces, no more
    await tech.flowing(f'{station.pid}:camera:dev-3')
    # A second microphone, a technician's screen: refused before capture too.
    assert await station.call.publish_all(
        [LocalTrack(key='mic', source='mic'), LocalTrack(key='mic2', source='mic')]
    ) == ['Only one microphone can be published.']
    assert await tech.call.publish(LocalTrack(key='screen', source='screen')) == (
        'A technician station does not share its screen.'
    )
    assert errors == []


async def test_a_camera_label_over_the_rooms_limit_is_announced_shortened_and_reaches_a_technician(
    calls: Callable[..., Page], errors: list[BaseException]
) -> None:
    station = calls('ward', 'Theatre 3', Role.HOSPITAL, labels={'dev-hdmi': HDMI, 'dev-usb': 'USB camera'})
    tech = calls('ward', 'Tech', Role.TECHNICIAN)
    assert len(HDMI) == 90
    assert await station.call.publish(LocalTrack(key='cam-1', source='camera', device_id='dev-hdmi')) is None

    me = station.call.me
    assert me is not None and len(me.cameras) == 1
    label = me.cameras[0].label
    assert label == clean_label(HDMI) and len(label) == LABEL_MAX_LENGTH and '\t' not in label and '\n' not in label
    assert station.call.local['cam-1'].label == label  # the station's card shows what technicians see
    key = f'{station.pid}:camera:dev-hdmi'
    await tech.flowing(key)
    tile = next(t for t in tech.call.wanted_pulls() if t == key)
    assert tile == key
    assert (key, True) in tech.watched
    assert errors == []


async def test_on_watching_tells_when_a_video_tile_is_received_and_when_that_ends(
    calls: Callable[..., Page], errors: list[BaseException]
) -> None:
    station = calls('ward', 'Theatre 3', Role.HOSPITAL)
    tech = calls('ward', 'Tech', Role.TECHNICIAN)
    assert (
        await station.call.publish_all(
            [
                LocalTrack(key='mic', source='mic'),
                LocalTrack(key='cam-1', source='camera', device_id='dev-a'),
                LocalTrack(key='cam-2', source='camera', device_id='dev-b'),
            ]
        )
        == []
    )
    a, b = f'{station.pid}:camera:dev-a', f'{station.pid}:camera:dev-b'
    await tech.flowing(a, b, f'{station.pid}:mic')
    assert sorted(tech.watched) == [(a, True), (b, True)], 'audio is not "watching"; each video tile once'

    await station.call.unpublish('cam-1')  # unpulled by the technician's page
    await until(lambda: (a, False) in tech.watched, 'the end of watching an unpublished camera')

    # The pull session is rebuilt after a failed connection: the tile is pulled again, and watching goes on.
    tech.session.emit('connection', {'role': 'pull', 'state': 'failed'})
    await tech.flowing(b)
    await until(lambda: not tech.call._recovering, 'recovery done')
    assert tech.watched.count((b, True)) - tech.watched.count((b, False)) == 1

    boom: list[str] = []

    def failing(key: str, started: bool) -> None:  # an audit hook that raises does not stop media
        boom.append(key)
        raise RuntimeError('audit store down')

    tech.call.on_watching = failing
    await tech.call.leave()
    assert boom == [b] and tech.call.watching == set()
    assert station.call.me is not None  # the station is unaffected
    assert errors == []


async def test_a_page_whose_capture_answers_nonsense_gets_a_message_not_an_exception(
    calls: Callable[..., Page], errors: list[BaseException]
) -> None:
    from media.negotiation import NegotiationError

    page = calls('alpha', 'Mallory')

    async def forged(key: str, source: str, device_id: str | None = None) -> dict[str, object]:
        raise NegotiationError('The browser did not answer openLocal (TimeoutError).')

    page.session.open_local = forged  # type: ignore[method-assign]
    assert await page.call.publish(LocalTrack(key='camera', source='camera')) == (
        'The browser did not answer openLocal (TimeoutError).'
    )
    assert page.call.local == {} and errors == []
    assert isinstance(page.call, Call)


async def test_a_page_answering_junk_offers_cannot_open_a_session_per_click(
    calls: Callable[..., Page], sfu: EmbeddedSFU, errors: list[BaseException]
) -> None:
    from media.negotiation import PushOffer
    from media.negotiation_sessions import SESSION_BURST

    mallory = calls('alpha', 'Mallory')

    async def junk(keys: list[str]) -> PushOffer:
        return PushOffer(sdp='v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n', mids={key: '0' for key in keys})

    mallory.session.create_push_offer = junk  # type: ignore[method-assign]
    before, held = sessions_made(), sfu.stats()['sessions']
    for i in range(30):  # the person (or a script) clicks "share" again and again
        assert await mallory.call.publish(LocalTrack(key=f'screen-{i}', source='screen')) is not None
        await mallory.call.unpublish(f'screen-{i}')
    assert sessions_made() - before <= SESSION_BURST + 2  # the first push and pull sessions, then the rebuilds
    assert sfu.stats()['sessions'] - held <= SESSION_BURST + 2
    assert errors == []
