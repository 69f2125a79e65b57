"""Meeting room `/{room}/room`: an active-speaker stage of camera and screen tiles, pinning, raised hands, screen
share, a participant list with speaking indicators and mute requests.

The participant's microphone and camera switches and pins (by tile label: participant ids change when people come
back) are remembered in this browser for this room and come back with no click after a reload or an app restart."""

from __future__ import annotations

from dataclasses import dataclass, field

from nicegui import ui

from components.call import Call, LocalTrack
from components.media_caps import MediaCaps
from components.participant_list import ParticipantList
from components.restore import Setup
from components.testid import testid
from components.video_tile import TileView, VideoTile, grid_columns
from components.viewport import Viewport
from media.backend import MediaBackend
from pages.access_panel import install as install_access
from pages.frame import frame
from pages.in_room import RoomMedia, admit
from rooms import Participant, RoomRegistry, Source, ViewerStage, tile_key, visible_participants, visible_tracks

SIDE_BY_SIDE_PX = 900  # from this window width, the unpinned tiles form a column beside the pinned ones
NARROW_PX = 600


@dataclass(kw_only=True)
class Seen:
    """Who this page last showed, so that arrivals, departures and raised hands become toasts."""

    people: dict[str, str] = field(default_factory=dict)
    hands: set[str] = field(default_factory=set)
    rendered: bool = False


