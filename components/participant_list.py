"""The meeting's participant list: who is there, who speaks, raised hands, microphones, and a "mute" request."""

from __future__ import annotations

from nicegui import ui

from components.call import Call
from components.testid import testid
from rooms import Participant, visible_participants


class ParticipantList:
    """A side panel listing the viewer first, then everyone else by name; rebuilt on every room change."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self._shown: tuple[tuple[str, str, bool, bool, bool], ...] | None = None
        with ui.dialog() as self.mute_dialog, ui.card():
            self.mute_title = ui.label().classes('text-lg font-semibold')
            ui.label('They will need to unmute themselves to be heard again.')
            with ui.row().classes('w-full justify-end'):
                ui.button('Cancel', on_click=lambda: self.mute_dialog.submit(False)).props('flat')
                confirm = ui.button('Mute', on_click=lambda: self.mute_dialog.submit(True)).props('color=negative')
                testid(confirm, 'confirm-mute')
        self.panel = testid(ui.card(), 'participants').classes('w-full md:w-72 shrink-0 gap-2 p-3')
        with self.panel:
            with ui.row().classes('w-full items-center'):
                self.title = testid(ui.label().classes('font-semibold'), 'participants-title')
                ui.space()
                close = ui.button(icon='close', on_click=lambda: self.panel.set_visibility(False))
                close.props('flat round dense').tooltip('Hide the participant list')
            self.rows = ui.column().classes('w-full gap-1')

    def people(self) -> list[Participant]:
        """The viewer, then the others it sees, sorted by name (as the original's dialog)."""
        me = self.call.me
        if me is None:
            return []
        return [me, *sorted(visible_participants(me, self.call.room), key=lambda p: p.name.casefold())]

    def refresh(self) -> None:
        """Rebuild the rows, but only when something they show changed (renders also follow every video change)."""
        people = self.people()
        shown = tuple((p.id, p.name, p.speaking, p.raised_hand, p.mic is not None and p.mic.enabled) for p in people)
        if shown == self._shown:
            return
        self._shown = shown
        self.title.text = f'{len(people)} in the meeting'
        self.rows.clear()
        with self.rows:
            for person in people:
                self._row(person, me=person.id == self.call.participant_id)

    def _row(self, person: Participant, *, me: bool) -> None:
        mic_on = person.mic is not None and person.mic.enabled
        row = testid(ui.row(), 'participant').classes('w-full items-center gap-2 no-wrap')
        row.props(f'data-pid={person.id} data-speaking={str(person.speaking).lower()}')
        with row:
            avatar = ui.label(person.name[:1].upper()).classes(
                'w-8 h-8 rounded-full flex items-center justify-center text-white font-semibold shrink-0'
            )
            avatar.classes('bg-orange-600 ring-2 ring-orange-300' if person.speaking else 'bg-gray-500')
            name = ui.label(f'{person.name} (you)' if me else person.name).classes('grow truncate')
            testid(name, 'participant-name')
            if person.raised_hand:
                testid(ui.icon('back_hand', color='orange-8'), 'participant-hand').tooltip('Hand raised')
            speaking = testid(ui.icon('graphic_eq'), 'participant-speaking')
            speaking.classes('text-orange-600' if person.speaking else 'invisible').tooltip('Speaking')
            ui.icon('mic' if mic_on else 'mic_off', color=None if mic_on else 'grey-6').tooltip(
                'Microphone on' if mic_on else 'Microphone off'
            )
            if not me and mic_on:
                mute = ui.button(icon='volume_off', on_click=lambda p=person: self._confirm_mute(p))
                testid(mute.props('flat round dense'), 'participant-mute').tooltip(f'Mute {person.name}')

    async def _confirm_mute(self, person: Participant) -> None:
        self.mute_title.text = f'Mute {person.name}?'
        if await self.mute_dialog:
            problem = self.call.request_mute(person.id)
            if problem:
                with self.panel:  # the clicked row may have been rebuilt meanwhile
                    ui.notify(problem, type='warning')
