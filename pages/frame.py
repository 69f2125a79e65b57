"""The frame every page shares: header with product name and the user's display name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import app, ui

from components.testid import testid

PRODUCT = 'Orange Telehealth'
NAME_KEY = 'display_name'
MAX_NAME_LENGTH = 50


def display_name() -> str:
    """The display name kept in this browser's storage ('' when none was set)."""
    return str(app.storage.user.get(NAME_KEY, '') or '')


def set_display_name(name: str) -> str | None:
    """Store a display name; returns an error message when it is not acceptable."""
    cleaned = ' '.join(name.split())
    if not cleaned:
        return 'Enter your name so that others know who you are.'
    if len(cleaned) > MAX_NAME_LENGTH:
        return f'Use at most {MAX_NAME_LENGTH} characters.'
    app.storage.user[NAME_KEY] = cleaned
    return None


@contextmanager
def frame(title: str, *, wide: bool = False) -> Iterator[None]:
    """Header plus a centred content column (`wide` for video stages that should use the whole window)."""
    ui.page_title(f'{title} · {PRODUCT}' if title != PRODUCT else PRODUCT)
    ui.colors(primary='#ea580c')
    with ui.header().classes('bg-white text-black shadow-sm items-center px-4 py-2'):
        with ui.link(target='/').classes('flex items-center gap-2 no-underline text-black'):
            ui.icon('radio_button_checked', color='orange-8').classes('text-2xl')
            ui.label(PRODUCT).classes('text-lg font-semibold')
        ui.space()
        name = ui.label().bind_text_from(app.storage.user, NAME_KEY, backward=lambda n: n or '')
        testid(name.classes('text-sm text-gray-600'), 'header-name')
    with ui.column().classes(f'w-full {"max-w-screen-2xl" if wide else "max-w-5xl"} mx-auto p-4 gap-4'):
        yield