def register(registry: RoomRegistry, backend: MediaBackend, caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}/room')
    async def meeting(room: str, invite: str = '') -> None:
        admission = await admit(room, 'room', backend, registry, invite)
        if admission is None:
            return
        name = admission.name
        stage = ViewerStage()
        seen = Seen()
        with frame(admission.shown_title, wide=True):
            media = RoomMedia.join(admission, registry=registry, backend=backend, caps=caps)
            call = media.call
            with ui.row().classes('w-full items-center gap-3'):
                ui.icon('groups', color='orange-8').classes('text-2xl')
                ui.label(f'Meeting · {admission.shown_title}').classes('text-xl font-semibold')
                ui.space()
                hidden_note = testid(ui.label().classes('text-sm text-gray-600'), 'off-stage')
            install_access(registry, call, admission, hidden_note)
            with ui.element('div').classes('w-full flex flex-col md:flex-row gap-3 items-start pb-20'):
                stage_box = testid(ui.element('div'), 'stage').classes('grow min-w-0 w-full')
                with stage_box:
                    pinned_grid = testid(ui.element('div'), 'pinned-grid')
                    grid = testid(ui.element('div'), 'tile-grid')
                people = ParticipantList(call)
                people.panel.set_visibility(False)
            audio_box = ui.element('div').classes('hidden')
        with ui.footer().classes('bg-white/90 shadow-inner py-3'):
            with ui.row().classes('w-full justify-center gap-3'):
                mic = testid(ui.button(icon='mic').props('round'), 'toggle-mic').tooltip('Microphone on/off')
                cam = testid(ui.button(icon='videocam').props('round'), 'toggle-camera').tooltip('Camera on/off')
                share = testid(ui.button(icon='screen_share').props('round outline'), 'toggle-screen')
                share.tooltip('Share your screen / stop sharing')
                hand = testid(ui.button(icon='back_hand').props('round outline'), 'toggle-hand')
                hand.tooltip('Raise / lower your hand')
                people_button = testid(ui.button(icon='group').props('outline rounded'), 'toggle-participants')
                people_button.tooltip('Participants')
                leave = testid(ui.button('Leave', icon='call_end').props('color=negative'), 'leave')
        tiles: dict[str, VideoTile] = {}
        pins: dict[str, ui.button] = {}
        audios: dict[str, VideoTile] = {}
        remembered = media.remembered()
        # Remembered pins (labels) not matched to a tile yet: pinned when a tile with that label shows up.
        pending_pins = set(remembered.pins) if remembered else set()
        restoring = [True]  # until the switches are restored, the memory is not overwritten
        shown: dict[str, str] = {}  # tile key -> label, as last rendered

        def toggle_pin(key: str) -> None:
            stage.toggle_pin(key)
            pending_pins.clear()  # the person chose
            render()

        def remember() -> None:
            if restoring[0]:
                return
            pinned = sorted({shown[k] for k in stage.pinned if k in shown} | pending_pins)
            media.memory.save(Setup(mic=_on(call, 'mic'), camera=_on(call, 'camera'), pins=tuple(pinned)))

        def new_tile(key: str, view: TileView) -> VideoTile:
            with grid:
                tile = VideoTile(key, view)
            with tile:
                pin = ui.button(icon='push_pin', on_click=lambda: toggle_pin(key))
                pins[key] = testid(
                    pin.props('round dense flat color=white').classes('absolute top-2 right-2'), 'tile-pin'
                )
                pin.tooltip('Pin / unpin this tile')
            return tile

        def views(me: Participant, others: list[Participant]) -> dict[str, TileView]:
            mic_on, cam_on = _on(call, 'mic'), _on(call, 'camera')
            result = {
                tile_key(me.id, Source.CAMERA): TileView(
                    label=f'{name} (you)',
                    video_key='local:camera' if cam_on else None,
                    muted=not mic_on,
                    mirrored=True,
                    speaking=me.speaking,
                    hand=me.raised_hand,
                )
            }
            if me.sharing_screen:
                result[tile_key(me.id, Source.SCREEN)] = TileView(
                    label='Your screen', video_key='local:screen', fit='contain'
                )
            tracks = {t.key: t for t in visible_tracks(me, call.room)}
            for other in others:
                video = tracks.get(tile_key(other.id, Source.CAMERA))
                audio = tracks.get(tile_key(other.id, Source.MIC))
                result[tile_key(other.id, Source.CAMERA)] = TileView(
                    label=other.name,
                    video_key=f'remote:{video.key}' if video and video.enabled else None,
                    muted=not (audio and audio.enabled),
                    speaking=other.speaking,
                    hand=other.raised_hand,
                )
                screen = tracks.get(tile_key(other.id, Source.SCREEN))
                if screen is not None:
                    result[screen.key] = TileView(label=screen.label, video_key=f'remote:{screen.key}', fit='contain')
            return result

        def announce(me: Participant, others: list[Participant]) -> None:
            """Toasts for arrivals, departures and raised hands (not on the first render)."""
            now = {p.id: p.name for p in others}
            hands = {p.id for p in others if p.raised_hand}
            if seen.rendered:
                notify_here(now, hands)
            seen.people, seen.hands, seen.rendered = now, hands, True

        def notify_here(now: dict[str, str], hands: set[str]) -> None:
            with grid:  # room changes arrive in the context of whoever made them: show the toast on this page
                for pid in now.keys() - seen.people.keys():
                    ui.notify(f'{now[pid]} joined', icon='login')
                for pid in seen.people.keys() - now.keys():
                    ui.notify(f'{seen.people[pid]} left', icon='logout')
                for pid in hands - seen.hands:
                    ui.notify(f'{now[pid]} raised their hand', icon='back_hand', type='info')

        def render() -> None:
            me = call.me
            if me is None:
                return
            others = visible_participants(me, call.room)
            announce(me, others)
            before = set(stage.roster)
            wanted = views(me, others)
            for key, view in wanted.items():
                if view.label in pending_pins:
                    pending_pins.discard(view.label)
                    stage.pinned.add(key)
            roster = [key for key in stage.update(me, call.room) if key in wanted]
            if set(roster) != before or call.pull_filter is None:
                on_stage = frozenset(roster)  # video is pulled for the stage only; everyone is heard
                call.pull_filter = lambda key: key.endswith(f':{Source.MIC}') or key in on_stage
                call.refresh_pulls()
            for key in [k for k in tiles if k not in roster]:
                tiles.pop(key).delete()
                pins.pop(key, None)
            pinned = [key for key in roster if key in stage.pinned]
            loose = [key for key in roster if key not in stage.pinned]
            for box, keys in ((pinned_grid, pinned), (grid, loose)):
                for index, key in enumerate(keys):
                    if key not in tiles:
                        tiles[key] = new_tile(key, wanted[key])
                    tiles[key].show(wanted[key])
                    children = box.default_slot.children
                    if index >= len(children) or children[index] is not tiles[key]:
                        tiles[key].move(box, target_index=index)
                    pins[key].props(f'color={"orange" if key in stage.pinned else "white"}')
            _layout(stage_box, pinned_grid, grid, len(pinned), len(loose), stage.width)
            hidden = len(others) + 1 - sum(1 for key in roster if key.endswith(f':{Source.CAMERA}'))
            hidden_note.text = f'{hidden} more not on stage · open Participants' if hidden > 0 else ''
            render_audio(me)
            people.refresh()
            media.show_track_state('mic', mic, 'mic', 'mic_off')
            media.show_screen_state(share)
            hand.props(remove='outline unelevated')
            hand.props(
                f'color={"orange" if me.raised_hand else "primary"} {"unelevated" if me.raised_hand else "outline"}'
            )
            people_button.text = str(len(others) + 1)
            shown.clear()
            shown.update({key: view.label for key, view in wanted.items()})
            remember()

        def render_audio(me: Participant) -> None:
            sounds = {
                t.key: TileView(label=t.label, audio_key=f'remote:{t.key}', muted=not t.enabled)
                for t in visible_tracks(me, call.room)
                if t.source is Source.MIC
            }
            for key in [k for k in audios if k not in sounds]:
                audios.pop(key).delete()
            for key, view in sounds.items():
                if key in audios:
                    audios[key].show(view)
                else:
                    with audio_box:
                        audios[key] = testid(VideoTile(key, view), 'participant-audio')

        def resized(width: float) -> None:
            stage.width = width
            render()

        with audio_box:
            Viewport(resized)
        call.on_room_change = render

        def muted_by(asker: str) -> None:
            with grid:
                ui.notify(f'{asker} muted your microphone. Unmute it when you want to speak.', icon='mic_off')
            render()

        call.on_muted = muted_by

        async def toggle(key: str, button: ui.button, on_icon: str, off_icon: str) -> None:
            await media.toggle(key, button, on_icon, off_icon)
            render()

        async def toggle_screen() -> None:
            await media.toggle_screen(share)
            render()

        def toggle_people() -> None:
            people.panel.set_visibility(not people.panel.visible)

        mic.on_click(lambda: toggle('mic', mic, 'mic', 'mic_off'))
        cam.on_click(lambda: toggle('camera', cam, 'videocam', 'videocam_off'))
        share.on_click(toggle_screen)
        hand.on_click(lambda: call.raise_hand(not bool(call.me and call.me.raised_hand)))
        people_button.on_click(toggle_people)
        leave.on_click(media.leave)

        async def start() -> None:
            render()
            await media.publish(LocalTrack(key='mic', source='mic'), LocalTrack(key='camera', source='camera'))
            try:
                if remembered is not None:
                    await media.restore_switches(remembered)
            finally:
                restoring[0] = False
            media.show_track_state('camera', cam, 'videocam', 'videocam_off')
            render()

        media.when_ready(start)


