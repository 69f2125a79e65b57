"""PageMedia (server-side negotiation) with aiortc pages against the embedded SFU and real room state.

Each page is a `PageMedia` driving an `AiortcDriver` (the browser client's behaviour in aiortc), talking to
`EmbeddedSFU` through the real `CallsClient` over `httpx.ASGITransport`, and authorised by `rooms.may_pull`
exactly as `components/call.py` wires it. Covers issue 4's integration acceptance: a forged pull, a push into
someone else's session and malformed SDP are refused with a clear error, and the room keeps working for everyone
else; plus negotiated close, forced close and recovery after a failed connection.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import av
import httpx
import pytest

import rooms
from media.calls_api import CallsApiError, InvalidRequestError, TracksRequest, UnauthorizedError
from media.calls_api import TrackLocator as WireLocator
from media.calls_client import CallsClient
from media.negotiation import NegotiationError, NotAuthorisedError, PageMedia, PushOffer
from media.sfu import EmbeddedSFU
from media.sfu.forwarder import Forwarder
from rooms import Role, Room, RoomRegistry

from .aiortc_driver import AiortcDriver
from .conftest import APP_ID, APP_SECRET
from .sfu_peers import PatternVideoTrack

FRAMES = 3  # decoded frames that prove a track flows (video at ~30 fps, audio at 50 fps)


@pytest.fixture
async def client(sfu: EmbeddedSFU) -> AsyncIterator[CallsClient]:
    """How media/backend.py builds the embedded back end's client: in-process over ASGITransport."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu') as http:
        yield CallsClient(http, APP_ID, APP_SECRET)


@dataclass
class Page:
    pid: str
    room: Room
    driver: AiortcDriver
    media: PageMedia

    def wanted(self) -> dict[str, WireLocator]:
        """What components/call.py's `wanted_pulls` computes: every track the visibility rules let us see."""
        me = self.room.get(self.pid)
        return {t.key: WireLocator.parse(str(t.locator)) for t in rooms.visible_tracks(me, self.room)}

    async def publish(self) -> dict[str, WireLocator]:
        """Capture and push camera + mic, then announce the locators in room state (as `Call.publish` does)."""
        for key, kind in (('camera', 'video'), ('mic', 'audio')):
            if key not in self.driver.local:
                self.driver.add_local(key, kind)
        locators = await self.media.push(['camera', 'mic'])
        self.room.set_camera(self.pid, str(locators['camera']))
        self.room.set_mic(self.pid, str(locators['mic']))
        return locators

    async def sync(self) -> dict[str, str]:
        return await self.media.sync_pulls(self.wanted())

    async def flowing(self, *keys: str, count: int = FRAMES) -> None:
        """Frames for each tile key are being decoded right now."""
        for key in keys:
            await self.driver.next_frames(key, count)


@pytest.fixture
async def pages(client: CallsClient) -> AsyncIterator[Callable[..., Page]]:
    """A factory of pages sharing one RoomRegistry; every page's media and driver are closed afterwards."""
    registry = RoomRegistry()
    made: list[Page] = []

    def make(room_name: str, pid: str, role: Role = Role.REGULAR, driver: AiortcDriver | None = None) -> Page:
        room = registry.get_or_create(room_name)
        room.join(pid, pid.title(), role, now=0.0)

        def authorise(locator: WireLocator) -> bool:  # exactly components/call.py's callback
            return rooms.may_pull(pid, room, str(locator))

        driver = driver or AiortcDriver(pid)
        media = PageMedia(client=client, driver=driver, room=room_name, participant_id=pid, may_pull=authorise)
        page = Page(pid, room, driver, media)
        made.append(page)
        return page

    yield make
    for page in made:
        await page.media.close()
        await page.driver.close()


async def statuses(client: CallsClient, session_id: str) -> dict[str, tuple[str | None, str | None, str | None]]:
    """mid -> (location, trackName, status) as the SFU's GET session reports it."""
    state = await client.get_session(session_id)
    return {t.mid or '': (t.location, t.track_name, t.status) for t in state.tracks or []}


