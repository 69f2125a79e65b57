"""Lobby `/{room}`: who you are, a live self-preview and device choice, and the ways in. A direct link to an in-room
page without a display name (or that must wait at the door) lands here as `/{room}?next=<page>`.

With `ROOM_ACCESS=open` (the original) anyone sees who is in the room and enters as any role. With `invite` (the
default) the lobby is the room's door: the host (the room's creator) sees the room and enters as anything; an invite
enters as its role, straight in or after waiting; someone with only the address asks to join as a technician or a
meeting guest and waits, seeing nothing about the room, until the host or a hospital station admits or denies them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from nicegui import ui

from components.device_preview import DevicePanel
from components.media_caps import MediaCaps
from components.room_roster import RoomRoster
from components.testid import testid
from pages.access import (
    browser_id,
    client_address,
    invite_only,
    kept_grant,
    navigate_soon,
    record,
    refusal,
    take_invite,
    ticket,
)
from pages.frame import display_name, frame, set_display_name
from pages.roles import PAGE_ROLES
from rooms import RoomError, RoomRegistry, normalise_room_name
from rooms.access import Entry, Pass, RoomAccess
from rooms.grants import PAGE_OF, ROLE_OF_PAGE, GrantRole
from rooms.room import ChangeKind, RoomChange

WAYS_IN = {'hospital': 'hospital station', 'technician': 'technician', 'room': 'meeting participant'}
BUTTONS = {
    'hospital': ('Join as hospital station', 'local_hospital', 'join-hospital'),
    'technician': ('Join as technician', 'monitor_heart', 'join-technician'),
    'room': ('Join meeting', 'groups', 'join-meeting'),
}
KNOCK_BUTTONS = {
    'technician': ('Ask to join as technician', 'monitor_heart', 'join-technician'),
    'room': ('Ask to join the meeting', 'groups', 'join-meeting'),
}


def register(registry: RoomRegistry, caps: MediaCaps) -> None:
    """Add the page to the app."""

    @ui.page('/{room}')
    def lobby(room: str, next: str = '', invite: str = '', removed: str = '') -> None:
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
        if not invite_only():
            open_lobby(registry, caps, room_name, target)
            return
        if invite:  # an invite to the room itself (a host's): verify, keep, and drop it from the address bar
            refused = take_invite(room_name, invite, None)
            if refused is not None:
                refusal(refused)
                return
            ui.navigate.to(f'/{room_name}' + (f'?next={target}' if target else ''))
            return
        door(registry, caps, room_name, target, removed=bool(removed))


def open_lobby(registry: RoomRegistry, caps: MediaCaps, room_name: str, target: str | None) -> None:
    """The original lobby: the roster for everyone and the three ways in."""
    with frame(room_name):
        title_row(room_name, room_name)
        with ui.row().classes('w-full gap-6 items-start'):
            with ui.column().classes('w-full md:w-7/12'):
                DevicePanel(caps)
            with ui.column().classes('grow gap-3'):
                next_hint(target)
                name, name_error = name_field()

                def enter(page: str | None) -> None:
                    if page is None:
                        save_name(name, name_error)
                        return
                    if save_name(name, name_error):
                        ui.navigate.to(f'/{room_name}/{page}')

                name.on('blur', lambda: save_name(name, name_error))
                # With a page to go on to, Enter in the name field continues there; otherwise it saves the name.
                name.on('keydown.enter', lambda: enter(target))
                way_buttons(list(BUTTONS), target, enter)
                roster = RoomRoster()
    follow_roster(registry, room_name, roster)


def door(registry: RoomRegistry, caps: MediaCaps, room_name: str, target: str | None, *, removed: bool) -> None:
    """The invite-only lobby: what this browser may do here, and the waiting room."""
    grant = kept_grant(room_name)
    room = registry.get(room_name)
    admitted = room.access.admitted.get(browser_id()) if room is not None else None
    if grant is not None:
        pages = list(BUTTONS) if grant.role is GrantRole.HOST else [PAGE_OF[grant.role]]
    elif admitted is not None and not admitted.grant:
        pages = [page for page, role in ROLE_OF_PAGE.items() if role is admitted.role]
    else:
        pages = list(KNOCK_BUTTONS)

    def decision(page: str) -> Entry | None:
        """What the door does with this browser's pass for `page` (None: it has none, it may only knock)."""
        current = registry.get(room_name)
        found = ticket(room_name, current, page)
        if found is None:
            return None
        if current is None:
            return Entry.ENTER if found.pass_.admin else found_entry(found.pass_)
        return current.access.entry(found.pass_, current.present_browsers())

    inside = any(decision(page) is Entry.ENTER for page in pages)  # only those who get in see the room
    title = (grant.title if grant is not None else None) or (room.title if room is not None else '') or room_name
    fixed_name = grant.name if grant is not None else None
    if target not in pages:
        target = pages[0] if len(pages) == 1 else None
    state: dict[str, object] = {}
    with frame(title if inside else 'Ask to join'):
        if inside:
            title_row(title, room_name)
        else:
            testid(ui.label('Ask to join').classes('text-2xl font-semibold'), 'knock-title')
            ui.label(
                'The host or the hospital station lets you in. Until then you see nothing of the room, and nobody '
                'sees you.'
            ).classes('text-gray-600')
        if removed:
            testid(
                ui.label('You were removed from this room. You can ask to join again.').classes(
                    'w-full px-3 py-2 rounded bg-red-50 text-red-900 font-medium'
                ),
                'removed-notice',
            )
        with ui.row().classes('w-full gap-6 items-start'):
            with ui.column().classes('w-full md:w-7/12'):
                DevicePanel(caps)
            with ui.column().classes('grow gap-3') as ways:
                next_hint(target)
                if fixed_name:
                    testid(ui.label(f'You join as {fixed_name}').classes('font-medium'), 'fixed-name')
                    ui.label('Your name is set by your invite.').classes('text-sm text-gray-600')
                name, name_error = name_field()
                name.set_visibility(not fixed_name)
                name.on('blur', lambda: save_name(name, name_error))

                def enter(page: str | None) -> None:
                    if page is None:
                        save_name(name, name_error)
                        return
                    if not fixed_name and not save_name(name, name_error):
                        return
                    verdict = decision(page)
                    if verdict is Entry.ENTER:
                        ui.navigate.to(f'/{room_name}/{page}')
                    elif verdict is Entry.FULL:
                        ui.notify('The room is full. Try again later.', type='warning')
                    else:
                        knock(page)

                name.on('keydown.enter', lambda: enter(target))
                way_buttons(pages, target, enter, labels=BUTTONS if grant is not None or admitted else KNOCK_BUTTONS)
            waiting = testid(ui.card(), 'waiting').classes('grow gap-2 items-center')
            waiting.set_visibility(False)
            with waiting:
                ui.spinner(size='lg')
                waiting_text = ui.label().classes('text-lg text-center')
                ui.label('Keep this page open.').classes('text-sm text-gray-600')
                cancel = testid(ui.button('Cancel', icon='close').props('flat'), 'knock-cancel')
            denied = testid(ui.label('You were not let in.').classes('text-red-700 font-medium'), 'knock-denied')
            denied.set_visibility(False)
        roster = RoomRoster() if inside else None
    if roster is not None:
        follow_roster(registry, room_name, roster)

    def knock(page: str) -> None:
        found = ticket(room_name, registry.get(room_name), page)
        pass_ = found.pass_ if found is not None else Pass(browser=browser_id(), role=ROLE_OF_PAGE[page])
        who = found.name if found is not None and found.name else display_name()
        current = registry.get_or_create(room_name)
        knock_id = secrets.token_hex(8)
        try:
            current.knock(knock_id=knock_id, name=who, pass_=pass_, now=time.time())
        except RoomError as error:
            ui.notify(str(error), type='warning')
            registry.drop_if_empty(room_name)
            return
        record(
            'knock',
            room=room_name,
            actor=who,
            client=client_address(),
            details={'role': str(pass_.role), 'invite': pass_.grant or None},
        )
        stop_waiting()
        state['knock'] = knock_id
        ways.set_visibility(False)
        denied.set_visibility(False)
        waiting_text.text = f'Waiting to be let in as {WAYS_IN[page]}…'
        waiting.set_visibility(True)

        def heard(change: RoomChange) -> None:
            if change.kind is not ChangeKind.ACCESS or change.participant_id != knock_id:
                return
            if change.decision == 'admitted':
                state.pop('knock', None)
                navigate_soon(waiting, f'/{room_name}/{page}')
            elif change.decision == 'denied':
                state.pop('knock', None)
                waiting.set_visibility(False)
                denied.set_visibility(True)
                ways.set_visibility(True)

        state['unsubscribe'] = registry.subscribe(room_name, heard)

    def stop_waiting() -> None:
        unsubscribe = state.pop('unsubscribe', None)
        if callable(unsubscribe):
            unsubscribe()
        knock_id = state.pop('knock', None)
        current = registry.get(room_name)
        if isinstance(knock_id, str) and current is not None:
            current.withdraw(knock_id)
        registry.drop_if_empty(room_name)

    def cancel_knock() -> None:
        stop_waiting()
        waiting.set_visibility(False)
        ways.set_visibility(True)

    cancel.on_click(cancel_knock)
    ui.context.client.on_delete(stop_waiting)


