"""The room's door as the host and the hospital stations see it inside the room (`ROOM_ACCESS=invite`):

- who is waiting (name and role), with Admit and Deny (the host and every hospital station);
- whether technicians wait for approval before seeing the cameras (a hospital station decides; default yes);
- the host's moderation: remove a participant, lock the room, cap the number of participants;
- invite links (the host: any role; a hospital station: technicians), with an expiry and a copy button.

Every page also watches for its own removal: the host's removal sends it back to the lobby, which says so.
"""

from __future__ import annotations

import json
from typing import Any

from nicegui import app, ui

from components.call import Call
from components.invites import STATION_TTL, TTL_CHOICES, invite_path, mint
from components.testid import testid
from pages.access import CONFIG, client_address, invite_only, navigate_soon, record
from pages.in_room import Admission
from rooms import Participant, Role, RoomError, RoomRegistry
from rooms.access import Knock
from rooms.grants import GRANT_OF_ROLE, ROLE_WORDS, GrantRole
from rooms.room import ChangeKind, RoomChange

INVITE_ROLES = {
    GrantRole.HOSPITAL: 'Hospital station',
    GrantRole.TECHNICIAN: 'Technician',
    GrantRole.GUEST: 'Meeting guest',
}


def role_words(role: Role) -> str:
    return ROLE_WORDS[GRANT_OF_ROLE[role]]


def follow_removal(registry: RoomRegistry, call: Call, anchor: ui.element) -> None:
    """Send this page to the lobby when the host removes its participant (its Call leaves by itself)."""
    room_name = call.room.name

    def heard(change: RoomChange) -> None:
        if change.kind is ChangeKind.LEFT and change.participant_id == call.participant_id and change.by:
            navigate_soon(anchor, f'/{room_name}?removed=1')

    unsubscribe = registry.subscribe(room_name, heard)
    ui.context.client.on_delete(unsubscribe)