async def pair(
    make: Callable[..., Page], room: str = 'alpha', names: tuple[str, str] = ('alice', 'bob')
) -> tuple[Page, Page]:
    """Two regular participants in `room`, each publishing camera + mic and pulling the other's."""
    first, second = make(room, names[0]), make(room, names[1])
    await first.publish()
    await second.publish()
    await first.sync()
    await second.sync()
    return first, second


# ---- 1. two regular participants see and hear each other --------------------------------------------------------


async def test_two_regulars_push_and_pull_each_other(pages: Callable[..., Page], client: CallsClient) -> None:
    started = time.monotonic()
    alice, bob = pages('alpha', 'alice'), pages('alpha', 'bob')
    a_locators = await alice.publish()
    b_locators = await bob.publish()
    assert alice.wanted() == {'bob:mic': b_locators['mic'], 'bob:camera': b_locators['camera']}
    assert set(await alice.sync()) == {'bob:mic', 'bob:camera'}
    assert set(await bob.sync()) == {'alice:mic', 'alice:camera'}

    await alice.flowing('bob:camera', 'bob:mic')
    await bob.flowing('alice:camera', 'alice:mic')
    elapsed = time.monotonic() - started
    print(f'two pages: join to first decoded frames both ways in {elapsed:.2f} s')

    # The SFU sees each push as local tracks of the pusher's own session, each pull as remote tracks of it.
    a_push = await statuses(client, a_locators['camera'].session_id)
    assert sorted(v[1] for v in a_push.values()) == sorted(loc.track_name for loc in a_locators.values())
    assert all(v[0] == 'local' and v[2] == 'active' for v in a_push.values())
    assert await alice.sync() == {}  # nothing changed: no exchange at all


# ---- 2. forged pulls are refused, the room keeps working --------------------------------------------------------