def _layout(
    stage_box: ui.element, pinned_grid: ui.element, grid: ui.element, pinned: int, loose: int, width: float
) -> None:
    """Pinned tiles large, the rest beside them (a column) on wide windows or below them on narrow ones."""
    side_by_side = pinned > 0 and loose > 0 and width >= SIDE_BY_SIDE_PX
    stage_box.style(replace=f'display: flex; gap: 12px; flex-direction: {"row" if side_by_side else "column"}')
    pinned_grid.set_visibility(pinned > 0)
    pinned_grid.style(replace=_grid(_columns(pinned, width), 'flex: 3 1 0; min-width: 0'))
    if side_by_side:
        grid.style(replace=_grid(1, 'flex: 1 1 0; min-width: 0; align-content: start'))
    else:
        grid.style(replace=_grid(_columns(loose, width), ''))


def _grid(columns: int, extra: str) -> str:
    return f'display: grid; gap: 12px; grid-template-columns: repeat({columns}, minmax(0, 1fr)); {extra}'


def _columns(count: int, width: float) -> int:
    """One column on a narrow window, else by count (the stage holds at most 9)."""
    return 1 if width < NARROW_PX else grid_columns(count)


def _on(call: Call, key: str) -> bool:
    track = call.local.get(key)
    return track is not None and track.enabled
