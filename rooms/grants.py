"""Role grants: what a signed invite lets a page do, as pure data (no JWT library here; see `components.invites`).

A grant names one room and one role. Its claims follow what LiveKit and Jitsi operators already know, so a
hospital's scheduling system can mint links itself with the shared secret (HS256):

    {
      "iss": "orange-telehealth", "aud": "orange-telehealth",
      "jti": "<unique id>", "iat": 1767000000, "nbf": 1767000000, "exp": 1767028800,
      "room": "<room address>",                   # Jitsi's `room`
      "role": "technician",                       # host | hospital | technician | guest
      "name": "Ward 7 — MRI bore",                # optional fixed (verified) display name; LiveKit's `name`
      "title": "calm-otter-4821",                 # optional readable room name, for display only
      "approval": false,                          # true: this invite waits in the waiting room even if the room
                                                  #       would let it straight in
      "video": {"room": "<room address>", "roomJoin": true, "canPublish": true, "canSubscribe": true,
                "canPublishSources": ["camera", "microphone"], "roomAdmin": false},   # LiveKit's VideoGrant
      "context": {"user": {"name": "...", "moderator": false}}                        # Jitsi's context
    }

The role decides what a page may publish and see (`ROLE_PERMISSIONS`); `video` documents it. On the way in, only
`video.roomAdmin` (or Jitsi's `context.user.moderator`) adds something — moderation — and any `video` grant must name
the same room and must not refuse `roomJoin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from rooms.model import InvalidInputError, Role, validate_display_name

ISSUER: Final = 'orange-telehealth'
AUDIENCE: Final = 'orange-telehealth'
CLOCK_SKEW: Final = 60  # seconds of leeway for `exp`, `nbf` and `iat` between the minting and the verifying clock
MAX_TTL: Final = 400 * 24 * 3600  # a grant lives at most ~13 months (a station's grant: a year)


class GrantRole(StrEnum):
    """Who a grant lets in."""

    HOST = 'host'  # the room's creator: moderates, invites, and enters as any page
    HOSPITAL = 'hospital'  # a hospital station: the only grant that publishes several cameras
    TECHNICIAN = 'technician'
    GUEST = 'guest'  # a meeting participant


@dataclass(frozen=True, kw_only=True, slots=True)
class Permissions:
    """LiveKit-style video grant of a role."""

    can_publish: bool
    can_publish_sources: tuple[str, ...]
    can_subscribe: bool
    room_admin: bool


ROLE_PERMISSIONS: Final[Mapping[GrantRole, Permissions]] = {
    GrantRole.HOST: Permissions(
        can_publish=True,
        can_publish_sources=('camera', 'microphone', 'screen_share'),
        can_subscribe=True,
        room_admin=True,
    ),
    GrantRole.HOSPITAL: Permissions(
        can_publish=True,
        can_publish_sources=('camera', 'microphone', 'screen_share'),
        can_subscribe=True,
        room_admin=False,
    ),
    GrantRole.TECHNICIAN: Permissions(
        can_publish=True, can_publish_sources=('camera', 'microphone'), can_subscribe=True, room_admin=False
    ),
    GrantRole.GUEST: Permissions(
        can_publish=True,
        can_publish_sources=('camera', 'microphone', 'screen_share'),
        can_subscribe=True,
        room_admin=False,
    ),
}

# The in-room page of each role, and the room role it joins as (the host picks any page).
PAGE_OF: Final[Mapping[GrantRole, str]] = {
    GrantRole.HOSPITAL: 'hospital',
    GrantRole.TECHNICIAN: 'technician',
    GrantRole.GUEST: 'room',
}
ROLE_OF_PAGE: Final[Mapping[str, Role]] = {
    'hospital': Role.HOSPITAL,
    'technician': Role.TECHNICIAN,
    'room': Role.REGULAR,
}
GRANT_OF_ROLE: Final[Mapping[Role, GrantRole]] = {
    Role.HOSPITAL: GrantRole.HOSPITAL,
    Role.TECHNICIAN: GrantRole.TECHNICIAN,
    Role.REGULAR: GrantRole.GUEST,
}
ROLE_WORDS: Final[Mapping[GrantRole, str]] = {
    GrantRole.HOST: 'host',
    GrantRole.HOSPITAL: 'hospital station',
    GrantRole.TECHNICIAN: 'technician',
    GrantRole.GUEST: 'meeting guest',
}


class GrantProblem(StrEnum):
    """Why a grant was refused; a page says only this, never anything about the room."""

    INVALID = 'invalid'  # forged, malformed, wrong secret or issuer
    EXPIRED = 'expired'
    NOT_YET = 'not_yet'  # `nbf` in the future (beyond the clock skew)
    OTHER_ROOM = 'other_room'
    WRONG_ROLE = 'wrong_role'


class GrantError(Exception):
    """A grant that does not let its bearer in here; `problem` says why."""

    def __init__(self, problem: GrantProblem, detail: str = '') -> None:
        super().__init__(f'{problem}: {detail}' if detail else str(problem))
        self.problem = problem


@dataclass(frozen=True, kw_only=True, slots=True)
class Grant:
    """A verified grant: who may enter which room as what, until when."""

    room: str
    role: GrantRole
    jti: str
    iat: int
    exp: int
    name: str | None = None
    title: str | None = None
    approval: bool = False
    room_admin: bool = False

    @property
    def admin(self) -> bool:
        """Whether the bearer moderates the room (the host, or an invite with `roomAdmin`)."""
        return self.room_admin or self.role is GrantRole.HOST

    def page_allowed(self, page: str) -> bool:
        """Whether this grant enters the in-room page `page` (the host enters every page)."""
        return self.role is GrantRole.HOST or PAGE_OF.get(self.role) == page

    def room_role(self, page: str) -> Role:
        """The room role this grant joins `page` as; raises GrantError(WRONG_ROLE) for another role's page."""
        if not self.page_allowed(page) or page not in ROLE_OF_PAGE:
            raise GrantError(GrantProblem.WRONG_ROLE, f'a {self.role} grant does not open the {page!r} page')
        return ROLE_OF_PAGE[page]

    def claims(self) -> dict[str, Any]:
        """The JWT claims of this grant."""
        permissions = ROLE_PERMISSIONS[self.role]
        admin = self.admin
        claims: dict[str, Any] = {
            'iss': ISSUER,
            'aud': AUDIENCE,
            'jti': self.jti,
            'iat': self.iat,
            'nbf': self.iat,
            'exp': self.exp,
            'room': self.room,
            'role': str(self.role),
            'approval': self.approval,
            'video': {
                'room': self.room,
                'roomJoin': True,
                'canPublish': permissions.can_publish,
                'canSubscribe': permissions.can_subscribe,
                'canPublishSources': list(permissions.can_publish_sources),
                'roomAdmin': admin,
            },
            'context': {'user': {'moderator': admin, **({'name': self.name} if self.name else {})}},
        }
        if self.name:
            claims['name'] = self.name
        if self.title:
            claims['title'] = self.title
        return claims


