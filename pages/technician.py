"""Technician station `/{room}/technician`: one labelled tile per enabled hospital camera (and the screen while
shared), the hospital's audio, own microphone and camera, maximise and full screen per tile.

The technician's microphone and camera switches and the maximised tile (by its label, which outlives participant ids:
a station that reloads or an app restart brings the same camera back under a new key) are remembered in this browser
for this room and come back with no click after a reload or an app restart."""

from __future__ import annotations

from nicegui import ui

from components.call import LocalTrack
from components.media_caps import MediaCaps
from components.restore import Setup
from components.stage_view import RemoteAudio
from components.testid import testid
from components.video_tile import TileView, VideoTile, grid_columns
from media.backend import MediaBackend
from pages.access_panel import install as install_access
from pages.frame import frame
from pages.in_room import RoomMedia, admit
from rooms import Kind, RoomRegistry, Source, visible_tracks

FULLSCREEN_JS = (
    "(e) => { const t = e.target.closest('.video-tile'); if (t && t.requestFullscreen) t.requestFullscreen(); }"
)
MAXIMISED = 'col-span-full order-first'


def register(registry: RoomRegistry, backend: MediaBackend, caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}/technician')
    async def technician(room: str, invite: str = '') -> None:
        admission = await admit(room, 'technician', backend, registry, invite)
        if admission is None:
            return
        title = admission.shown_title
        with frame(f'{title} · technician station', wide=True):
            media = RoomMedia.join(admission, registry=registry, backend=backend, caps=caps)
            with ui.row().classes('w-full items-center gap-3'):
                ui.icon('monitor_heart', color='orange-8').classes('text-2xl')
                ui.label(f'Technician station · {title}').classes('text-xl font-semibold')
                ui.space()
                stations = testid(ui.label().classes('text-sm text-gray-600'), 'stations')
                station_role = ui.label('· hospital station').classes('text-sm text-gray-600')
                verified = testid(ui.icon('verified', color='positive'), 'stations-verified')
                verified.tooltip('Station name verified by its invite')
                verified.set_visibility(False)
            install_access(registry, media.call, admission, stations)
            empty = testid(
                ui.label('Waiting for a hospital station to join…').classes('text-lg text-gray-600 py-16 self-center'),
                'technician-empty',
            )
            grid = testid(ui.element('div'), 'feed-grid').classes('grid gap-3 w-full mx-auto pb-20')
            audio = RemoteAudio('hospital-audio')  # the hospital's microphones
        with ui.footer().classes('bg-white/90 shadow-inner py-3'):  # always in reach, however many cameras
            with ui.row().classes('w-full justify-center gap-3'):
                mic = testid(ui.button(icon='mic').props('round'), 'toggle-mic').tooltip('Microphone on/off')
                cam = testid(ui.button(icon='videocam').props('round'), 'toggle-camera').tooltip('Camera on/off')
                leave = testid(ui.button('Leave', icon='call_end').props('color=negative'), 'leave')
        call = media.call
        tiles: dict[str, VideoTile] = {}
        remembered = media.remembered()
        # 'maximised': the tile key shown maximised; 'label': the person's choice, kept while that tile is gone.
        state: dict[str, str | None] = {'maximised': None, 'label': remembered.maximised if remembered else None}
        restoring = [True]  # until the switches are restored, the memory is not overwritten
        shown: dict[str, str] = {}  # tile key -> label, as last rendered

        def tile_with_controls(key: str, view: TileView) -> VideoTile:
            with grid:
                tile = VideoTile(key, view)
            with tile:
                with ui.row().classes('absolute top-2 right-2 gap-1'):
                    maximise = ui.button(icon='open_in_full', on_click=lambda: toggle_maximised(key))
                    testid(maximise.props('round dense flat color=white'), 'tile-maximise').tooltip(
                        'Maximise / restore'
                    )
                    full = ui.button(icon='fullscreen').props('round dense flat color=white')
                    testid(full, 'tile-fullscreen').tooltip('Full screen').on('click', js_handler=FULLSCREEN_JS)
            return tile

        def toggle_maximised(key: str) -> None:
            state['maximised'] = None if state['maximised'] == key else key
            state['label'] = shown.get(key) if state['maximised'] else None
            render()

        def remember() -> None:
            if not restoring[0]:
                media.memory.save(Setup(mic=media.on('mic'), camera=media.on('camera'), maximised=state['label']))

        def render() -> None:
            me = call.me
            if me is None:
                return
            hospitals = call.room.stations()
            stations.text = ', '.join(h.name for h in hospitals) if hospitals else ''
            station_role.set_visibility(bool(hospitals))
            members = call.room.access.members
            verified.set_visibility(
                bool(hospitals) and all((m := members.get(h.id)) is not None and m.verified for h in hospitals)
            )
            tracks = visible_tracks(me, call.room)
            wanted = {
                t.key: TileView(label=t.label, video_key=f'remote:{t.key}')
                for t in tracks
                if t.kind is Kind.VIDEO and t.source in (Source.CAMERA, Source.SCREEN)
            }
            if not hospitals:
                empty.text = 'Waiting for a hospital station to join…'
            elif not wanted:
                empty.text = f'{hospitals[0].name} has no camera switched on yet.'
            empty.set_visibility(not wanted)
            shown.clear()
            shown.update({key: view.label for key, view in wanted.items()})
            if state['maximised'] in wanted:
                state['label'] = wanted[state['maximised']].label  # follows a rename
            else:  # gone (perhaps for a moment) or not yet back: the tile with the chosen label, if any
                state['maximised'] = next((k for k, v in wanted.items() if v.label == state['label']), None)
            grid.style(replace=fit_in_view(len(wanted), maximised=state['maximised'] is not None))
            for key in [k for k in tiles if k not in wanted]:
                grid.remove(tiles.pop(key))
            for key, view in wanted.items():
                if key not in tiles:
                    tiles[key] = tile_with_controls(key, view)
                tiles[key].show(view)
                if state['maximised'] == key:
                    tiles[key].classes(add=MAXIMISED)
                else:
                    tiles[key].classes(remove=MAXIMISED)
            audio.show(me, call.room)
            remember()

        call.on_room_change = render

        async def toggle(key: str, button: ui.button, on_icon: str, off_icon: str) -> None:
            await media.toggle(key, button, on_icon, off_icon)
            remember()

        mic.on_click(lambda: toggle('mic', mic, 'mic', 'mic_off'))
        cam.on_click(lambda: toggle('camera', cam, 'videocam', 'videocam_off'))
        leave.on_click(media.leave)

        async def start() -> None:
            render()
            await media.publish(LocalTrack(key='mic', source='mic'), LocalTrack(key='camera', source='camera'))
            try:
                if remembered is not None:
                    await media.restore_switches(remembered)
            finally:
                restoring[0] = False
            media.show_track_state('mic', mic, 'mic', 'mic_off')
            media.show_track_state('camera', cam, 'videocam', 'videocam_off')
            render()

        media.when_ready(start)


def fit_in_view(count: int, *, maximised: bool) -> str:
    """Grid style that shows every camera at once without scrolling: columns by count, and a width that lets the
    rows of 16:9 tiles fit between the header and the control bar (about 220 px of the window's height)."""
    columns = grid_columns(count)
    rows = max(-(-count // columns), 1)
    style = f'grid-template-columns: repeat({columns}, minmax(0, 1fr));'
    if maximised:  # the maximised tile spans the row; the page may scroll
        return style
    return (
        style
        + f' max-width: calc((100vh - 220px - {rows - 1} * 12px) / {rows} * 16 / 9 * {columns} + {columns - 1} * 12px);'
    )
