"""Meeting room `/{room}/room`: everyone publishes camera and microphone and sees every other meeting participant."""

from __future__ import annotations

from nicegui import ui

from components.call import Call, LocalTrack
from components.media_caps import MediaCaps
from components.testid import testid
from components.video_tile import TileView, VideoTile
from media.backend import MediaBackend
from pages.frame import frame
from pages.in_room import RoomMedia, admit
from rooms import RoomRegistry, visible_participants, visible_tracks


def register(registry: RoomRegistry, backend: MediaBackend, caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}/room')
    async def meeting(room: str) -> None:
        admission = await admit(room, 'room', backend)
        if admission is None:
            return
        name = admission.name
        with frame(admission.room_name):
            media = RoomMedia.join(admission, registry=registry, backend=backend, caps=caps)
            grid = testid(ui.element('div'), 'tile-grid').classes('grid gap-3 w-full grid-cols-1 md:grid-cols-2')
            with ui.row().classes('w-full justify-center gap-3'):
                mic = testid(ui.button(icon='mic').props('round'), 'toggle-mic').tooltip('Microphone on/off')
                cam = testid(ui.button(icon='videocam').props('round'), 'toggle-camera').tooltip('Camera on/off')
                leave = testid(ui.button('Leave', icon='call_end').props('color=negative'), 'leave')
        call = media.call
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
            await media.toggle(key, button, on_icon, off_icon)
            render()

        mic.on_click(lambda: toggle('mic', mic, 'mic', 'mic_off'))
        cam.on_click(lambda: toggle('camera', cam, 'videocam', 'videocam_off'))
        leave.on_click(media.leave)

        async def start() -> None:
            render()
            await media.publish(LocalTrack(key='mic', source='mic'), LocalTrack(key='camera', source='camera'))
            render()

        media.when_ready(start)


def _on(call: Call, key: str) -> bool:
    track = call.local.get(key)
    return track is not None and track.enabled