class AccessPanel:
    """The door inside the room, for the host and the hospital stations (nothing for anyone else)."""

    def __init__(self, registry: RoomRegistry, call: Call, admission: Admission) -> None:
        self.registry = registry
        self.call = call
        self.admission = admission
        self.admin = admission.admin
        self.station = admission.role is Role.HOSPITAL
        self.base_url = _base_url()
        self._shown: tuple[Any, ...] | None = None
        self._knocks_seen: set[str] = set()
        self._audit_dialog: ui.dialog | None = None
        self.visible = invite_only() and (self.admin or self.station)
        if not self.visible:
            return
        title = 'Access · host' if self.admin else 'Access'
        # Open for the host (their controls); a station's opens by itself when someone knocks.
        self.expansion = testid(ui.expansion(title, icon='shield', value=self.admin), 'access-panel').classes(
            'w-full border rounded bg-orange-50/40'
        )
        with self.expansion:
            with ui.column().classes('w-full gap-2'):
                self.waiting_title = testid(ui.label().classes('font-semibold'), 'waiting-title')
                self.knocks = ui.column().classes('w-full gap-1')
                with ui.row().classes('w-full items-center gap-4'):
                    self.approval = testid(
                        ui.switch('Technicians wait for approval', on_change=self._approval), 'approval-switch'
                    )
                    if self.admin:
                        self.lock = testid(ui.switch('Lock room', on_change=self._lock), 'lock-switch')
                        self.capacity = testid(
                            ui.number('Max participants', min=1, max=500, step=1, format='%d').classes('w-40'),
                            'capacity',
                        )
                        self.capacity.on('keydown.enter', self._capacity)
                        self.capacity.on('blur', self._capacity)
                    ui.space()
                    if self.admin and getattr(app.state, 'audit', None) is not None:
                        audit = ui.button('Audit trail', icon='receipt_long', on_click=self._open_audit)
                        testid(audit.props('outline'), 'audit-open')
                    testid(ui.button('Invite', icon='person_add', on_click=self._open_invite), 'invite-open')
                if self.admin:
                    ui.label('In the room').classes('font-semibold')
                    self.people = ui.column().classes('w-full gap-1')
        self._invite_dialog()
        unsubscribe = registry.subscribe(call.room.name, lambda _change: self.refresh())
        ui.context.client.on_delete(unsubscribe)
        self.refresh()

    # ---- rendering --------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        if not self.visible or self.call.left:
            return
        room, me = self.call.room, self.call.me
        if me is None:
            return
        access = room.access
        knocks = access.knocks_for(me.role, self.admin)
        people = [p for p in room.participants.values() if p.id != me.id] if self.admin else []
        shown = (
            tuple((k.id, k.name, k.role, k.removed_before) for k in knocks),
            tuple((p.id, p.name, p.role) for p in people),
            access.locked,
            access.capacity,
            access.technician_approval,
        )
        if shown == self._shown:
            return
        self._shown = shown
        self.approval.set_value(access.technician_approval)
        if self.admin:
            self.lock.set_value(access.locked)
            if self.capacity.value != access.capacity:
                self.capacity.set_value(access.capacity)
        count = len(knocks)
        self.waiting_title.text = f'{count} waiting to join' if count else 'Nobody is waiting'
        self.knocks.clear()
        with self.knocks:
            for knock in knocks:
                self._knock_row(knock)
        new = [k for k in knocks if k.id not in self._knocks_seen]
        self._knocks_seen = {k.id for k in knocks}
        if new:
            self.expansion.open()
            with self.expansion:
                for knock in new:
                    ui.notify(f'{knock.name} asks to join as {role_words(knock.role)}', icon='person_add')
        if self.admin:
            self.people.clear()
            with self.people:
                for person in people:
                    self._person_row(person)

    def _knock_row(self, knock: Knock) -> None:
        with testid(ui.row(), 'knock').classes('w-full items-center gap-2 no-wrap'):
            ui.icon('hourglass_top', color='orange-8')
            testid(ui.label(knock.name).classes('font-medium truncate'), 'knock-name')
            testid(ui.label(role_words(knock.role)).classes('text-sm text-gray-600'), 'knock-role')
            if knock.removed_before:
                ui.label('removed earlier').classes('text-sm text-red-700')
            ui.space()
            admit = ui.button('Admit', icon='check', on_click=lambda k=knock: self._decide(k, True))
            testid(admit.props('dense color=positive'), 'admit')
            deny = ui.button('Deny', icon='close', on_click=lambda k=knock: self._decide(k, False))
            testid(deny.props('dense flat color=negative'), 'deny')

    def _person_row(self, person: Participant) -> None:
        member = self.call.room.access.members.get(person.id)
        with testid(ui.row(), 'member').classes('w-full items-center gap-2 no-wrap'):
            testid(ui.label(person.name).classes('font-medium truncate'), 'member-name')
            if member is not None and member.verified:
                ui.icon('verified', color='positive').tooltip('Name verified by the invite')
            ui.label(role_words(person.role)).classes('text-sm text-gray-600')
            ui.space()
            remove = ui.button('Remove', icon='person_remove', on_click=lambda p=person: self._remove(p))
            testid(remove.props('dense flat color=negative'), 'remove')

    # ---- actions ----------------------------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        with self.expansion:
            ui.notify(message, type='warning')

    def _decide(self, knock: Knock, admit: bool) -> None:
        room = self.call.room
        try:
            if admit:
                room.admit(self.call.participant_id, knock.id)
            else:
                room.deny(self.call.participant_id, knock.id)
        except RoomError as error:
            self._warn(str(error))
            return
        record(
            'admitted' if admit else 'denied',
            room=room.name,
            actor=self.call.name,
            subject=knock.name,
            client=client_address(),
            details={'role': str(knock.role), 'invite': knock.grant or None, 'readmitted': knock.removed_before},
        )

    def _remove(self, person: Participant) -> None:
        room = self.call.room
        member = room.access.members.get(person.id)
        try:
            room.remove(self.call.participant_id, person.id)
        except RoomError as error:
            self._warn(str(error))
            return
        record(
            'removed',
            room=room.name,
            actor=self.call.name,
            subject=person.name,
            client=client_address(),
            details={'role': str(person.role), 'invite': member.grant if member is not None and member.grant else None},
        )
        with self.expansion:
            ui.notify(f'{person.name} was removed', icon='person_remove')

    def _lock(self, event: Any) -> None:
        locked = bool(event.value)
        room = self.call.room
        try:
            changed = room.lock(self.call.participant_id, locked)
        except RoomError as error:
            self._warn(str(error))
            return
        if changed is not None:
            record('locked' if locked else 'unlocked', room=room.name, actor=self.call.name, client=client_address())

    def _capacity(self) -> None:
        value = self.capacity.value
        capacity = int(value) if value not in (None, '') else None
        room = self.call.room
        try:
            changed = room.set_capacity(self.call.participant_id, capacity)
        except (RoomError, ValueError) as error:
            self._warn(str(error))
            return
        if changed is not None:
            record('capacity', room=room.name, actor=self.call.name, client=client_address(), details={'cap': capacity})

    def _approval(self, event: Any) -> None:
        required = bool(event.value)
        room = self.call.room
        if room.access.technician_approval == required:
            return
        try:
            changed = room.set_technician_approval(self.call.participant_id, required)
        except RoomError as error:
            self._warn(str(error))
            return
        if changed is not None:
            record(
                'approval',
                room=room.name,
                actor=self.call.name,
                client=client_address(),
                details={'technicians_wait': required},
            )

    def _open_audit(self) -> None:
        """The room's audit trail (who saw which camera, when), newest first, with CSV export: the host's only."""
        if self._audit_dialog is None:
            from components.audit_view import AuditView

            with ui.dialog() as self._audit_dialog, ui.card().classes('w-[60rem] max-w-full'):
                AuditView(app.state.audit, self.call.room.name)
                ui.button('Close', on_click=self._audit_dialog.close).props('flat').classes('self-end')
        self._audit_dialog.open()

    # ---- invites ----------------------------------------------------------------------------------------------

    def _invite_dialog(self) -> None:
        roles = INVITE_ROLES if self.admin else {GrantRole.TECHNICIAN: INVITE_ROLES[GrantRole.TECHNICIAN]}
        with ui.dialog() as self.dialog, ui.card().classes('w-[32rem] max-w-full gap-2'):
            ui.label('Invite someone').classes('text-lg font-semibold')
            self.invite_role = testid(
                ui.select({str(k): v for k, v in roles.items()}, value=str(next(iter(roles))), label='Role'),
                'invite-role',
            ).classes('w-full')
            self.invite_ttl = testid(
                ui.select(list(TTL_CHOICES), value='8 hours', label='Valid for'), 'invite-ttl'
            ).classes('w-full')
            self.invite_role.on_value_change(self._role_changed)
            self.invite_name = testid(ui.input('Fixed name (optional)'), 'invite-name').classes('w-full')
            self.invite_approval = testid(ui.checkbox('Wait for approval in the waiting room'), 'invite-approval')
            create = testid(ui.button('Create link', icon='link', on_click=self._mint), 'invite-create')
            create.classes('w-full')
            self.invite_link = testid(ui.input('Invite link').props('readonly'), 'invite-link').classes('w-full')
            self.invite_link.set_visibility(False)
            with ui.row().classes('w-full justify-end'):
                self.copy = testid(ui.button('Copy', icon='content_copy', on_click=self._copy), 'invite-copy')
                self.copy.set_visibility(False)
                ui.button('Close', on_click=self.dialog.close).props('flat')
        self._role_changed()

    def _role_changed(self, *_: Any) -> None:
        station = self.invite_role.value == str(GrantRole.HOSPITAL)
        self.invite_ttl.set_value('1 year' if station else '8 hours')
        self.invite_name.props(
            f'label="{"Station name (shown to technicians)" if station else "Fixed name (optional)"}"'
        )

    def _open_invite(self) -> None:
        self.invite_link.set_visibility(False)
        self.copy.set_visibility(False)
        self.dialog.open()

    def _mint(self) -> None:
        role = GrantRole(self.invite_role.value)
        if not self.admin and role is not GrantRole.TECHNICIAN:
            self._warn('A hospital station invites technicians only.')
            return
        ttl = TTL_CHOICES.get(self.invite_ttl.value or '', STATION_TTL if role is GrantRole.HOSPITAL else 8 * 3600)
        name = (self.invite_name.value or '').strip() or None
        try:
            token, grant = mint(
                CONFIG.secret,
                room=self.call.room.name,
                role=role,
                ttl=ttl,
                name=name,
                title=self.admission.title or None,
                approval=bool(self.invite_approval.value),
            )
        except (RoomError, ValueError) as error:
            with self.dialog:
                ui.notify(str(error), type='warning')
            return
        self.invite_link.set_value(self.base_url + invite_path(grant, token))
        self.invite_link.set_visibility(True)
        self.copy.set_visibility(True)
        record(
            'invite_minted',
            room=self.call.room.name,
            actor=self.call.name,
            subject=name,
            client=client_address(),
            details={'role': str(role), 'jti': grant.jti, 'exp': grant.exp, 'approval': grant.approval},
        )

    def _copy(self) -> None:
        ui.run_javascript(f'navigator.clipboard.writeText({json.dumps(self.invite_link.value or "")})')
        with self.dialog:
            ui.notify('Invite link copied')


def _base_url() -> str:
    try:
        request = ui.context.client.request
        return str(request.base_url).rstrip('/') if request is not None else ''
    except (AttributeError, RuntimeError):
        return ''


def install(registry: RoomRegistry, call: Call, admission: Admission, anchor: ui.element) -> AccessPanel:
    """Removal watching for every page and, for the host and stations, the panel (create it inside the page)."""
    follow_removal(registry, call, anchor)
    return AccessPanel(registry, call, admission)
