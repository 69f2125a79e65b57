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
from pages.access import browser_id, client_address, invite_only, record, refusal, take_invite, ticket
from pages.frame import display_name
from pages.roles import grant_role
from rooms import Role, RoomRegistry, normalise_room_name, visible_tracks
from rooms.access import Entry, Member, Pass, RoomAccess, unique_name

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
    """Who enters which room as what, and the ICE servers their browser gets.

    `pass_` is what got them in (with `ROOM_ACCESS=open`: the page's role and no grant); `title` is the readable
    room name to show; `verified` marks a name fixed by the grant (a station's)."""

    room_name: str
    page: str
    name: str
    role: Role
    ice_servers: list[dict[str, Any]]
    pass_: Pass | None = None
    title: str = ''
    verified: bool = False

    @property
    def admin(self) -> bool:
        """Whether this page moderates the room (the host)."""
        return self.pass_ is not None and self.pass_.admin

    @property
    def shown_title(self) -> str:
        return self.title or self.room_name


async def admit(
    room: str, page: str, backend: MediaBackend, registry: RoomRegistry | None = None, invite: str = ''
) -> Admission | None:
    """Admit the visitor to `/{room}/{page}`, or redirect (bad room name → home; no name yet, or not let in yet → the
    lobby) or refuse (an invite that is forged, expired, for another room or for another role's page).

    With `ROOM_ACCESS=invite` the role comes from the verified grant this browser keeps (or from an admission from
    the waiting room), never from the page's address: a page this browser has no pass for leads to the lobby."""
    try:
        room_name = normalise_room_name(room)
    except ValueError:
        ui.navigate.to('/')
        return None
    if not invite_only() or registry is None:
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
            pass_=Pass(browser=browser_id(), role=grant_role(page)),
        )
    if invite:  # the invite link itself: verify it, keep the grant in this browser, and go to the door (the lobby:
        # name, devices, and the way in for this grant), which also takes the token out of the address bar
        problem = take_invite(room_name, invite, page)
        if problem is not None:
            refusal(problem)
        else:
            ui.navigate.to(f'/{room_name}?next={page}')
        return None
    room_state = registry.get(room_name)
    found = ticket(room_name, room_state, page)
    if found is None or not found.name:  # no pass for this page, or no name yet: the lobby (the door)
        ui.navigate.to(f'/{room_name}?next={page}')
        return None
    access = room_state.access if room_state is not None else RoomAccess()
    present = room_state.present_browsers() if room_state is not None else []
    entry = access.entry(found.pass_, present)
    if entry is Entry.FULL:
        refusal('The room is full. Try again later.')
        return None
    if entry is not Entry.ENTER:
        ui.navigate.to(f'/{room_name}?next={page}')
        return None
    title = (found.grant.title if found.grant is not None else None) or (room_state.title if room_state else '')
    return Admission(
        room_name=room_name,
        page=page,
        name=found.name,
        role=found.role,
        ice_servers=await backend.browser_ice_servers(),
        pass_=found.pass_,
        title=title or '',
        verified=found.verified,
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
        existing = registry.get(admission.room_name)
        # Names are unique within a room (a reload of this browser's own page is not a rival: it is leaving).
        name = admission.name
        if existing is not None:
            rivals = {pid for pid, m in existing.access.members.items() if m.browser == browser_id()}
            name = unique_name(name, (p.name for p in existing.participants.values() if p.id not in rivals))
        call = Call.create(
            registry=registry,
            room_name=admission.room_name,
            role=admission.role,
            name=name,
            session=session,
            client=backend.client,
        )
        pass_ = admission.pass_ or Pass(browser=browser_id(), role=admission.role)
        call.room.entered(
            call.participant_id,
            Member(browser=pass_.browser, grant=pass_.grant, admin=pass_.admin, verified=admission.verified),
        )
        if admission.title and not call.room.title:
            call.room.title = admission.title
        address = client_address()
        record(
            'joined',
            room=admission.room_name,
            actor=name,
            client=address,
            details={'role': str(admission.role), 'page': admission.page, 'invite': pass_.grant or None},
        )
        watch_audit(call, admission.room_name, name, address)
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


def watch_audit(call: Call, room_name: str, actor: str, address: str | None) -> None:
    """Record every camera (or screen) this page started and stopped receiving: who saw which camera, when."""
    labels: dict[str, str] = {}

    def watching(key: str, started: bool) -> None:
        me = call.me
        if started or key not in labels:
            label = next((t.label for t in visible_tracks(me, call.room) if t.key == key), None) if me else None
            labels[key] = label or labels.get(key) or key
        label = labels[key] if started else labels.pop(key, key)
        record(
            'watch_started' if started else 'watch_stopped',
            room=room_name,
            actor=actor,
            subject=label,
            client=address,
            details={'tile': key},
        )

    if hasattr(call, 'on_watching'):
        call.on_watching = watching


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
