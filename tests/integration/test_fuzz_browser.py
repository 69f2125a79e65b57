"""Fuzzing the browser→server surface (issue #10 item 6): whatever a modified page answers to `run_method` and
whatever events it emits, nothing raises into the page or the loop except a clear `NegotiationError`, what the
server keeps per page stays bounded, the SFU holds a bounded number of sessions, and a call set up before (aiortc
pages against the embedded SFU) keeps flowing.

Two forged pages (`ForgedSession`: the real `MediaSession` checks, its `run_method` answered by Hypothesis) join the
call's room and a station room, and are driven like the app drives a page: `Call.publish_all`, `rename`,
`set_enabled`, the sync loop, and events through the page's gate. Hypothesis drives sync tests; the SFU, the pages
and their `Call`s live on one event loop owned by the module fixture (as in test_fuzz_sfu_api.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nicegui import core

from components.call import Call, LocalTrack
from components.media_session import EVENT_LIMITS, MAX_DEVICES, MediaSession, gated
from media.calls_client import CallsClient
from media.negotiation import NegotiationError, PushOffer
from media.sfu import EmbeddedSFU
from rooms import MAX_CAMERAS, Role, RoomRegistry
from rooms.limits import EventGate
from rooms.model import LABEL_MAX_LENGTH

from .browser_pages import PageSession, end_background_tasks
from .conftest import APP_ID, APP_SECRET, make_config

STEP_TIMEOUT = 20.0  # a hang fails the example
TIMEOUT = object()  # a forged answer: run_method times out


class ForgedSession(MediaSession):
    """A modified page: `MediaSession`'s own result checks, its browser answering whatever the test forges."""

    def __init__(self) -> None:  # no NiceGUI element: Call and PageMedia only use the methods below
        self.clock = time.monotonic
        self.gate = EventGate(limits=EVENT_LIMITS)
        self.handlers: dict[str, list[Callable[[Any], None]]] = {}
        self.answers: list[Any] = []  # consumed one per run_method; None when none are left (a page gone)

    def on(self, type: str, handler: Any = None, args: Any = None, **kwargs: Any) -> ForgedSession:
        self.handlers.setdefault(type, []).append(gated(self.gate, self.clock, type, handler))
        return self

    def emit(self, name: str, args: Any) -> None:
        for handler in self.handlers.get(name, []):
            handler(SimpleNamespace(args=args))

    async def run_method(self, name: str, *args: Any, timeout: float = 1.0) -> Any:  # type: ignore[override]
        answer = self.answers.pop(0) if self.answers else None
        if answer is TIMEOUT:
            raise TimeoutError
        return answer

    def __repr__(self) -> str:
        return 'ForgedSession()'


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    sfu: EmbeddedSFU
    alice: Call
    bob: Call
    alice_page: PageSession
    bob_page: PageSession
    mallory: Call  # a regular in the call's room
    marvin: Call  # a station in another room
    errors: list[BaseException]

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, STEP_TIMEOUT))


