"""Hospital station `/{room}/hospital`: publishes the cameras the user adds (each its own track) and a microphone,
shows the technicians (video and audio) and, always visible, how many technicians are watching.

What the person sets up (cameras by device, their labels and sending switches, the microphone, whether the screen was
shared) is remembered in this browser for this room and comes back with no click after a reload, a lost websocket or
an app restart. A screen cannot be captured again without a click: it comes back as not shared, with a notice."""

from __future__ import annotations

from nicegui import ui

from components.call import LocalTrack
from components.camera_manager import CameraManager
from components.media_caps import MediaCaps
from components.restore import Setup
from components.testid import testid
from components.video_tile import TileView, VideoTile
from media.backend import MediaBackend
from pages.access_panel import install as install_access
from pages.frame import frame
from pages.in_room import RoomMedia, admit
from rooms import RoomRegistry, visible_participants, visible_tracks


def register(registry: RoomRegistry, backend: MediaBackend, caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}/hospital')
    async def hospital(room: str, invite: str = '') -> None:
        admission = await admit(room, 'hospital', backend, registry, invite)
        if admission is None:
            return
        title = admission.shown_title
        with frame(f'{title} · hospital station'):
            media = RoomMedia.join(admission, registry=registry, backend=backend, caps=caps)
            call = media.call
            with ui.row().classes('w-full items-center gap-3'):
                ui.icon('local_hospital', color='orange-8').classes('text-2xl')
                ui.label(f'Hospital station · {title}').classes('text-xl font-semibold')
                ui.space()
                with testid(ui.element('div'), 'watching').classes(
                    'flex items-center gap-2 px-3 py-1 rounded-full bg-orange-50 text-orange-900 font-medium'
                ):
                    ui.icon('visibility')
                    watching = testid(ui.label(), 'watching-count')
                mic = testid(ui.button(icon='mic').props('round'), 'toggle-mic').tooltip('Microphone on/off')
                share = testid(ui.button(icon='screen_share').props('round outline'), 'toggle-screen')
                share.tooltip('Share your screen with the technicians / stop sharing')
                leave = testid(ui.button('Leave', icon='call_end').props('color=negative'), 'leave')
            install_access(registry, call, admission, watching)
            cameras = CameraManager(call, media.session)
            ui.label('Technicians').classes('text-base font-semibold mt-2')
            waiting = testid(
                ui.label('Waiting for a technician to join…').classes('text-gray-600'), 'technicians-empty'
            )
            grid = testid(ui.element('div'), 'technician-grid').classes('grid gap-3 w-full grid-cols-2 md:grid-cols-3')
        tiles: dict[str, VideoTile] = {}

        def render() -> None:
            me = call.me
            if me is None:
                return
            count = call.room.technician_count()
            watching.text = f'{count} technician{"" if count == 1 else "s"} watching'
            tracks = {t.key: t for t in visible_tracks(me, call.room)}
            wanted: dict[str, TileView] = {}
            for other in visible_participants(me, call.room):
                video, audio = tracks.get(f'{other.id}:camera'), tracks.get(f'{other.id}:mic')
                wanted[other.id] = TileView(
                    label=f'{other.name} · technician',  # names are shown with the role
                    video_key=f'remote:{video.key}' if video and video.enabled else None,
                    audio_key=f'remote:{audio.key}' if audio else None,
                    muted=not (audio and audio.enabled),
                )
            waiting.set_visibility(not wanted)
            for key in [k for k in tiles if k not in wanted]:
                grid.remove(tiles.pop(key))
            for key, view in wanted.items():
                if key in tiles:
                    tiles[key].show(view)
                else:
                    with grid:
                        tiles[key] = VideoTile(key, view)
            cameras.refresh()
            media.show_screen_state(share)

        call.on_room_change = render
        remembered = media.remembered()
        restoring = True  # until the remembered setup is back, the memory is not overwritten by a half-restored one

        def remember() -> None:
            if not restoring:
                media.memory.save(Setup(mic=media.on('mic'), cameras=cameras.setup(), screen=media.on('screen')))

        cameras.on_change = remember  # every reconciliation: adds, removals, switches, labels, mic, screen

        async def restore(setup: Setup) -> None:
            if not setup.mic:
                await media.restore_switches(Setup(mic=False, camera=False))
                media.show_track_state('mic', mic, 'mic', 'mic_off')
            await cameras.restore(setup.cameras)
            if setup.screen:
                with grid:
                    ui.notify('Your screen was shared before the page reloaded. Share it again when needed.')

        mic.on_click(lambda: media.toggle('mic', mic, 'mic', 'mic_off'))
        share.on_click(lambda: media.toggle_screen(share))
        leave.on_click(media.leave)  # cameras and microphone are released before the page goes

        async def start() -> None:
            render()
            # Only the microphone is published on arrival: cameras are sent when the user adds them.
            await media.publish(LocalTrack(key='mic', source='mic'))
            await cameras.load_devices()
            nonlocal restoring
            try:
                if remembered is not None:
                    await restore(remembered)
            finally:
                restoring = False
            render()

        media.when_ready(start)
