"""Lobby `/{room}`: who you are, who is already in the room, a live self-preview and device choice, and the three
ways in. A direct link to an in-room page without a display name lands here as `/{room}?next=<page>`."""

from __future__ import annotations

from nicegui import ui

from components.device_preview import DevicePanel
from components.media_caps import MediaCaps
from components.room_roster import RoomRoster
from components.testid import testid
from pages.frame import display_name, frame, set_display_name
from pages.roles import PAGE_ROLES
from rooms import RoomRegistry, normalise_room_name

WAYS_IN = {'hospital': 'hospital station', 'technician': 'technician', 'room': 'meeting participant'}


def register(registry: RoomRegistry, caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}')
    def lobby(room: str, next: str = '') -> None:
        try:
            room_name = normalise_room_name(room)
        except ValueError as problem:
            with frame('Room not found'):
                testid(ui.label(f'"{room}" is not a valid room name: {problem}'), 'room-invalid')
                ui.link('Back to the start page', '/')
            return
        target = next if next in PAGE_ROLES else None  # anything else is ignored, never followed
        if room_name != room:
            ui.navigate.to(f'/{room_name}' + (f'?next={target}' if target else ''))
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
                    if target:
                        hint = 'Enter your name to join' if not display_name() else 'You are about to join'
                        testid(ui.label(f'{hint} as {WAYS_IN[target]}.'), 'next-hint').classes(
                            'w-full px-3 py-2 rounded bg-orange-50 text-orange-900 font-medium'
                        )
                    name = testid(ui.input('Your name', value=display_name()).classes('w-full'), 'display-name')
                    name_error = testid(ui.label().classes('text-red-700'), 'name-error')

                    def save_name() -> None:
                        name_error.text = set_display_name(name.value or '') or ''

                    def enter(page: str) -> None:
                        save_name()
                        if not name_error.text:
                            ui.navigate.to(f'/{room_name}/{page}')

                    name.on('blur', save_name)
                    # With a page to go on to, Enter in the name field continues there; otherwise it saves the name.
                    name.on('keydown.enter', (lambda: enter(target)) if target else save_name)
                    buttons = {
                        'hospital': ui.button('Join as hospital station', icon='local_hospital'),
                        'technician': ui.button('Join as technician', icon='monitor_heart'),
                        'room': ui.button('Join meeting', icon='groups'),
                    }
                    for page, button in buttons.items():
                        button.on_click(lambda page=page: enter(page))
                        button.classes('w-full')
                        if target and page != target:
                            button.props('outline')  # the page the visitor asked for stands out
                    if not target:
                        buttons['room'].props('outline')
                    testid(buttons['hospital'], 'join-hospital')
                    testid(buttons['technician'], 'join-technician')
                    testid(buttons['room'], 'join-meeting')
                    roster = RoomRoster()
        roster.show(registry.get(room_name))  # viewing the lobby never creates the room
        unsubscribe = registry.subscribe(room_name, lambda _: roster.show(registry.get(room_name)))

        def stop_watching() -> None:
            unsubscribe()
            registry.drop_if_empty(room_name)  # the last one out may have left it to us

        ui.context.client.on_delete(stop_watching)


def copy_link(room_name: str) -> None:
    ui.run_javascript(f'navigator.clipboard.writeText(location.origin + "/{room_name}")')
    ui.notify('Link copied')
