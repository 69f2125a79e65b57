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
from components.stage_view import RemoteAudio, StageView
from components.testid import testid
from components.video_tile import TileView
from components.viewport import Viewport
from media.backend import MediaBackend
from pages.access_panel import install as install_access
from pages.frame import frame
from pages.in_room import RoomMedia, admit
from rooms import Participant, RoomRegistry, Source, ViewerStage, tile_key, visible_participants, visible_tracks


@dataclass(kw_only=True)
class Seen:
    """Who this page last showed, so that arrivals, departures and raised hands become toasts."""

    people: dict[str, str] = field(default_factory=dict)
    hands: set[str] = field(default_factory=set)
    rendered: bool = False

    def announce(self, others: list[Participant], anchor: ui.element) -> None:
        """Toasts for arrivals, departures and raised hands (not on the first render)."""
        now = {p.id: p.name for p in others}
        hands = {p.id for p in others if p.raised_hand}
        if self.rendered:
            with anchor:  # room changes arrive in the context of whoever made them: show the toast on this page
                for pid in now.keys() - self.people.keys():
                    ui.notify(f'{now[pid]} joined', icon='login')
                for pid in self.people.keys() - now.keys():
                    ui.notify(f'{self.people[pid]} left', icon='logout')
                for pid in hands - self.hands:
                    ui.notify(f'{now[pid]} raised their hand', icon='back_hand', type='info')
        self.people, self.hands, self.rendered = now, hands, True


def meeting_views(call: Call, me: Participant, others: list[Participant], name: str) -> dict[str, TileView]:
    """Every tile the meeting could show this participant: their own camera (and screen), and each other
    participant's camera tile (with their microphone state) and screen."""
    result = {
        tile_key(me.id, Source.CAMERA): TileView(
            label=f'{name} (you)',
            video_key='local:camera' if _on(call, 'camera') else None,
            muted=not _on(call, 'mic'),
            mirrored=True,
            speaking=me.speaking,
            hand=me.raised_hand,
        )
    }
    if me.sharing_screen:
        result[tile_key(me.id, Source.SCREEN)] = TileView(label='Your screen', video_key='local:screen', fit='contain')
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
                view = StageView(on_pin=lambda key: toggle_pin(key))
                people = ParticipantList(call)
                people.panel.set_visibility(False)
            audio = RemoteAudio('participant-audio')
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

        def render() -> None:
            me = call.me
            if me is None:
                return
            others = visible_participants(me, call.room)
            seen.announce(others, view.grid)
            before = set(stage.roster)
            wanted = meeting_views(call, me, others, name)
            for key, tile in wanted.items():
                if tile.label in pending_pins:
                    pending_pins.discard(tile.label)
                    stage.pinned.add(key)
            roster = [key for key in stage.update(me, call.room) if key in wanted]
            if set(roster) != before or call.pull_filter is None:
                on_stage = frozenset(roster)  # video is pulled for the stage only; everyone is heard
                call.pull_filter = lambda key: key.endswith(f':{Source.MIC}') or key in on_stage
                call.refresh_pulls()
            view.show(roster, wanted, stage.pinned, stage.width)
            hidden = len(others) + 1 - sum(1 for key in roster if key.endswith(f':{Source.CAMERA}'))
            hidden_note.text = f'{hidden} more not on stage · open Participants' if hidden > 0 else ''
            audio.show(me, call.room)
            people.refresh()
            media.show_track_state('mic', mic, 'mic', 'mic_off')
            media.show_screen_state(share)
            hand.props(remove='outline unelevated')
            hand.props(
                f'color={"orange" if me.raised_hand else "primary"} {"unelevated" if me.raised_hand else "outline"}'
            )
            people_button.text = str(len(others) + 1)
            shown.clear()
            shown.update({key: tile.label for key, tile in wanted.items()})
            remember()

        def resized(width: float) -> None:
            stage.width = width
            render()

        with audio.box:
            Viewport(resized)
        call.on_room_change = render

        def muted_by(asker: str) -> None:
            with view.grid:
                ui.notify(f'{asker} muted your microphone. Unmute it when you want to speak.', icon='mic_off')
            render()

        call.on_muted = muted_by

        async def toggle(key: str, button: ui.button, on_icon: str, off_icon: str) -> None:
            await media.toggle(key, button, on_icon, off_icon)
            render()

        async def toggle_screen() -> None:
            await media.toggle_screen(share)
            render()

        mic.on_click(lambda: toggle('mic', mic, 'mic', 'mic_off'))
        cam.on_click(lambda: toggle('camera', cam, 'videocam', 'videocam_off'))
        share.on_click(toggle_screen)
        hand.on_click(lambda: call.raise_hand(not bool(call.me and call.me.raised_hand)))
        people_button.on_click(lambda: people.panel.set_visibility(not people.panel.visible))
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


def _on(call: Call, key: str) -> bool:
    track = call.local.get(key)
    return track is not None and track.enabled
