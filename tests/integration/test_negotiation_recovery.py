"""Issue 9 items 2, 3 and 5 (client side) with aiortc pages against the embedded SFU through the real CallsClient:
off is never forever (re-publish under a new locator), negotiation cannot wedge (failed/rejected/timed-out answers,
close during an exchange, recover racing a push, authorisation inside the lock, no blind tracks/new retry), and the
pull session's m-lines stay bounded. The SFU runs with a short idle timeout (`MEDIA_TIMEOUT`) so that "longer than
the idle timeout" takes seconds, not half a minute."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from media.calls_api import CallsError, InvalidRequestError, ServerError, TracksRequest, TracksResponse
from media.calls_api import TrackLocator as WireLocator
from media.calls_client import CallsClient
from media.negotiation import NegotiationError, PageMedia
from media.negotiation_states import KeyState
from media.sfu import EmbeddedSFU
from rooms import Role

from . import test_negotiation
from .aiortc_driver import AiortcDriver
from .conftest import APP_ID, APP_SECRET, make_config
from .test_negotiation import HeldVideoTrack, Page, pair, statuses

pages = test_negotiation.pages  # the same page factory fixture (aiortc pages, one room registry)
MEDIA_TIMEOUT = 1.5  # seconds without media before the SFU drops a published track (30 in production)


@pytest.fixture
async def sfu(request: pytest.FixtureRequest) -> AsyncIterator[EmbeddedSFU]:
    """The embedded SFU with a short idle timeout (a test may pass other settings with indirect parametrisation)."""
    overrides = getattr(request, 'param', {'media_timeout_s': MEDIA_TIMEOUT})
    server = EmbeddedSFU(make_config(**overrides))
    yield server
    await server.close()


@pytest.fixture
async def client(sfu: EmbeddedSFU) -> AsyncIterator[CallsClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu') as http:
        yield CallsClient(http, APP_ID, APP_SECRET)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Wait (bounded) for an outcome."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f'{what}: not within {timeout} s')
        await asyncio.sleep(0.1)


async def status(client: CallsClient, locator: WireLocator) -> str | None:
    """The SFU's status of a published track (None once its session is gone)."""
    try:
        state = await client.get_session(locator.session_id)
    except CallsError:
        return None
    return next((t.status for t in state.tracks or [] if t.track_name == locator.track_name), None)


async def collected(client: CallsClient, locator: WireLocator) -> None:
    async def gone() -> bool:
        return await status(client, locator) in (None, 'inactive')

    await until(gone, f'the SFU drops {locator} after {MEDIA_TIMEOUT} s without media')


# ---- item 2: off is never forever ---------------------------------------------------------------------------------


