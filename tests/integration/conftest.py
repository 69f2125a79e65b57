"""Fixtures for the embedded SFU tests: an SFU with short timeouts and a CallsClient over ASGI or real HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU, SfuConfig

APP_ID = 'a' * 32
APP_SECRET = 'test-secret'


def make_config(**overrides: float) -> SfuConfig:
    values: dict[str, float] = {
        'media_timeout_s': 30.0,
        'session_timeout_s': 30.0,
        'empty_track_wait_s': 1.0,
        'connect_wait_s': 3.0,
    }
    values.update(overrides)
    return SfuConfig(app_id=APP_ID, app_secret=APP_SECRET, ice_hosts=['127.0.0.1'], ice_servers=[], **values)


@pytest.fixture
async def sfu() -> AsyncIterator[EmbeddedSFU]:
    server = EmbeddedSFU(make_config())
    yield server
    await server.close()


@pytest.fixture(params=['asgi', 'http'])
async def http(request: pytest.FixtureRequest, sfu: EmbeddedSFU) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client reaching the SFU in-process (ASGITransport) or over loopback HTTP (uvicorn)."""
    if request.param == 'asgi':
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu') as c:
            yield c
        return
    async with Serve(sfu) as base_url, httpx.AsyncClient(base_url=base_url) as c:
        yield c


class Serve:
    """Run the SFU's ASGI app on 127.0.0.1 with uvicorn inside the current event loop."""

    def __init__(self, sfu: EmbeddedSFU) -> None:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(sfu.asgi_app, host='127.0.0.1', port=self.port, log_level='warning', lifespan='off')
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        self.task = asyncio.ensure_future(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return f'http://127.0.0.1:{self.port}'

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task


@pytest.fixture
def client(http: httpx.AsyncClient) -> CallsClient:
    return CallsClient(http, APP_ID, APP_SECRET)
