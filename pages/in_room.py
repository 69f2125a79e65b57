"""What every in-room page (meeting room, hospital station, technician station) does the same way.

Admission (valid room name, a display name, the granted role), the page's media (connection banner, browser media
session, `Call`), leaving, publishing once the browser is ready, and the on/off buttons of local tracks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nicegui import background_tasks, ui

from components.call import Call, LocalTrack
from components.connection_banner import ConnectionBanner
from components.media_caps import MediaCaps
from components.media_session import MediaSession
from components.quality_toast import show_quality_change
from media.backend import MediaBackend
from pages.frame import display_name
from pages.roles import grant_role
from rooms import Role, RoomRegistry, normalise_room_name


@dataclass(frozen=True, kw_only=True, slots=True)
class Admission:
    """Who enters which room as what, and the ICE servers their browser gets."""

    room_name: str
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
        room_name=room_name, name=name, role=grant_role(page), ice_servers=await backend.browser_ice_servers()
    )


@dataclass(kw_only=True)
class RoomMedia:
    """The page's media: banner, browser session and `Call`; create it inside the page's frame."""

    admission: Admission
    session: MediaSession
    call: Call
    ready: asyncio.Event

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
        ui.context.client.on_delete(call.leave)
        return cls(admission=admission, session=session, call=call, ready=ready)

    async def leave(self) -> None:
        """Leave the room, release camera and microphone, and go back to the lobby."""
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
