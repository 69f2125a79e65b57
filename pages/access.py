"""The page side of room access: the mode (`ROOM_ACCESS`), the grants a browser keeps, the pass it presents at a
room's door, the refusal page, and the audit trail's records (when `app.state.audit` exists).

A browser keeps its grants in `app.storage.user['grants']` (room address -> token, re-verified on every use), so a
station's long-lived grant reopens the station as itself after a restart; a token is never kept in the address bar.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from nicegui import app, ui

from components.invites import verify
from components.testid import testid
from pages.frame import display_name, frame
from rooms import Role, Room, RoomRegistry
from rooms.access import Pass
from rooms.grants import REFUSALS, ROLE_OF_PAGE, Grant, GrantError, GrantProblem
from rooms.room import ChangeKind, RoomChange

log = logging.getLogger(__name__)
GRANTS_KEY = 'grants'
MAX_KEPT_GRANTS = 50


@dataclass(kw_only=True)
class AccessConfig:
    """Set once by `app.build`: `invite` or `open`, and the secret that signs invites."""

    mode: str = 'invite'
    secret: str = ''


CONFIG = AccessConfig()


def configure(mode: str, secret: str) -> None:
    CONFIG.mode, CONFIG.secret = mode, secret


def invite_only() -> bool:
    """True unless `ROOM_ACCESS=open` (anyone with the address, in the role of the page they open)."""
    return CONFIG.mode != 'open'


def browser_id() -> str:
    """This browser's id (NiceGUI's per-browser storage, signed cookie)."""
    return str(app.storage.browser.get('id') or '')


def client_address() -> str | None:
    """The address the current page's request came from (hashed by the audit log)."""
    try:
        request = ui.context.client.request
        return request.client.host if request is not None and request.client is not None else None
    except (AttributeError, RuntimeError):
        return None


def record(
    kind: str,
    *,
    room: str,
    actor: str,
    subject: str | None = None,
    client: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append to the audit trail; never fails the page (the log says when the trail cannot be written)."""
    audit = getattr(app.state, 'audit', None)
    if audit is None:
        return
    try:
        audit.record(kind, room=room, actor=actor, subject=subject, client=client, details=details)
    except Exception:
        log.exception('audit: could not record %s in room %s', kind, room)


def navigate_soon(anchor: ui.element, path: str) -> None:
    """Send `anchor`'s page to `path` from a room change made by someone else's page: a moment later, in that page's
    own context (NiceGUI's simulated users share one `ui.navigate`, so the hop also keeps tests honest)."""
    with anchor:
        ui.timer(0.1, lambda: ui.navigate.to(path), once=True)


# ---- grants kept by this browser ----------------------------------------------------------------------------------


def keep_grant(room_name: str, token: str) -> None:
    """Remember `token` for `room_name` in this browser (the newest replaces an older one)."""
    grants = dict(app.storage.user.get(GRANTS_KEY) or {})
    grants.pop(room_name, None)
    grants[room_name] = token
    while len(grants) > MAX_KEPT_GRANTS:
        del grants[next(iter(grants))]
    app.storage.user[GRANTS_KEY] = grants


def forget_grant(room_name: str) -> None:
    grants = dict(app.storage.user.get(GRANTS_KEY) or {})
    if grants.pop(room_name, None) is not None:
        app.storage.user[GRANTS_KEY] = grants


def kept_grant(room_name: str) -> Grant | None:
    """The verified grant this browser keeps for `room_name`; an expired or no longer valid one is forgotten."""
    token = (app.storage.user.get(GRANTS_KEY) or {}).get(room_name)
    if not isinstance(token, str):
        return None
    try:
        return verify(CONFIG.secret, token, room=room_name)
    except GrantError:
        forget_grant(room_name)
        return None


def take_invite(room_name: str, token: str, page: str | None) -> GrantProblem | None:
    """Verify an invite opened at `/{room}/{page}?invite=…` and keep it; returns why it was refused, if it was."""
    try:
        grant = verify(CONFIG.secret, token, room=room_name, page=page)
    except GrantError as error:
        log.info('room=%s: invite refused (%s)', room_name, error.problem)
        return error.problem
    keep_grant(room_name, token)
    log.info('room=%s: invite %s accepted as %s', room_name, grant.jti, grant.role)
    return None


# ---- the pass a browser presents ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Ticket:
    """What this browser brings to a room's door for one page: its pass, the name it enters with (fixed by its
    grant, or typed), and the grant that backs it (None for an admission or nobody)."""

    pass_: Pass
    name: str
    verified: bool
    grant: Grant | None
    admitted: bool = False

    @property
    def role(self) -> Role:
        return self.pass_.role


def ticket(room_name: str, room: Room | None, page: str) -> Ticket | None:
    """The pass this browser presents for `page` in `room_name` (None: it has nothing for that page)."""
    role = ROLE_OF_PAGE.get(page)
    if role is None:
        return None
    browser = browser_id()
    grant = kept_grant(room_name)
    admitted = room.access.admitted.get(browser) if room is not None else None
    if grant is not None and grant.page_allowed(page):
        pass_ = Pass(browser=browser, role=role, grant=grant.jti, admin=grant.admin, approval=grant.approval)
        name = grant.name or (admitted.name if admitted is not None else '') or display_name()
        return Ticket(pass_=pass_, name=name, verified=bool(grant.name), grant=grant)
    if admitted is not None and admitted.role is role and not admitted.grant:
        return Ticket(
            pass_=Pass(browser=browser, role=role), name=admitted.name, verified=False, grant=None, admitted=True
        )
    return None


def refusal(problem: GrantProblem | str) -> None:
    """A page that says why an invite did not let its bearer in, and nothing about the room."""
    message = REFUSALS.get(GrantProblem(problem), '') if problem in set(GrantProblem) else str(problem)
    with frame('Not admitted'):
        with ui.card().classes('w-full max-w-md self-center items-center gap-3 p-6'):
            ui.icon('block', color='negative').classes('text-5xl')
            testid(ui.label(message).classes('text-lg font-medium text-center'), 'access-refused')
            ui.label('Ask whoever invited you for a new link.').classes('text-gray-600 text-center')
            ui.link('Back to the start page', '/')


def observe_rooms(registry: RoomRegistry) -> None:
    """Record leaving (also by missed heartbeats) and mute requests of every room in the audit trail; joins, knocks,
    admissions, removals and the rest are recorded where they happen (with the client's address)."""
    names: dict[tuple[str, str], str] = {}

    def observe(change: RoomChange) -> None:
        key = (change.room, change.participant_id)
        room = registry.get(change.room)
        person = room.participants.get(change.participant_id) if room is not None else None
        if person is not None:
            names[key] = person.name
        if change.kind in {ChangeKind.LEFT, ChangeKind.EXPIRED}:
            name = names.pop(key, change.participant_id)
            if change.by is None:  # a removal is recorded by the host's page as 'removed'
                record('left', room=change.room, actor=name, details={'reason': str(change.kind)})
        elif change.kind is ChangeKind.MUTE_REQUESTED and room is not None:
            asker = room.participants.get(change.by or '')
            record(
                'muted',
                room=change.room,
                actor=asker.name if asker is not None else str(change.by),
                subject=names.get(key, change.participant_id),
            )

    registry.observers.append(observe)