async def test_camera_off_longer_than_the_idle_timeout_comes_back_under_a_new_locator(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    alice, bob = await pair(pages)
    await bob.flowing('alice:camera')
    old = alice.media.pushed['camera']

    # What Call.set_enabled does: the browser stops sending, the room sees the flag, PageMedia notes the time.
    alice.driver.set_enabled('camera', False)
    alice.room.set_camera('alice', str(old), enabled=False)
    await alice.media.pause('camera')
    assert alice.media.states['camera'] is KeyState.PAUSED
    await collected(client, old)

    alice.driver.set_enabled('camera', True)
    fresh = await alice.media.resume('camera')
    assert fresh is not None and fresh != old, 'a dead locator must not be re-announced'
    assert alice.media.pushed['camera'] == fresh and alice.media.states['camera'] is KeyState.SENDING
    alice.room.set_camera('alice', str(fresh), enabled=True)
    await bob.sync()
    assert bob.media.pulled['alice:camera'][0] == fresh
    await bob.flowing('alice:camera', 'alice:mic')
    await alice.flowing('bob:camera')


@pytest.mark.parametrize('sfu', [{'media_timeout_s': 30.0}], indirect=True)
async def test_switch_on_reuses_the_locator_after_a_short_pause_and_republishes_after_a_long_one(
    pages: Callable[..., Page],
) -> None:
    """The SFU (30 s) still holds the track both times: the monotonic clock alone decides that 11 s off is too long."""
    alice, bob = await pair(pages)
    clock = FakeClock()
    alice.media.clock = clock
    old = alice.media.pushed['camera']

    alice.driver.set_enabled('camera', False)
    await alice.media.pause('camera')
    clock.now += 3.0
    alice.driver.set_enabled('camera', True)
    assert await alice.media.resume('camera') == old  # short: same locator, nobody re-pulls

    alice.driver.set_enabled('camera', False)
    await alice.media.pause('camera')
    clock.now += alice.media.republish_after + 1.0
    alice.driver.set_enabled('camera', True)
    fresh = await alice.media.resume('camera')
    assert fresh is not None and fresh != old
    alice.room.set_camera('alice', str(fresh))
    await bob.sync()
    await bob.flowing('alice:camera')


async def test_a_microphone_is_republished_only_when_the_sfu_dropped_it(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    """A muted browser microphone keeps sending silence, so the clock alone never condemns it; the SFU is asked."""
    alice, bob = await pair(pages)
    clock = FakeClock()
    alice.media.clock = clock
    old = alice.media.pushed['mic']
    await alice.media.pause('mic', sends_while_off=True)
    clock.now += 100.0
    assert await alice.media.resume('mic') == old  # the SFU still has it: kept

    alice.driver.set_enabled('mic', False)  # this "browser" sends nothing while muted (e.g. with DTX)
    await alice.media.pause('mic', sends_while_off=True)
    await collected(client, old)
    alice.driver.set_enabled('mic', True)
    fresh = await alice.media.resume('mic')
    assert fresh is not None and fresh != old
    alice.room.set_mic('alice', str(fresh))
    await bob.sync()
    await bob.flowing('alice:mic')


async def test_a_silent_camera_that_starts_after_the_idle_timeout_gets_a_new_locator(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    alice, bob = pages('alpha', 'alice'), pages('alpha', 'bob')
    alice.media.sending_timeout = 0.5
    held = HeldVideoTrack()
    alice.driver.local['camera'] = held
    assert await alice.media.push(['camera']) == {}
    silent = alice.media.silent['camera']
    await collected(client, silent)

    held.released.set()
    late = await alice.media.confirm_sending(10.0)
    assert set(late) == {'camera'} and late['camera'] != silent
    alice.room.set_camera('alice', str(late['camera']))
    await bob.sync()
    await bob.flowing('alice:camera')


# ---- item 3: negotiation cannot wedge -----------------------------------------------------------------------------


class WedgingPullDriver(AiortcDriver):
    """Fails the next pull answer: 'raises' (the page's script failed), 'timeout' (run_method timed out) or
    'rejected' (an answer the SFU refuses)."""

    wedge: str | None = None

    async def answer_pull(self, offer_sdp: str, mids: dict[str, str]) -> str:
        mode, self.wedge = self.wedge, None
        if mode == 'raises':
            raise RuntimeError('answerPull: the page failed')
        if mode == 'timeout':
            await super().answer_pull(offer_sdp, mids)
            raise TimeoutError
        answer = await super().answer_pull(offer_sdp, mids)
        return 'v=0\r\nm=garbage\r\n' if mode == 'rejected' else answer


@pytest.mark.parametrize('mode', ['raises', 'timeout', 'rejected'])
async def test_a_wedged_pull_session_is_rebuilt_and_the_next_pull_flows(
    pages: Callable[..., Page], client: CallsClient, mode: str
) -> None:
    alice = pages('alpha', 'alice')
    bob = pages('alpha', 'bob', driver=WedgingPullDriver('bob'))
    await alice.publish()
    pushed = await bob.publish()
    bob.driver.wedge = mode
    broken: list[str] = []
    bob.media.on_broken = lambda: broken.append('pull')  # Call wakes its sync loop (with backoff) on this
    with pytest.raises((NegotiationError, CallsError)):
        await bob.sync()
    wedged = bob.media._pull.id
    assert bob.media.pulled == {} and bob.media.needs_heal and broken == ['pull']

    assert set(await bob.sync()) == {'alice:camera', 'alice:mic'}
    assert bob.media._pull.id != wedged  # a new pull session
    await bob.flowing('alice:camera', 'alice:mic')
    # Only the pull side was rebuilt: bob's own tracks kept their locators and still reach alice.
    assert 'push' not in bob.driver.resets and bob.media.pushed == pushed
    await alice.sync()
    await alice.flowing('bob:camera')


class TimeoutPushDriver(AiortcDriver):
    """The browser applies the push answer but `run_method` times out (the SFU has accepted the tracks)."""

    time_out = False

    async def apply_push_answer(self, sdp: str) -> None:
        await super().apply_push_answer(sdp)
        if self.time_out:
            self.time_out = False
            raise TimeoutError


async def test_a_run_method_timeout_after_the_sfu_accepted_leaves_the_page_able_to_push(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    alice = pages('alpha', 'alice', driver=TimeoutPushDriver('alice'))
    bob = pages('alpha', 'bob')
    before = await alice.publish()
    await bob.sync()
    news: list[tuple[str, WireLocator | None]] = []
    alice.media.on_locator = lambda key, locator: news.append((key, locator))

    alice.driver.add_local('screen', 'video')
    alice.driver.time_out = True
    with pytest.raises(NegotiationError):
        await alice.media.push(['screen'])
    assert alice.media.states['screen'] is KeyState.FAILED and alice.media.needs_heal

    await alice.media.heal()  # what Call's sync loop does next: rebuild the push session, push everything again
    after = alice.media.pushed
    assert set(after) == {'camera', 'mic', 'screen'} and len({loc.session_id for loc in after.values()}) == 1
    assert after['camera'].session_id != before['camera'].session_id
    for locator in before.values():  # the old session was force-closed
        assert await status(client, locator) in (None, 'inactive')
    assert ('camera', None) in news and ('camera', after['camera']) in news  # withdrawn, then announced again
    assert 'pull' not in alice.driver.resets
    alice.room.set_camera('alice', str(after['camera']))
    alice.room.set_mic('alice', str(after['mic']))
    alice.room.set_screen('alice', str(after['screen']))
    await bob.sync()
    await bob.flowing('alice:camera', 'alice:mic', 'alice:screen')


class GatedDriver(AiortcDriver):
    """Holds the next push answer or pull answer until `gate` opens (a page that is slow, then gone)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.hold: str | None = None
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def _wait(self, what: str) -> None:
        if self.hold == what:
            self.hold = None
            self.entered.set()
            await self.gate.wait()

    async def apply_push_answer(self, sdp: str) -> None:
        await self._wait('push')
        await super().apply_push_answer(sdp)

    async def answer_pull(self, offer_sdp: str, mids: dict[str, str]) -> str:
        await self._wait('pull')
        return await super().answer_pull(offer_sdp, mids)


async def test_close_during_a_push_leaves_nothing_at_the_sfu(pages: Callable[..., Page], client: CallsClient) -> None:
    alice = pages('alpha', 'alice', driver=GatedDriver('alice'))
    alice.driver.add_local('camera', 'video')
    alice.driver.add_local('mic', 'audio')
    alice.driver.hold = 'push'
    pushing = asyncio.ensure_future(alice.media.push(['camera', 'mic']))
    await alice.driver.entered.wait()  # the SFU accepted; the browser has not applied the answer yet
    session_id = alice.media._push.id
    assert session_id is not None
    assert [v[2] for v in (await statuses(client, session_id)).values()] == ['active', 'active']

    closing = asyncio.ensure_future(alice.media.close())
    await asyncio.sleep(0)
    alice.driver.gate.set()
    await closing  # never raises into the page
    with pytest.raises(NegotiationError, match='left the room'):
        await pushing
    assert all(v[2] == 'inactive' for v in (await statuses(client, session_id)).values())
    assert alice.media.pushed == {} and alice.media.states == {}


async def test_close_during_a_pull_leaves_nothing_at_the_sfu(pages: Callable[..., Page], client: CallsClient) -> None:
    alice = pages('alpha', 'alice')
    bob = pages('alpha', 'bob', driver=GatedDriver('bob'))
    await alice.publish()
    bob.driver.hold = 'pull'
    pulling = asyncio.ensure_future(bob.sync())
    await bob.driver.entered.wait()  # the SFU offered and waits for the answer
    session_id = bob.media._pull.id
    assert session_id is not None

    closing = asyncio.ensure_future(bob.media.close())
    await asyncio.sleep(0)
    bob.driver.gate.set()
    await closing
    with pytest.raises(NegotiationError, match='left the room'):
        await pulling
    state = await statuses(client, session_id)
    assert state and all(v[2] == 'inactive' for v in state.values())


async def test_recover_racing_a_push_keeps_every_track(pages: Callable[..., Page], client: CallsClient) -> None:
    alice, bob = await pair(pages)
    old = alice.media.pushed
    alice.driver.add_local('screen', 'video')
    await alice.driver.fail()  # the connection died; the page also shares its screen at that moment
    locators, _ = await asyncio.gather(alice.media.recover(), alice.media.push(['screen']))
    mine = alice.media.pushed
    assert set(mine) == {'camera', 'mic', 'screen'}, alice.media.states
    assert len({loc.session_id for loc in mine.values()}) == 1
    assert mine['camera'].session_id != old['camera'].session_id
    assert set(locators) >= {'camera', 'mic'}
    alice.room.set_camera('alice', str(mine['camera']))
    alice.room.set_mic('alice', str(mine['mic']))
    alice.room.set_screen('alice', str(mine['screen']))
    await bob.sync()
    await bob.flowing('alice:camera', 'alice:mic', 'alice:screen')
    await alice.flowing('bob:camera')


async def test_a_failed_pull_connection_rebuilds_only_the_pull_session(pages: Callable[..., Page]) -> None:
    alice, bob = await pair(pages)
    mine, old_pull = bob.media.pushed, bob.media._pull.id
    await bob.driver.pcs['pull'].close()  # only the receiving connection died
    assert await bob.media.recover(['pull']) == mine  # our own tracks were not touched
    assert bob.media._pull.id != old_pull and bob.driver.resets == ['pull']
    await bob.flowing('alice:camera', 'alice:mic')
    await alice.flowing('bob:camera', 'bob:mic')


async def hospital_with_cameras(pages: Callable[..., Page], room: str, count: int) -> tuple[Page, list[str]]:
    """A hospital station publishing `count` cameras (devices dev-1 …); returns it and the technician tile keys."""
    hospital = pages(room, 'hosp', Role.HOSPITAL)
    keys = [f'cam-{n}' for n in range(1, count + 1)]
    for key in keys:
        hospital.driver.add_local(key, 'video')
    locators = await hospital.media.push(keys)
    for n, key in enumerate(keys, start=1):
        hospital.room.add_camera('hosp', f'dev-{n}', f'Camera {n}', locator=str(locators[key]))
    return hospital, [f'hosp:camera:dev-{n}' for n in range(1, count + 1)]


async def test_authorisation_is_checked_again_inside_the_session_lock(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    hospital, (first, second) = await hospital_with_cameras(pages, 'ward', 2)
    tech = pages('ward', 'tech', Role.TECHNICIAN, driver=GatedDriver('tech'))
    wanted = tech.wanted()
    tech.driver.hold = 'pull'
    earlier = asyncio.ensure_future(tech.media.pull({first: wanted[first]}))
    await tech.driver.entered.wait()  # holds the pull session's lock
    waiting = asyncio.ensure_future(tech.media.pull({second: wanted[second]}))
    for _ in range(5):
        await asyncio.sleep(0)  # authorised at the door, now queued on the lock
    hospital.room.update_camera('hosp', 'dev-2', enabled=False)  # privacy switch while the pull waited
    tech.driver.gate.set()
    assert set(await earlier) == {first}
    assert await waiting == {}
    assert set(tech.media.pulled) == {first}
    session_id = tech.media._pull.id
    assert session_id is not None
    pulled_names = {v[1] for v in (await statuses(client, session_id)).values()}
    assert wanted[second].track_name not in pulled_names  # never even requested from the SFU
    await tech.flowing(first)


class FlakyClient(CallsClient):
    """tracks/new fails with a 5xx, either before the SFU saw it or after it did the work (the reply was lost)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_before = 0
        self.fail_after = 0
        self.calls = 0

    async def new_tracks(self, session_id: str, request: TracksRequest, **kwargs: Any) -> TracksResponse:
        self.calls += 1
        if self.fail_before:
            self.fail_before -= 1
            raise ServerError('internal error before the work')
        response = await super().new_tracks(session_id, request, **kwargs)
        if self.fail_after:
            self.fail_after -= 1
            raise ServerError('internal error after the work')
        return response


async def test_tracks_new_is_retried_only_when_get_session_shows_nothing_was_created(sfu: EmbeddedSFU) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu') as http:
        flaky = FlakyClient(http, APP_ID, APP_SECRET)
        driver = AiortcDriver('solo')
        media = PageMedia(client=flaky, driver=driver, room='alpha', participant_id='solo', may_pull=lambda _: True)
        try:
            driver.add_local('camera', 'video')
            driver.add_local('mic', 'audio')
            flaky.fail_before = 1  # nothing created: retried, once
            first = await media.push(['camera'])
            assert flaky.calls == 2 and set(first) == {'camera'}
            state = await flaky.get_session(first['camera'].session_id)
            assert [t.track_name for t in state.tracks or []] == [first['camera'].track_name]

            flaky.calls, flaky.fail_after = 0, 1  # created, reply lost: not pushed a second time
            with pytest.raises(NegotiationError, match='created'):
                await media.push(['mic'])
            assert flaky.calls == 1 and media.needs_heal
            healed = await media.heal()
            assert set(healed) == {'camera', 'mic'} and healed['mic'].session_id != first['camera'].session_id
            for locator in (first['camera'],):  # the old session was force-closed (or is gone altogether)
                assert await status(flaky, locator) in (None, 'inactive')
        finally:
            await media.close()
            await driver.close()


# ---- item 5 (client side): bounded m-lines --------------------------------------------------------------------------


async def test_pull_mlines_stay_bounded_over_fifty_privacy_toggles(
    pages: Callable[..., Page], client: CallsClient
) -> None:
    hospital, (steady, toggled) = await hospital_with_cameras(pages, 'ward', 2)
    tech = pages('ward', 'tech', Role.TECHNICIAN)
    tech.media.max_closed_mlines = 6
    await tech.sync()
    await tech.flowing(steady, toggled)
    most = 0
    for n in range(50):
        hospital.room.update_camera('hosp', 'dev-2', enabled=n % 2 == 1)  # off, on, off, … (ends on)
        await tech.sync()
        most = max(most, tech.driver.pull_mline_count())
    assert set(tech.media.pulled) == {steady, toggled}
    assert most <= tech.media.max_closed_mlines + 2 + 1, most  # closed + live + the one being added
    await tech.flowing(steady, toggled)


# ---- no single failure wedges a page ------------------------------------------------------------------------------

DRIVER_STEPS = (
    'create_push_offer',
    'apply_push_answer',
    'wait_sending',
    'create_push_close_offer',
    'answer_pull',
    'create_pull_close_offer',
    'apply_pull_answer',
    'drop_pulled',
    'drop_pushed',
)
CALLS_STEPS = ('new_session', 'new_tracks', 'renegotiate', 'close_tracks')


class FaultyDriver(AiortcDriver):
    """Raises TimeoutError (a `run_method` timeout) the first time `fault` is called once `armed`."""

    fault = ''
    armed = False

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name in DRIVER_STEPS and super().__getattribute__('armed') and name == super().__getattribute__('fault'):
            self.armed = False

            async def failing(*args: Any, **kwargs: Any) -> Any:
                raise TimeoutError(f'{name} timed out')

            return failing
        return attr


class FaultyClient(CallsClient):
    """Answers 400 the first time `fault` is called once `armed` (non-retryable: the exchange fails)."""

    fault = ''
    armed = False

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name in CALLS_STEPS and super().__getattribute__('armed') and name == super().__getattribute__('fault'):
            self.armed = False

            async def failing(*args: Any, **kwargs: Any) -> Any:
                raise InvalidRequestError(f'{name}: injected failure')

            return failing
        return attr


@pytest.mark.parametrize('sfu', [{'media_timeout_s': 30.0}], indirect=True)
@pytest.mark.parametrize('fault', [f'driver.{s}' for s in DRIVER_STEPS] + [f'calls.{s}' for s in CALLS_STEPS])
async def test_no_single_failure_wedges_a_page(pages: Callable[..., Page], sfu: EmbeddedSFU, fault: str) -> None:
    """One failure anywhere in push, pull, close and re-pull: afterwards, what the sync loop does (heal, sync,
    publish again) brings the page back to sending and receiving everything."""
    where, step = fault.split('.')
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu') as http:
        faulty = FaultyClient(http, APP_ID, APP_SECRET)
        alice = pages('alpha', 'alice')
        bob = pages('alpha', 'bob', driver=FaultyDriver('bob'))
        bob.media.client = faulty
        bob.media.sending_timeout = 2.0
        await alice.publish()
        target: Any = bob.driver if where == 'driver' else faulty
        target.fault, target.armed = step, True

        async def attempt(step: Callable[[], Awaitable[object]]) -> None:
            try:
                await step()
            except (CallsError, NegotiationError):
                pass  # the page shows a message; the sync loop heals

        async def publish() -> None:  # Call.publish_all, then what it and on_locator announce
            await attempt(lambda: bob.media.push(['camera', 'mic']))
            await attempt(lambda: bob.media.confirm_sending(1.0))  # the camera manager's recheck of silent ones
            mine = bob.media.pushed
            bob.room.set_camera('bob', str(mine['camera']) if 'camera' in mine else None)
            bob.room.set_mic('bob', str(mine['mic']) if 'mic' in mine else None)

        bob.driver.add_local('camera', 'video')
        bob.driver.add_local('mic', 'audio')
        await publish()
        await attempt(bob.sync)
        await attempt(lambda: bob.media.unpull(['alice:camera']))  # negotiated: the mic stays
        await attempt(bob.sync)
        await attempt(lambda: bob.media.unpush(['camera']))  # negotiated: the mic stays
        await attempt(lambda: bob.media.unpull(['alice:camera', 'alice:mic']))  # forced: the last ones
        await attempt(lambda: bob.media.unpush(['mic']))  # forced: the last one
        assert not target.armed, f'{fault} was never reached'

        for _ in range(2):  # what Call's sync loop does after a failure (and the user publishing again)
            if bob.media.needs_heal:
                await attempt(bob.media.heal)
            await publish()
            await attempt(bob.sync)
        assert set(bob.media.pulled) == {'alice:camera', 'alice:mic'}, bob.media.states
        assert set(bob.media.pushed) == {'camera', 'mic'}, bob.media.states
        await bob.flowing('alice:camera', 'alice:mic')
        await alice.sync()
        await alice.flowing('bob:camera', 'bob:mic')
