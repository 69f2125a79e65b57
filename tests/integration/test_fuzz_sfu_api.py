"""Fuzzing every endpoint of the embedded SFU's Calls API (issue #10): whatever the body, id, SDP or headers, the
answer is a 4xx with an errorCode (or a success), never a 5xx or a hang; a call set up before keeps flowing; the
session count stays bounded.

Hypothesis drives sync tests; the SFU, its peers and the httpx client live on one event loop owned by the module
fixture, which each example runs to completion (so the loop is really shared, as in the app).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU

from .conftest import APP_ID, APP_SECRET, make_config
from .sfu_peers import PatternVideoTrack, new_pc, new_subscriber, publish, pull, track_for

AUTH = {'authorization': f'Bearer {APP_SECRET}'}
BASE = f'/apps/{APP_ID}/sessions'
REQUEST_TIMEOUT = 20.0  # a hang fails the example; a real answer comes in milliseconds


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    sfu: EmbeddedSFU
    http: httpx.AsyncClient
    sessions: list[str]
    offer: str
    publisher: Any
    subscriber: Any

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, REQUEST_TIMEOUT))


async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = new_pc()
    pc.addTransceiver(AudioStreamTrack(), direction='sendonly')
    pc.addTransceiver(PatternVideoTrack(), direction='sendonly')
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@pytest.fixture(scope='module')
def world() -> Iterator[World]:
    loop = asyncio.new_event_loop()

    async def setup() -> World:
        sfu = EmbeddedSFU(make_config())
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu')
        client = CallsClient(http, APP_ID, APP_SECRET)
        publisher = await publish(client)
        subscriber = await new_subscriber(client)
        response = await pull(client, subscriber, publisher.session_id, ['v'])
        await track_for(subscriber, (response.tracks or [])[0].mid or '')
        sessions = [(await client.new_session()).session_id for _ in range(3)]
        _, offer = await _offer()
        return World(loop, sfu, http, sessions, offer, publisher, subscriber)

    w = loop.run_until_complete(setup())
    yield w

    async def teardown() -> None:
        await w.publisher.pc.close()
        await w.subscriber.pc.close()
        await w.http.aclose()
        await w.sfu.close()

    loop.run_until_complete(teardown())
    loop.close()


def mutate_sdp(sdp: str, data: st.DataObject) -> str:
    """A real offer, with lines dropped, duplicated, swapped or replaced by junk."""
    lines = sdp.split('\r\n')
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(['drop', 'dup', 'junk', 'num']))
        if action == 'drop':
            lines.pop(i)
        elif action == 'dup':
            lines[i:i] = [lines[i]] * data.draw(st.integers(1, 200))
        elif action == 'junk':
            lines[i] = data.draw(st.text(max_size=80))
        else:
            lines[i] = re.sub(r'\d+', lambda m: str(data.draw(st.integers(-1, 2**33))), lines[i])
        if not lines:
            lines = ['v=0']
    return '\r\n'.join(lines)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
KEYS = ['sessionDescription', 'tracks', 'force', 'autoDiscover', 'location', 'mid', 'trackName', 'sessionId']


def body_for(data: st.DataObject, offer: str, sessions: list[str]) -> bytes:
    kind = data.draw(st.sampled_from(['raw', 'json', 'calls']))
    if kind == 'raw':
        return data.draw(st.binary(max_size=300) | st.sampled_from([b'[' * 50_000, b'{"a":' * 5_000, b'']))
    if kind == 'json':
        return json.dumps(data.draw(JSON)).encode()
    track = st.fixed_dictionaries(
        {},
        optional={
            'location': st.sampled_from(['local', 'remote', 'elsewhere']),
            'mid': st.sampled_from(['0', '1', '99', '']) | st.text(max_size=5),
            'trackName': st.sampled_from(['a', 'v', 'x']) | st.text(max_size=10),
            'sessionId': st.sampled_from(sessions) | st.text(max_size=40),
            'simulcast': st.fixed_dictionaries({'preferredRid': st.text(max_size=3)}),
        },
    )
    description = st.fixed_dictionaries(
        {'type': st.sampled_from(['offer', 'answer', 'pranswer', 'bogus']), 'sdp': st.just(mutate_sdp(offer, data))}
    )
    body = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                'sessionDescription': description,
                'tracks': st.lists(track, max_size=5),
                'force': st.booleans(),
                'autoDiscover': st.booleans(),
            },
        )
    )
    return json.dumps(body).encode()


ENDPOINTS = [
    ('POST', '/new'),
    ('POST', '/{sid}/tracks/new'),
    ('PUT', '/{sid}/renegotiate'),
    ('PUT', '/{sid}/tracks/close'),
    ('PUT', '/{sid}/tracks/update'),
    ('GET', '/{sid}'),
    ('POST', '/{sid}/datachannels/new'),
]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_input_makes_the_sfu_fail_or_hang(world: World, data: st.DataObject) -> None:
    method, path = data.draw(st.sampled_from(ENDPOINTS))
    sid = data.draw(st.sampled_from(world.sessions) | st.text(min_size=1, max_size=40).filter(lambda s: '/' not in s))
    body = body_for(data, world.offer, world.sessions)
    headers = dict(AUTH)
    if data.draw(st.booleans()):
        headers['content-type'] = data.draw(st.sampled_from(['application/json', 'text/plain', 'x/y']))
    if data.draw(st.integers(0, 9)) == 0:
        headers['authorization'] = data.draw(st.sampled_from(['', 'Bearer', 'Bearer wrong', 'Basic abc']))
    url = BASE + path.replace('{sid}', quote(sid, safe=''))
    response: httpx.Response = world.run(world.http.request(method, url, content=body, headers=headers))
    assert response.status_code < 500, (method, url, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.json().get('errorCode'), response.text[:300]


def test_after_the_fuzzing_the_existing_call_still_flows_and_sessions_are_bounded(world: World) -> None:
    async def flowing() -> int:
        before = world.sfu.stats()['forwarded_packets']
        while world.sfu.stats()['forwarded_packets'] < before + 20:
            await asyncio.sleep(0.05)
        return int(world.sfu.stats()['forwarded_packets'])

    assert world.run(flowing()) > 0
    assert world.subscriber.pc.connectionState == 'connected'
    assert world.sfu.stats()['sessions'] <= 500
