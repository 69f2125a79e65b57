"""Meeting room `/{room}/room`: everyone publishes camera and microphone and sees every other meeting participant."""

from __future__ import annotations

import asyncio

from nicegui import background_tasks, ui

from components.call import Call, LocalTrack
from components.connection_banner import ConnectionBanner
from components.media_caps import MediaCaps
from components.media_session import MediaSession
from components.testid import testid
from components.video_tile import TileView, VideoTile
from media.backend import MediaBackend
from pages.frame import display_name, frame
from pages.roles import grant_role
from rooms import RoomRegistry, normalise_room_name, visible_participants, visible_tracks


def register(registry: RoomRegistry, backend: MediaBackend, caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}/room')
    async def meeting(room: str) -> None:
        try:
            room_name = normalise_room_name(room)
        except ValueError:
            ui.navigate.to('/')
            return
        name = display_name()
        if not name:  # a direct link: ask for a name in the lobby first
            ui.navigate.to(f'/{room_name}?next=room')
            return
        role = grant_role('room')
        ice_servers = await backend.browser_ice_servers()
        with frame(room_name):
            banner = ConnectionBanner()
            session = MediaSession(caps=caps, ice_servers=ice_servers)
            ready = asyncio.Event()
            session.on('ready', lambda _: ready.set())
            grid = testid(ui.element('div'), 'tile-grid').classes('grid gap-3 w-full grid-cols-1 md:grid-cols-2')
            with ui.row().classes('w-full justify-center gap-3'):
                mic = testid(ui.button(icon='mic').props('round'), 'toggle-mic').tooltip('Microphone on/off')
                cam = testid(ui.button(icon='videocam').props('round'), 'toggle-camera').tooltip('Camera on/off')
                leave = testid(ui.button('Leave', icon='call_end').props('color=negative'), 'leave')
        call = Call.create(
            registry=registry, room_name=room_name, role=role, name=name, session=session, client=backend.client
        )
        call.on_status = banner.show
        tiles: dict[str, VideoTile] = {}

        def render() -> None:
            me = call.me
            if me is None:
                return
            wanted = {
                'self': TileView(
                    label=f'{name} (you)',
                    video_key='local:camera' if _on(call, 'camera') else None,
                    muted=not _on(call, 'mic'),
                    mirrored=True,
                )
            }
            tracks = {t.key: t for t in visible_tracks(me, call.room)}
            for other in visible_participants(me, call.room):
                video, audio = tracks.get(f'{other.id}:camera'), tracks.get(f'{other.id}:mic')
                wanted[other.id] = TileView(
                    label=other.name,
                    video_key=f'remote:{video.key}' if video and video.enabled else None,
                    audio_key=f'remote:{audio.key}' if audio else None,
                    muted=not (audio and audio.enabled),
                )
            for key in [k for k in tiles if k not in wanted]:
                grid.remove(tiles.pop(key))
            for key, view in wanted.items():
                if key in tiles:
                    tiles[key].show(view)
                else:
                    with grid:
                        tiles[key] = VideoTile(key, view)

        call.on_room_change = render

        async def toggle(key: str, button: ui.button, on_icon: str, off_icon: str) -> None:
            track = call.local.get(key)
            if track is None:
                return
            problem = await call.set_enabled(key, not track.enabled)
            if problem:
                ui.notify(problem, type='warning')
            button.props(f'icon={on_icon if call.local[key].enabled else off_icon}')
            button.props(remove='color' if call.local[key].enabled else None)
            if not call.local[key].enabled:
                button.props('color=grey-7')
            render()

        async def leave_room() -> None:
            await call.leave()
            ui.navigate.to(f'/{room_name}')

        mic.on_click(lambda: toggle('mic', mic, 'mic', 'mic_off'))
        cam.on_click(lambda: toggle('camera', cam, 'videocam', 'videocam_off'))
        leave.on_click(leave_room)
        ui.context.client.on_delete(call.leave)

        async def start() -> None:
            await ready.wait()
            render()
            for track in (LocalTrack(key='mic', source='mic'), LocalTrack(key='camera', source='camera')):
                problem = await call.publish(track)
                if problem:
                    ui.notify(problem, type='negative', timeout=0, close_button=True)
            render()

        background_tasks.create(start(), name=f'join {room_name}')


def _on(call: Call, key: str) -> bool:
    track = call.local.get(key)
    return track is not None and track.enabled