async def test_forged_pull_of_another_rooms_locator_is_refused(
    pages: Callable[..., Page], client: CallsClient, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await pair(pages, 'alpha')
    mallory = pages('bravo', 'mallory')
    await mallory.publish()
    target = WireLocator.parse(str(alice.room.get('alice').camera.locator))  # type: ignore[union-attr]

    with caplog.at_level(logging.WARNING, logger='media.negotiation'):
        with pytest.raises(NotAuthorisedError, match='may not receive'):
            await mallory.media.pull({'alice:camera': target})
        # Disguising the forged locator under an innocent key, next to nothing legitimate, changes nothing.
        with pytest.raises(NotAuthorisedError):
            await mallory.media.pull({'mallory-own-tile': target})
    refusals = [r for r in caplog.records if r.levelno == logging.WARNING and 'refused pull' in r.getMessage()]
    assert len(refusals) == 2
    message = refusals[0].getMessage()
    assert 'room=bravo' in message and 'participant=mallory' in message and str(target) in message
    assert mallory.media.pulled == {}

    # Room alpha carries on, both ways, and a new pull there still works.
    await alice.flowing('bob:camera', 'bob:mic')
    await bob.flowing('alice:camera', 'alice:mic')


async def test_technician_may_not_pull_a_regular_in_the_same_room(
    pages: Callable[..., Page], caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await pair(pages, 'alpha')
    tech = pages('alpha', 'tina', Role.TECHNICIAN)
    assert tech.wanted() == {}  # the rules show a technician no regular
    legit_looking = alice.wanted()  # bob's real locators, valid in this very room
    with caplog.at_level(logging.WARNING, logger='media.negotiation'):
        with pytest.raises(NotAuthorisedError):
            await tech.media.pull(legit_looking)
    assert any('room=alpha' in r.getMessage() and 'participant=tina' in r.getMessage() for r in caplog.records)
    assert tech.media.pulled == {}
    await alice.flowing('bob:camera')
    await bob.flowing('alice:camera')


# ---- 3. pushing into someone else's session is impossible by construction ---------------------------------------


def test_page_media_has_no_way_to_name_a_session() -> None:
    """No public operation of PageMedia (nor of the driver protocol) takes a session id or a locator to push to."""
    for name in ('push', 'unpush', 'pull', 'unpull', 'sync_pulls', 'recover', 'close'):
        parameters = inspect.signature(getattr(PageMedia, name)).parameters
        assert not any('session' in p for p in parameters), (name, list(parameters))
    assert 'session' not in ' '.join(PushOffer.__dataclass_fields__)


async def test_push_lands_in_own_session_and_pull_leaves_others_untouched(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    xavier, yvonne = pages('alpha', 'xavier'), pages('alpha', 'yvonne')
    x_locators = await xavier.publish()
    y_locators = await yvonne.publish()
    x_session = {loc.session_id for loc in x_locators.values()}
    y_session = {loc.session_id for loc in y_locators.values()}
    assert len(x_session) == 1 and len(y_session) == 1 and x_session != y_session

    y_id = y_session.pop()
    before = await statuses(client, y_id)
    assert sorted(v[1] for v in before.values()) == sorted(loc.track_name for loc in y_locators.values())

    await xavier.sync()  # X pulls Y's tracks: into X's own pull session, never Y's
    await xavier.flowing('yvonne:camera')
    assert await statuses(client, y_id) == before
    x_pull_sessions = {loc.session_id for loc, _ in xavier.media.pulled.values()}
    assert x_pull_sessions == {y_id}  # the locators name Y's session only as the source of a pull

    # X pushing more lands in X's session again (same session id, new track names), Y's stays as it was.
    xavier.driver.add_local('screen', 'video')
    more = await xavier.media.push(['screen'])
    assert {loc.session_id for loc in more.values()} == x_session
    assert await statuses(client, y_id) == before

    # At the HTTP level, naming Y's session needs the app secret, which a page never holds.
    stranger = CallsClient(client._api.http, APP_ID, 'what-a-page-could-guess')  # same transport, no secret
    with pytest.raises(UnauthorizedError):
        await stranger.new_tracks(y_id, TracksRequest(tracks=[x_locators['camera'].remote_track()]))
    assert await statuses(client, y_id) == before
    await yvonne.sync()
    await yvonne.flowing('xavier:camera', 'xavier:mic')


# ---- 4. malformed SDP from a page -------------------------------------------------------------------------------


class GarbagePushDriver(AiortcDriver):
    """A page whose push offer is not SDP at all."""

    async def create_push_offer(self, keys: list[str]) -> PushOffer:
        await super().create_push_offer(keys)  # real transceivers (and mids) exist, the SDP sent is garbage
        return PushOffer(sdp='v=0\r\nthis is not a session description\r\n', mids={key: '0' for key in keys})


class GarbagePullDriver(AiortcDriver):
    """A page whose answer to the SFU's pull offer is not SDP."""

    async def answer_pull(self, offer_sdp: str, mids: dict[str, str]) -> str:
        await super().answer_pull(offer_sdp, mids)
        return 'v=0\r\nm=garbage\r\n'


async def test_malformed_push_sdp_is_refused_and_other_rooms_keep_working(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    alice, bob = await pair(pages, 'alpha')
    bad = pages('alpha', 'eve', driver=GarbagePushDriver('eve'))
    bad.driver.add_local('camera', 'video')
    bad.driver.add_local('mic', 'audio')
    with pytest.raises((CallsApiError, NegotiationError)) as refused:
        await bad.media.push(['camera', 'mic'])
    assert isinstance(refused.value, InvalidRequestError), repr(refused.value)
    assert 'session description' in str(refused.value).lower() or refused.value.error_code, str(refused.value)
    assert bad.media.pushed == {}
    assert bad.room.get('eve').camera is None  # nothing was announced

    # A page answering a pull with garbage is refused too.
    garbled = pages('alpha', 'gary', driver=GarbagePullDriver('gary'))
    with pytest.raises(InvalidRequestError):
        await garbled.sync()
    assert garbled.media.pulled == {}

    # Room alpha is unaffected, and a second room's participants push and pull fine afterwards.
    await alice.flowing('bob:camera', 'bob:mic')
    await bob.flowing('alice:camera')
    carol, dave = await pair(pages, 'bravo', ('carol', 'dave'))
    await carol.flowing('dave:camera', 'dave:mic')
    await dave.flowing('carol:camera', 'carol:mic')


# ---- 5. negotiated close, forced close ---------------------------------------------------------------------------


async def test_unpull_unpush_and_close(pages: Callable[..., Page], client: CallsClient) -> None:
    alice, bob = pages('alpha', 'alice'), pages('alpha', 'bob')
    a = await alice.publish()
    await bob.sync()
    await bob.flowing('alice:camera', 'alice:mic')
    a_push = a['camera'].session_id
    cam_mid = bob.driver.mid_of('alice:camera')
    mic_mid = bob.driver.mid_of('alice:mic')
    assert cam_mid and mic_mid
    pull_session = await _pull_session_id(client, bob, cam_mid)

    # Alice stops her camera: announced first (as Call.unpublish does), then a negotiated close of one m-line.
    alice.room.set_camera('alice', None)
    await alice.media.unpush(['camera'])
    assert set(alice.media.pushed) == {'mic'}
    pushed = await statuses(client, a_push)
    assert _status(pushed, a['camera'].track_name) in (None, 'inactive')
    assert _status(pushed, a['mic'].track_name) == 'active'

    # Bob's sync sees the tile gone: negotiated unpull (the mic is still pulled), and the mic keeps flowing.
    assert await bob.sync() == {}
    assert set(bob.media.pulled) == {'alice:mic'}
    pulled = await statuses(client, pull_session)
    assert pulled.get(cam_mid, (None, None, 'inactive'))[2] == 'inactive'
    assert pulled[mic_mid][2] == 'active'
    await bob.flowing('alice:mic')

    # Last m-lines: forced close on both sides (Call.unpublish: announce, unpush, then release the capture).
    await bob.media.unpull(['alice:mic'])
    alice.room.set_mic('alice', None)
    await alice.media.unpush(['mic'])
    alice.driver.close_local('mic')
    alice.driver.close_local('camera')
    assert bob.media.pulled == {} and alice.media.pushed == {}
    assert all(v[2] == 'inactive' for v in (await statuses(client, pull_session)).values())
    assert all(v[2] == 'inactive' for v in (await statuses(client, a_push)).values())

    # The same pages publish and pull again after everything was closed.
    again = await alice.publish()
    assert set(await bob.sync()) == {'alice:camera', 'alice:mic'}
    await bob.flowing('alice:camera', 'alice:mic')

    # close(): everything force-closed at the SFU, and the page refuses further work.
    await bob.media.close()
    await alice.media.close()
    assert all(v[2] == 'inactive' for v in (await statuses(client, pull_session)).values())
    for session in {loc.session_id for loc in again.values()}:
        assert all(v[2] == 'inactive' for v in (await statuses(client, session)).values())
    with pytest.raises(NegotiationError, match='left the room'):
        await alice.media.push(['camera'])


async def test_push_again_after_unpushing_everything(pages: Callable[..., Page]) -> None:
    alice, bob = pages('alpha', 'alice'), pages('alpha', 'bob')
    await alice.publish()
    alice.room.set_camera('alice', None)
    alice.room.set_mic('alice', None)
    await alice.media.unpush(['camera', 'mic'])  # forced close: the session would be left without m-lines
    await alice.publish()  # capture still open (e.g. a re-publish after a transient error): must work
    await bob.sync()
    await bob.flowing('alice:camera', 'alice:mic')


class HeldVideoTrack(PatternVideoTrack):
    """A camera that delivers nothing until released (Chromium's depth camera is one that never is)."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()

    async def recv(self) -> av.VideoFrame:
        await self.released.wait()
        return await super().recv()


async def test_a_track_sending_nothing_gets_no_locator_until_it_sends(pages: Callable[..., Page]) -> None:
    alice, bob = pages('alpha', 'alice'), pages('alpha', 'bob')
    alice.media.sending_timeout = 0.5
    held, never = HeldVideoTrack(), HeldVideoTrack()
    alice.driver.local.update({'camera': held, 'depth': never})
    alice.driver.add_local('mic', 'audio')
    assert set(await alice.media.push(['camera', 'depth', 'mic'])) == {'mic'}
    assert set(alice.media.silent) == {'camera', 'depth'} and set(alice.media.pushed) == {'mic'}
    assert await alice.media.confirm_sending(0.2) == {}

    held.released.set()  # the camera starts delivering: the next check confirms it, and others can pull it
    late = await alice.media.confirm_sending(10.0)
    assert set(late) == {'camera'} and set(alice.media.silent) == {'depth'}
    assert set(alice.media.pushed) == {'camera', 'mic'}
    alice.room.set_camera('alice', str(late['camera']))
    await bob.sync()
    await bob.flowing('alice:camera')

    await alice.media.unpush(['depth'])  # a silent key is still negotiated, and closes like any other
    assert alice.media.silent == {} and set(alice.media.pushed) == {'camera', 'mic'}
    await bob.flowing('alice:camera')


def _status(state: dict[str, tuple[str | None, str | None, str | None]], track_name: str) -> str | None:
    return next((v[2] for v in state.values() if v[1] == track_name), None)


async def _pull_session_id(client: CallsClient, page: Page, mid: str) -> str:
    """The page's pull session id (PageMedia keeps it private; the page itself never learns it)."""
    session_id = page.media._pull.id
    assert session_id is not None and mid in await statuses(client, session_id)
    return session_id


# ---- SFU: a renegotiated pull session must not fork existing downstreams ---------------------------------------


async def test_third_participant_does_not_fork_existing_downstreams(
    pages: Callable[..., Page], monkeypatch: pytest.MonkeyPatch
) -> None:
    attached: dict[int, int] = {}  # SFU sender SSRC -> downstreams attached to it
    original = Forwarder.add_subscriber

    def add_subscriber(self: Forwarder, port: object) -> object:
        ssrc = port.ssrc  # type: ignore[attr-defined]
        attached[ssrc] = attached.get(ssrc, 0) + 1
        return original(self, port)  # type: ignore[arg-type]

    monkeypatch.setattr(Forwarder, 'add_subscriber', add_subscriber)
    alice, _bob = await pair(pages, 'alpha')
    carol = pages('alpha', 'carol')
    await carol.publish()
    await alice.sync()  # renegotiates alice's pull session, which already carries bob's two tracks
    await alice.flowing('bob:camera', 'carol:camera')
    assert attached and max(attached.values()) == 1, attached


# ---- 6. recovery after a failed connection ----------------------------------------------------------------------


async def test_recover_rebuilds_sessions_repushes_and_repulls(pages: Callable[..., Page], client: CallsClient) -> None:
    alice, bob = await pair(pages, 'alpha')
    await alice.flowing('bob:camera')
    await bob.flowing('alice:camera')
    old = dict(alice.media.pushed)

    await alice.driver.fail()  # the page's peer connections die under PageMedia's feet
    started = time.monotonic()
    fresh = await alice.media.recover()
    assert set(fresh) == {'camera', 'mic'}
    assert {loc.session_id for loc in fresh.values()} != {loc.session_id for loc in old.values()}
    assert len({loc.session_id for loc in fresh.values()}) == 1
    assert set(alice.media.pulled) == {'bob:camera', 'bob:mic'}  # re-pulled on the new pull session

    alice.room.set_camera('alice', str(fresh['camera']))  # announce the new locators, as Call does
    alice.room.set_mic('alice', str(fresh['mic']))
    await bob.sync()  # bob's stale tiles are closed and the new locators pulled
    assert {key: loc for key, (loc, _) in bob.media.pulled.items()} == {
        'alice:camera': fresh['camera'],
        'alice:mic': fresh['mic'],
    }
    await alice.flowing('bob:camera', 'bob:mic')
    await bob.flowing('alice:camera', 'alice:mic')
    print(f'recover: failure to media flowing both ways in {time.monotonic() - started:.2f} s')