def found_entry(pass_: Pass) -> Entry:
    """The door of a room that does not exist yet: its defaults."""
    return RoomAccess().entry(pass_)


def title_row(title: str, room_name: str) -> None:
    with ui.row().classes('w-full items-center'):
        testid(ui.label(title).classes('text-2xl font-semibold'), 'room-title')
        ui.button(icon='content_copy', on_click=lambda: copy_link(room_name)).props('flat round').tooltip(
            'Copy the link to this room'
        )


def next_hint(target: str | None) -> None:
    if target:
        hint = 'Enter your name to join' if not display_name() else 'You are about to join'
        testid(ui.label(f'{hint} as {WAYS_IN[target]}.'), 'next-hint').classes(
            'w-full px-3 py-2 rounded bg-orange-50 text-orange-900 font-medium'
        )


def name_field() -> tuple[ui.input, ui.label]:
    name = testid(ui.input('Your name', value=display_name()).classes('w-full'), 'display-name')
    name_error = testid(ui.label().classes('text-red-700'), 'name-error')
    return name, name_error


def save_name(name: ui.input, name_error: ui.label) -> bool:
    name_error.text = set_display_name(name.value or '') or ''
    return not name_error.text


def way_buttons(
    pages: list[str],
    target: str | None,
    enter: Callable[[str], None],
    labels: dict[str, tuple[str, str, str]] = BUTTONS,
) -> None:
    """One button per page this browser may ask for; the page the visitor asked for stands out."""
    for page in pages:
        text, icon, marker = labels[page]
        button = testid(ui.button(text, icon=icon), marker).classes('w-full')
        button.on_click(lambda page=page: enter(page))
        if (target and page != target) or (not target and page == 'room' and len(pages) > 1):
            button.props('outline')


def follow_roster(registry: RoomRegistry, room_name: str, roster: RoomRoster) -> None:
    roster.show(registry.get(room_name))  # viewing the lobby never creates the room
    unsubscribe = registry.subscribe(room_name, lambda _: roster.show(registry.get(room_name)))

    def stop_watching() -> None:
        unsubscribe()
        registry.drop_if_empty(room_name)  # the last one out may have left it to us

    ui.context.client.on_delete(stop_watching)


def copy_link(room_name: str) -> None:
    ui.run_javascript(f'navigator.clipboard.writeText(location.origin + "/{room_name}")')
    ui.notify('Link copied')
