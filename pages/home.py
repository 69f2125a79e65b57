"""Home page `/`: set a display name, create a room or join one by name.

With `ROOM_ACCESS=invite` a new room gets an address of 120 random bits (its readable name is kept for display) and
its creator becomes the host: this browser keeps a host grant for it."""

from __future__ import annotations

import base64
import secrets

from nicegui import ui

from components.invites import HOST_TTL, mint
from components.testid import testid
from pages.access import CONFIG, client_address, invite_only, keep_grant, record
from pages.frame import PRODUCT, display_name, frame, set_display_name
from rooms import normalise_room_name
from rooms.grants import GrantRole

ADJECTIVES = 'amber brave calm clear eager gentle keen lucid mellow quick quiet steady sunny swift warm'.split()
NOUNS = 'birch cedar comet falcon harbor heron maple meadow otter pine river robin sparrow willow'.split()


def random_room_name() -> str:
    """A short, readable, hard-to-guess-by-accident room name such as `calm-otter-4821`."""
    return f'{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{secrets.randbelow(9000) + 1000}'


def new_room_address() -> str:
    """A room address nobody can guess: 120 random bits as 24 lowercase base32 characters."""
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()


def create_room() -> str:
    """Make a room whose host is this browser; return its address."""
    address, title = new_room_address(), random_room_name()
    token, grant = mint(CONFIG.secret, room=address, role=GrantRole.HOST, ttl=HOST_TTL, title=title)
    keep_grant(address, token)
    record('room_created', room=address, actor=display_name(), client=client_address(), details={'title': title})
    record(
        'invite_minted',
        room=address,
        actor=display_name(),
        subject=display_name(),
        client=client_address(),
        details={'role': str(grant.role), 'jti': grant.jti, 'exp': grant.exp, 'title': title, 'created': True},
    )
    return address


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
                        ui.navigate.to(f'/{create_room() if invite_only() else random_room_name()}')

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