async def flowing(call: Call, page: PageSession, key: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while key not in call.media.pulled:
        assert loop.time() < deadline, f'{call.name} pulls {key}'
        await asyncio.sleep(0.05)
    await page.next_frames(key, 3, timeout)


@pytest.fixture(scope='module')
def world() -> Iterator[World]:
    loop = asyncio.new_event_loop()
    errors: list[BaseException] = []
    saved = core.loop, core.app.handle_exception
    core.loop = loop
    core.app.handle_exception = errors.append  # type: ignore[method-assign]

    async def setup() -> tuple[World, httpx.AsyncClient]:
        sfu = EmbeddedSFU(make_config())
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu')
        client = CallsClient(http, APP_ID, APP_SECRET)
        registry = RoomRegistry()

        def join(room: str, name: str, role: Role, session: Any) -> Call:
            return Call.create(registry=registry, room_name=room, role=role, name=name, session=session, client=client)

        alice_page, bob_page = PageSession('alice'), PageSession('bob')
        alice = join('alpha', 'Alice', Role.REGULAR, alice_page)
        bob = join('alpha', 'Bob', Role.REGULAR, bob_page)
        for call in (alice, bob):
            assert (
                await call.publish_all([LocalTrack(key='mic', source='mic'), LocalTrack(key='camera', source='camera')])
                == []
            )
        await flowing(bob, bob_page, f'{alice.participant_id}:camera')
        await flowing(alice, alice_page, f'{bob.participant_id}:camera')
        mallory = join('alpha', 'Mallory', Role.REGULAR, ForgedSession())
        marvin = join('ward', 'Marvin', Role.HOSPITAL, ForgedSession())
        w = World(loop, sfu, alice, bob, alice_page, bob_page, mallory, marvin, errors)
        return w, http

    w, http = loop.run_until_complete(setup())
    yield w

    async def teardown() -> None:
        for call in (w.alice, w.bob, w.mallory, w.marvin):
            await call.leave()
        for page in (w.alice_page, w.bob_page):
            await page.close()
        await http.aclose()
        await w.sfu.close()
        await end_background_tasks()

    loop.run_until_complete(teardown())
    loop.close()
    core.loop, core.app.handle_exception = saved  # type: ignore[method-assign]


TEXT = st.text(max_size=40) | st.sampled_from(['', 'x' * 100_000, '\x00\x1b[2J\n' * 50, 'v=0'])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=25,
)
SDP = st.sampled_from(['v=0\r\n', 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n', 'v=0' + 'a=x\r\n' * 40_000]) | TEXT.map(
    lambda t: 'v=0\r\n' + t
)
MIDS = st.dictionaries(TEXT, st.one_of(TEXT, st.integers(), st.none(), JSON), max_size=4)
ANSWER = st.one_of(
    JSON,
    st.just(TIMEOUT),
    st.fixed_dictionaries({'__error__': JSON}),
    st.fixed_dictionaries(
        {'ok': st.booleans() | JSON},
        optional={'label': JSON, 'deviceId': JSON | TEXT, 'error': JSON | st.fixed_dictionaries({'message': JSON})},
    ),
    st.fixed_dictionaries({'sdp': SDP | JSON}, optional={'mids': MIDS | JSON}),
    st.fixed_dictionaries({'cameras': st.lists(st.fixed_dictionaries({'deviceId': TEXT, 'label': TEXT}), max_size=50)}),
    st.just({'cameras': [{'deviceId': f'dev-{i}', 'label': 'L' * 300} for i in range(5000)]}),
    st.lists(TEXT, max_size=5),
    SDP,
)
EVENTS = st.sampled_from([*EVENT_LIMITS, 'click', 'log', 'x' * 300])
TRACK = st.builds(
    LocalTrack,
    key=st.sampled_from(['mic', 'camera', 'screen', 'cam-1', 'cam-2']) | st.text(max_size=10),
    source=st.sampled_from(['mic', 'camera', 'screen', 'bogus']),
    device_id=st.none() | st.sampled_from(['dev-1', 'dev-2']) | st.text(max_size=300),
    label=st.text(max_size=100),
)
ACTION = st.one_of(
    st.tuples(
        st.just('event'),
        EVENTS,
        JSON
        | st.fixed_dictionaries(
            {'role': JSON | st.sampled_from(['push', 'pull'])},
            optional={
                'state': st.sampled_from(['failed', 'connected', 'connecting']) | JSON,
                'speaking': JSON,
                'key': JSON,
            },
        ),
    ),
    st.tuples(st.just('publish'), st.lists(TRACK, max_size=4), st.lists(ANSWER, max_size=8)),
    st.tuples(st.just('rename'), st.sampled_from(['mic', 'camera', 'cam-1']), TEXT),
    st.tuples(
        st.just('switch'),
        st.sampled_from(['mic', 'camera', 'cam-1', 'screen']),
        st.booleans(),
        st.lists(ANSWER, max_size=3),
    ),
    st.tuples(st.just('sync'), st.lists(ANSWER, max_size=8)),
)


async def act(call: Call, action: tuple[Any, ...]) -> None:
    session = call.session
    assert isinstance(session, ForgedSession)
    kind = action[0]
    if kind == 'event':
        session.emit(action[1], action[2])
    elif kind == 'publish':
        session.answers = list(action[2])
        problems = await call.publish_all(list(action[1]))
        assert all(isinstance(p, str) and len(p) <= 300 for p in problems)
    elif kind == 'rename':
        problem = call.rename(action[1], action[2])
        assert problem is None or isinstance(problem, str)
    elif kind == 'switch':
        session.answers = list(action[3])
        problem = await call.set_enabled(action[1], action[2])
        assert problem is None or isinstance(problem, str)
    else:
        session.answers = list(action[1])
        call.refresh_pulls()
    await asyncio.sleep(0.02)  # background tasks (recoveries, the sync loop, unpublish after local_ended) run


def check_bounded(world: World) -> None:
    for call in (world.mallory, world.marvin):
        session = call.session
        assert isinstance(session, ForgedSession)
        assert set(call.connection) <= {'push', 'pull'}
        assert len(call.local) <= MAX_CAMERAS + 2
        assert set(session.gate.buckets) <= set(EVENT_LIMITS) and len(session.gate.dropping) <= len(EVENT_LIMITS) + 1
        assert all(len(t.label) <= 4 * LABEL_MAX_LENGTH for t in call.local.values())
        assert len(call.media.states) <= MAX_CAMERAS + 2 + 8  # own keys, plus the tiles of the call's two pages
        me = call.me
        if me is not None:
            assert len(me.cameras) <= MAX_CAMERAS and all(len(c.label) <= LABEL_MAX_LENGTH for c in me.cameras)
    assert world.sfu.stats()['sessions'] <= 60
    if world.errors:
        raise world.errors[0]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_forged_answers_and_events_stay_contained(world: World, data: st.DataObject) -> None:
    call = data.draw(st.sampled_from([world.mallory, world.marvin]))
    for action in data.draw(st.lists(ACTION, min_size=1, max_size=6)):
        world.run(act(call, action))
    check_bounded(world)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(['open', 'devices', 'offer', 'sending', 'close_offer', 'answer', 'enable', 'stats']),
    answer=ANSWER,
)
def test_every_forged_result_is_checked_or_a_negotiation_error(world: World, method: str, answer: Any) -> None:
    session = ForgedSession()

    async def ask() -> Any:
        session.answers = [answer]
        if method == 'open':
            result = await session.open_local('cam-1', 'camera', 'dev-1')
            assert result['ok'] is True or isinstance(result['error']['message'], str)
            assert len(result.get('label', '')) <= 120 and len(result.get('deviceId', '')) <= 256
            assert len(result.get('error', {}).get('message', '')) <= 200
        elif method == 'devices':
            devices = await session.list_devices()
            assert len(devices) <= MAX_DEVICES
            assert all(set(d) == {'deviceId', 'label'} and d['deviceId'] and len(d['label']) <= 120 for d in devices)
        elif method == 'offer':
            offer = await session.create_push_offer(['mic', 'camera'])
            assert isinstance(offer, PushOffer) and set(offer.mids) == {'mic', 'camera'}
            assert len(set(offer.mids.values())) == 2 and len(offer.sdp) <= 128 * 1024
        elif method == 'sending':
            assert await session.wait_sending(['mic', 'camera'], 0.1) <= {'mic', 'camera'}
        elif method == 'close_offer':
            assert (await session.create_push_close_offer(['mic'])).startswith('v=0')
        elif method == 'answer':
            assert (await session.answer_pull('v=0\r\n', {'0': 'x:camera'})).startswith('v=0')
        elif method == 'enable':
            result = await session.set_local_enabled('camera', True)
            assert result == {'ok': True} or len(result['error']['message']) <= 200
        else:
            assert isinstance(await session.stats(), dict)

    try:
        world.run(ask())
    except NegotiationError as error:
        assert len(str(error)) <= 400


def test_after_the_fuzzing_the_existing_call_still_flows(world: World) -> None:
    async def check() -> None:
        await flowing(world.bob, world.bob_page, f'{world.alice.participant_id}:camera')
        await flowing(world.bob, world.bob_page, f'{world.alice.participant_id}:mic')
        await flowing(world.alice, world.alice_page, f'{world.bob.participant_id}:camera')

    world.run(check())
    check_bounded(world)
    assert world.alice.watching == {f'{world.bob.participant_id}:camera'}
