"""Pages for `components.call.Call` in tests: the browser's `MediaSession` as Call uses it, over an aiortc driver.

`PageSession` captures synthetic media (`AiortcDriver`), answers `open_local`/`close_local`/`set_local_enabled` like
media_client.js, and lets a test emit browser events through the same per-page gate as `MediaSession.on`
(`components.media_session.gated`), so forged or flooding events reach `Call` exactly as in the app.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from nicegui import background_tasks, core

from components.call import Call
from components.media_session import EVENT_LIMITS, gated
from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU
from rooms import Role, RoomRegistry
from rooms.limits import EventGate

from .aiortc_driver import AiortcDriver
from .conftest import APP_ID, APP_SECRET


class PageSession(AiortcDriver):
    """A page's media element: aiortc media, capture of any device, events emitted by the test."""

    def __init__(self, name: str, labels: dict[str, str] | None = None) -> None:
        super().__init__(name)
        self.gate = EventGate(limits=EVENT_LIMITS)
        self.handlers: dict[str, list[Callable[[Any], None]]] = {}
        self.labels = labels or {}  # device id -> the label the browser reports for it
        self.opened: list[str] = []  # keys captured, in order

    def on(self, name: str, handler: Any) -> PageSession:
        self.handlers.setdefault(name, []).append(gated(self.gate, time.monotonic, name, handler))
        return self

    def emit(self, name: str, args: Any) -> None:
        """The page emits `name` with `args` (anything JSON can carry)."""
        for handler in self.handlers.get(name, []):
            handler(SimpleNamespace(args=args))

    async def open_local(self, key: str, source: str, device_id: str | None = None) -> dict[str, Any]:
        self.opened.append(key)
        if key not in self.local:
            self.add_local(key, 'audio' if source == 'mic' else 'video')
        label = self.labels.get(device_id or source, f'Fake {source}')
        return {'ok': True, 'label': label, 'deviceId': device_id or f'{source}-0'}

    async def close_local(self, key: str) -> None:  # type: ignore[override]
        super().close_local(key)

    async def set_local_enabled(self, key: str, enabled: bool) -> dict[str, Any]:
        self.set_enabled(key, enabled)
        return {'ok': True}


@dataclass
class Page:
    call: Call
    session: PageSession
    watched: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def pid(self) -> str:
        return self.call.participant_id

    async def flowing(self, *keys: str, count: int = 3, timeout: float = 15.0) -> None:
        for key in keys:
            await until(lambda key=key: key in self.call.media.pulled, f'{self.call.name} pulls {key}', timeout)
            await self.session.next_frames(key, count, timeout)


async def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait (bounded) for an outcome."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f'{what}: not within {timeout} s')
        await asyncio.sleep(0.05)


class CountingClient(CallsClient):
    """Counts the SFU sessions each page's media built."""

    created = 0

    async def new_session(self, *args: Any, **kwargs: Any) -> Any:
        CountingClient.created += 1
        return await super().new_session(*args, **kwargs)


@pytest.fixture
async def client(sfu: EmbeddedSFU) -> AsyncIterator[CallsClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu') as http:
        yield CountingClient(http, APP_ID, APP_SECRET)


@pytest.fixture
async def errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Exceptions that escaped an event handler or a background task (NiceGUI's global handler), collected."""
    caught: list[BaseException] = []
    monkeypatch.setattr(core, 'loop', asyncio.get_running_loop())
    monkeypatch.setattr(core.app, 'handle_exception', caught.append)
    return caught


@pytest.fixture
async def calls(client: CallsClient, errors: list[BaseException]) -> AsyncIterator[Callable[..., Page]]:
    """A factory of `Call`s (the app's wiring, `Call.create`) in one registry; all left and closed afterwards."""
    registry = RoomRegistry()
    made: list[Page] = []

    def make(room: str, name: str, role: Role = Role.REGULAR, labels: dict[str, str] | None = None) -> Page:
        session = PageSession(name, labels)
        call = Call.create(
            registry=registry,
            room_name=room,
            role=role,
            name=name,
            session=session,  # type: ignore[arg-type]
            client=client,
        )
        page = Page(call, session)
        call.on_watching = lambda key, started: page.watched.append((key, started))
        made.append(page)
        return page

    yield make
    for page in made:
        await page.call.leave()
        await page.session.close()
    await end_background_tasks()


async def end_background_tasks() -> None:
    """Cancel what `Call`s left in NiceGUI's task set on this loop (sync loops, recoveries): a later app shutdown
    in the same process cancels every task in that set, and must not meet tasks of a closed loop."""
    loop = asyncio.get_running_loop()
    mine = {
        task
        for task in background_tasks.running_tasks
        if task.get_loop() is loop and task is not asyncio.current_task()
    }
    for task in mine:
        task.cancel()
    await asyncio.gather(*mine, return_exceptions=True)
    background_tasks.running_tasks.difference_update(mine)
