"""What every in-room page (meeting room, hospital station, technician station) does the same way.

Admission (valid room name, a display name, the granted role), the page's media (connection banner, browser media
session, `Call`), leaving, publishing once the browser is ready, the on/off buttons of local tracks, and what keeps a
page in its room across network blips and reloads:

- Liveness: the room participant lives exactly as long as the page's NiceGUI client. While the client exists (also
  while its websocket is down, up to `ui.run(reconnect_timeout=...)`), the server heartbeats for it; when the client
  is deleted (reconnect timeout, or the page closed or reloaded: a `pagehide` beacon), the participant leaves.
- Memory: `RoomMedia.memory` remembers the person's setup for this browser and room + page (`components.restore`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from nicegui import Client, app, background_tasks, ui

from components.call import Call, LocalTrack
from components.connection_banner import ConnectionBanner
from components.media_caps import MediaCaps
from components.media_session import MediaSession
from components.quality_toast import show_quality_change
from components.restore import Memory, Setup
from media.backend import MediaBackend
from pages.frame import display_name
from pages.roles import grant_role
from rooms import Role, RoomRegistry, normalise_room_name

_calls: dict[str, Call] = {}  # NiceGUI client id -> the page's call, for the page-closed beacon
KEEPALIVE_INTERVAL = 5.0  # seconds between the server's heartbeats for a page whose NiceGUI client exists
PAGE_CLOSED_PATH = '/api/page-closed'
# The browser says "this page is going away" (tab closed, reload, navigation) so that its participant leaves at once
# instead of after the reconnect timeout. A beacon survives the page's unload; it carries NiceGUI's client id.
PAGE_CLOSED_JS = (
    "window.addEventListener('pagehide', (e) => { if (!e.persisted && window.clientId) "
    f"navigator.sendBeacon('{PAGE_CLOSED_PATH}?client_id=' + encodeURIComponent(window.clientId)); }});"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Admission:
    """Who enters which room as what, and the ICE servers their browser gets."""

    room_name: str
    page: str
    name: str
    role: Role
    ice_servers: list[dict[str, Any]]


async def admit(room: str, page: str, backend: MediaBackend) -> Admission | None:
    """Admit the visitor to `/{room}/{page}`, or redirect (bad room name → home; no name yet → the lobby)."""
    try:
        room_name = normalise_room_name(room)
    except ValueError:
        ui.navigate.to('/')
        return None
    name = display_name()
    if not name:  # a direct link: ask for a name in the lobby first
        ui.navigate.to(f'/{room_name}?next={page}')
        return None
    return Admission(
        room_name=room_name,
        page=page,
        name=name,
        role=grant_role(page),
        ice_servers=await backend.browser_ice_servers(),
    )


@dataclass(kw_only=True)
class RoomMedia:
    """The page's media: banner, browser session and `Call`; create it inside the page's frame."""

    admission: Admission
    session: MediaSession
    call: Call
    ready: asyncio.Event
    memory: Memory

    @classmethod
    def join(cls, admission: Admission, *, registry: RoomRegistry, backend: MediaBackend, caps: MediaCaps) -> RoomMedia:
        """Show the connection banner, create the browser session and join the room (left again on page close)."""
        banner = ConnectionBanner()
        session = MediaSession(caps=caps, ice_servers=admission.ice_servers)
        ready = asyncio.Event()
        session.on('ready', lambda _: ready.set())
        who = f'room={admission.room_name}: {admission.name}'
        session.on('quality', lambda event: show_quality_change(event.args, who=who))
        call = Call.create(
            registry=registry,
            room_name=admission.room_name,
            role=admission.role,
            name=admission.name,
            session=session,
            client=backend.client,
        )
        call.on_status = banner.show
        client = ui.context.client
        client.on_delete(call.leave)
        _calls[client.id] = call
        client.on_delete(lambda: _calls.pop(client.id, None))
        ui.run_javascript(PAGE_CLOSED_JS)
        background_tasks.create(keep_alive(call, client), name=f'keepalive {admission.room_name}/{call.participant_id}')
        memory = Memory(app.storage.user, admission.room_name, admission.page)
        return cls(admission=admission, session=session, call=call, ready=ready, memory=memory)

    def remembered(self) -> Setup | None:
        """What this person set up on this page in this browser before (None the first time)."""
        return self.memory.load()

    def on(self, key: str) -> bool:
        """Whether local track `key` exists and is switched on."""
        track = self.call.local.get(key)
        return track is not None and track.enabled

    async def restore_switches(self, setup: Setup) -> None:
        """Switch the microphone and own camera as the person left them (they are published switched on)."""
        for key, on in (('mic', setup.mic), ('camera', setup.camera)):
            track = self.call.local.get(key)
            if track is not None and track.enabled != on:
                problem = await self.call.set_enabled(key, on)
                if problem:
                    ui.notify(problem, type='warning')

    async def leave(self) -> None:
        """Leave the room, release camera and microphone, and go back to the lobby (the setup stays remembered: the
        next visit to this page starts with it)."""
        await self.call.leave()
        await self.session.close()
        ui.navigate.to(f'/{self.admission.room_name}')

    def when_ready(self, start: Callable[[], Awaitable[None]]) -> None:
        """Run `start` once the browser's media client is mounted (`run_method` needs it)."""

        async def run() -> None:
            await self.ready.wait()
            await start()

        background_tasks.create(run(), name=f'{self.admission.role} {self.admission.room_name}')

    async def publish(self, *tracks: LocalTrack) -> None:
        """Capture and publish `tracks` together; a failure stays on screen until dismissed."""
        for problem in await self.call.publish_all(list(tracks)):
            ui.notify(problem, type='negative', timeout=0, close_button=True)

    async def toggle(self, key: str, button: ui.button, on_icon: str, off_icon: str) -> None:
        """Switch local track `key` on or off and show its state on `button`."""
        track = self.call.local.get(key)
        if track is None:
            return
        problem = await self.call.set_enabled(key, not track.enabled)
        if problem:
            ui.notify(problem, type='warning')
        self.show_track_state(key, button, on_icon, off_icon)

    def show_track_state(self, key: str, button: ui.button, on_icon: str, off_icon: str) -> None:
        """Show on `button` whether local track `key` is on (also after someone else muted it)."""
        track = self.call.local.get(key)
        on = track is not None and track.enabled
        button.props(f'icon={on_icon if on else off_icon}')
        button.props(f'color={"primary" if on else "grey-7"}')

    async def toggle_screen(self, button: ui.button) -> None:
        """Start, stop or restart sharing the screen, and show the state on `button`."""
        call = self.call
        button.disable()
        try:
            track = call.local.get('screen')
            if track is None:
                problem = await call.publish(LocalTrack(key='screen', source='screen'))
            else:
                problem = await call.set_enabled('screen', not track.enabled)
        finally:
            button.enable()
        if problem:
            ui.notify(problem, type='warning')
        self.show_screen_state(button)

    def show_screen_state(self, button: ui.button) -> None:
        """Show on `button` whether the screen is shared (also after the browser's own "Stop sharing")."""
        screen = self.call.local.get('screen')
        sharing = screen is not None and screen.enabled
        button.props(f'icon={"stop_screen_share" if sharing else "screen_share"}')
        if sharing:
            button.props('color=negative', remove='outline')
        else:
            button.props('outline color=primary')


async def keep_alive(call: Call, client: Client) -> None:
    """Heartbeat for `call` while its NiceGUI client exists, so that a page whose websocket is down for less than the
    reconnect timeout keeps its place; the client's deletion makes the call leave (`RoomMedia.join`)."""
    while not call.left and not client.is_deleted:
        call.heartbeat()
        await asyncio.sleep(KEEPALIVE_INTERVAL)


def register_page_closed() -> None:
    """Add the route the `pagehide` beacon reaches: that page's call leaves its room now (NiceGUI deletes the client
    itself once its websocket stays closed for the reconnect timeout)."""

    @app.post(PAGE_CLOSED_PATH)
    def page_closed(request: Request, client_id: str = '') -> Response:
        call = _calls.get(client_id)
        client = Client.instances.get(client_id)
        # Only the browser that owns the page may end it: the same NiceGUI session (cookie) as the page's request.
        if call is not None and client is not None and _session_id(client.request) == _session_id(request):
            background_tasks.create(call.leave(), name='page closed')
        return Response(status_code=204)


def _session_id(request: Any) -> str | None:
    try:
        return str(request.session.get('id')) if request is not None else None
    except (AssertionError, AttributeError):  # no session middleware (no storage secret)
        return None
