"""Lobby `/{room}`: who you are, a live self-preview and device choice before entering the room."""

from __future__ import annotations

from nicegui import ui

from components.device_preview import DevicePanel
from components.media_caps import MediaCaps
from components.testid import testid
from pages.frame import display_name, frame, set_display_name
from rooms import normalise_room_name


def register(caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}')
    def lobby(room: str) -> None:
        try:
            room_name = normalise_room_name(room)
        except ValueError as problem:
            with frame('Room not found'):
                testid(ui.label(f'"{room}" is not a valid room name: {problem}'), 'room-invalid')
                ui.link('Back to the start page', '/')
            return
        if room_name != room:
            ui.navigate.to(f'/{room_name}')
            return
        with frame(room_name):
            with ui.row().classes('w-full items-center'):
                testid(ui.label(room_name).classes('text-2xl font-semibold'), 'room-title')
                ui.button(icon='content_copy', on_click=lambda: copy_link(room_name)).props('flat round').tooltip(
                    'Copy the link to this room'
                )
            with ui.row().classes('w-full gap-6 items-start'):
                with ui.column().classes('w-full md:w-7/12'):
                    DevicePanel(caps)
                with ui.column().classes('grow gap-3'):
                    name = testid(ui.input('Your name', value=display_name()).classes('w-full'), 'display-name')
                    name_error = testid(ui.label().classes('text-red-700'), 'name-error')

                    def save_name() -> None:
                        name_error.text = set_display_name(name.value or '') or ''

                    name.on('blur', save_name)
                    name.on('keydown.enter', save_name)

                    def enter(page: str) -> None:
                        save_name()
                        if not name_error.text:
                            ui.navigate.to(f'/{room_name}/{page}')

                    hospital = ui.button(
                        'Join as hospital station', icon='local_hospital', on_click=lambda: enter('hospital')
                    )
                    testid(hospital.classes('w-full'), 'join-hospital')
                    technician = ui.button(
                        'Join as technician', icon='monitor_heart', on_click=lambda: enter('technician')
                    )
                    testid(technician.classes('w-full'), 'join-technician')
                    meeting = ui.button('Join meeting', icon='groups', on_click=lambda: enter('room'))
                    testid(meeting.props('outline').classes('w-full'), 'join-meeting')


def copy_link(room_name: str) -> None:
    ui.run_javascript(f'navigator.clipboard.writeText(location.origin + "/{room_name}")')
    ui.notify('Link copied')