def new_grant(
    *,
    room: str,
    role: GrantRole | str,
    jti: str,
    now: float,
    ttl: float,
    name: str | None = None,
    title: str | None = None,
    approval: bool = False,
    room_admin: bool = False,
) -> Grant:
    """A grant to mint: validated inputs, `iat` now and `exp` after `ttl` seconds."""
    try:
        grant_role = GrantRole(role)
    except ValueError:
        raise InvalidInputError(f'unknown role {role!r}; one of {", ".join(GrantRole)}') from None
    if not 0 < ttl <= MAX_TTL:
        raise InvalidInputError(f'an invite lives between 1 second and {MAX_TTL // 86400} days')
    if not room:
        raise InvalidInputError('an invite names a room')
    if not jti:
        raise InvalidInputError('an invite has an id')
    return Grant(
        room=room,
        role=grant_role,
        jti=jti,
        iat=int(now),
        exp=int(now + ttl),
        name=validate_display_name(name) if name else None,
        title=title or None,
        approval=approval,
        room_admin=room_admin,
    )


def grant_from_claims(
    claims: Mapping[str, Any], *, room: str, page: str | None = None, now: float, leeway: float = CLOCK_SKEW
) -> Grant:
    """Check decoded (signature-verified) claims against the room and page being opened; raise GrantError."""

    def text(key: str, required: bool = True) -> str | None:
        value = claims.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise GrantError(GrantProblem.INVALID, f'claim {key!r} must be a non-empty string')
        return value

    def number(key: str) -> int:
        value = claims.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GrantError(GrantProblem.INVALID, f'claim {key!r} must be a number')
        return int(value)

    if claims.get('iss', ISSUER) != ISSUER:
        raise GrantError(GrantProblem.INVALID, 'unknown issuer')
    exp = number('exp')
    iat = number('iat') if 'iat' in claims else exp
    if now > exp + leeway:
        raise GrantError(GrantProblem.EXPIRED)
    if 'nbf' in claims and now + leeway < number('nbf'):
        raise GrantError(GrantProblem.NOT_YET)
    jti = text('jti')
    granted_room = text('room')
    try:
        role = GrantRole(text('role') or '')
    except ValueError:
        raise GrantError(GrantProblem.INVALID, 'unknown role') from None
    video = claims.get('video', {})
    if not isinstance(video, Mapping):
        raise GrantError(GrantProblem.INVALID, 'claim "video" must be an object')
    if 'room' in video and video['room'] != granted_room:
        raise GrantError(GrantProblem.INVALID, 'video.room differs from room')
    if video.get('roomJoin', True) is not True:
        raise GrantError(GrantProblem.INVALID, 'video.roomJoin is not granted')
    if granted_room != room:
        raise GrantError(GrantProblem.OTHER_ROOM)
    context = claims.get('context')
    user = context.get('user') if isinstance(context, Mapping) else None
    moderator = isinstance(user, Mapping) and user.get('moderator') is True
    name = text('name', required=False)
    try:
        name = validate_display_name(name) if name is not None else None
    except InvalidInputError:
        raise GrantError(GrantProblem.INVALID, 'claim "name" is not a usable display name') from None
    title = claims.get('title')
    grant = Grant(
        room=granted_room,
        role=role,
        jti=jti or '',
        iat=iat,
        exp=exp,
        name=name,
        title=title if isinstance(title, str) and title else None,
        approval=claims.get('approval') is True,
        room_admin=(video.get('roomAdmin') is True or moderator) and role is not GrantRole.HOST,
    )
    if page is not None and not grant.page_allowed(page):
        raise GrantError(GrantProblem.WRONG_ROLE)
    return grant


REFUSALS: Final[Mapping[GrantProblem, str]] = {
    GrantProblem.INVALID: 'This invite link is not valid.',
    GrantProblem.EXPIRED: 'This invite link has expired.',
    GrantProblem.NOT_YET: 'This invite link is not valid yet.',
    GrantProblem.OTHER_ROOM: 'This invite link is for a different room.',
    GrantProblem.WRONG_ROLE: 'This invite link does not open this page.',
}
