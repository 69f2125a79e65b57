"""Home page `/`: set a display name, create a room or join one by name."""

from __future__ import annotations

import secrets

from nicegui import ui

from components.testid import testid
from pages.frame import PRODUCT, display_name, frame, set_display_name
from rooms import normalise_room_name

ADJECTIVES = 'amber brave calm clear eager gentle keen lucid mellow quick quiet steady sunny swift warm'.split()
NOUNS = 'birch cedar comet falcon harbor heron maple meadow otter pine river robin sparrow willow'.split()


def random_room_name() -> str:
    """A short, readable, hard-to-guess-by-accident room name such as `calm-otter-4821`."""
    return f'{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{secrets.randbelow(9000) + 1000}'


def register() -> None:
    """Add the page to the app."""

    @ui.page('/')
    def home() -> None:
        with frame(PRODUCT):
            ui.label(
                'Video for scanner rooms: a hospital station shares every camera, a remote technician sees '
                'each one live and talks back.'
            ).classes('text-gray-600')
            with ui.card().classes('w-full max-w-md'):
                name = ui.input('Your name', value=display_name()).props('autofocus').classes('w-full')
                testid(name, 'display-name')
                error = testid(ui.label().classes('text-red-700'), 'home-error')

                def remember_name() -> bool:
                    problem = set_display_name(name.value or '')
                    error.text = problem or ''
                    return problem is None

                def new_room() -> None:
                    if remember_name():
                        ui.navigate.to(f'/{random_room_name()}')

                def join_room() -> None:
                    if not remember_name():
                        return
                    try:
                        room_name = normalise_room_name(room.value or '')
                    except ValueError as problem:
                        error.text = str(problem)
                        return
                    ui.navigate.to(f'/{room_name}')

                testid(ui.button('New room', on_click=new_room).classes('w-full'), 'new-room')
                ui.separator()
                ui.label('Or join a room').classes('text-sm text-gray-600')
                with ui.row().classes('w-full no-wrap items-start'):
                    room = testid(ui.input('Room name').classes('grow'), 'room-name')
                    room.on('keydown.enter', join_room)
                    testid(ui.button('Join', on_click=join_room).props('outline'), 'join-room')
