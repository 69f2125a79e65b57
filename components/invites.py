"""Signed role invites: `rooms.grants` claims as HS256 JWTs (PyJWT), the secret that signs them, and invite links.

Anyone holding `INVITE_SECRET` can mint a link (a hospital's scheduling system, `scripts/mint-invite`); the app
verifies every token it is shown and never trusts a claim it did not check.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from urllib.parse import quote

import jwt

from rooms.grants import (
    AUDIENCE,
    CLOCK_SKEW,
    Grant,
    GrantError,
    GrantProblem,
    GrantRole,
    grant_from_claims,
    new_grant,
)

ALGORITHM = 'HS256'
MAX_TOKEN_LENGTH = 4096
SECRET_FILE = 'invite-secret'
# Default lifetimes offered in the UI (seconds); a station's grant is long-lived: kept by the scanner-room PC.
TTL_CHOICES = {'1 hour': 3600, '8 hours': 8 * 3600, '24 hours': 86400, '7 days': 7 * 86400, '1 year': 365 * 86400}
STATION_TTL = 365 * 86400
HOST_TTL = 30 * 86400


def mint(
    secret: str,
    *,
    room: str,
    role: GrantRole | str,
    ttl: float,
    name: str | None = None,
    title: str | None = None,
    approval: bool = False,
    room_admin: bool = False,
    now: float | None = None,
) -> tuple[str, Grant]:
    """A signed invite token for `role` in `room`, valid for `ttl` seconds, and the grant it carries."""
    grant = new_grant(
        room=room,
        role=role,
        jti=secrets.token_urlsafe(12),
        now=time.time() if now is None else now,
        ttl=ttl,
        name=name,
        title=title,
        approval=approval,
        room_admin=room_admin,
    )
    return jwt.encode(grant.claims(), secret, algorithm=ALGORITHM), grant


def verify(
    secret: str, token: str, *, room: str, page: str | None = None, now: float | None = None, leeway: float = CLOCK_SKEW
) -> Grant:
    """The grant in `token` if it is signed with `secret`, unexpired (give or take `leeway` seconds of clock skew),
    for `room` and (when given) for the in-room `page`; raises GrantError otherwise."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise GrantError(GrantProblem.INVALID, 'no token')
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={
                'verify_exp': False,  # checked below against `now`, with the leeway
                'verify_nbf': False,
                'verify_iat': False,
                'verify_aud': True,
                'require': ['exp', 'jti', 'room', 'role'],
            },
        )
    except jwt.MissingRequiredClaimError as error:
        raise GrantError(GrantProblem.INVALID, str(error)) from None
    except jwt.InvalidAudienceError:
        raise GrantError(GrantProblem.INVALID, 'audience') from None
    except jwt.PyJWTError as error:  # bad signature, malformed, wrong algorithm
        raise GrantError(GrantProblem.INVALID, type(error).__name__) from None
    return grant_from_claims(claims, room=room, page=page, now=time.time() if now is None else now, leeway=leeway)


def invite_path(grant: Grant, token: str) -> str:
    """The path of an invite link: the role's page (the host's: the lobby) with the token."""
    page = {GrantRole.HOSPITAL: 'hospital', GrantRole.TECHNICIAN: 'technician', GrantRole.GUEST: 'room'}.get(grant.role)
    return f'/{grant.room}' + (f'/{page}' if page else '') + f'?invite={quote(token)}'


def kept_secret(configured: str | None, storage: Path | None = None) -> str:
    """`INVITE_SECRET` when configured; else one generated once into `.nicegui/invite-secret` (0600) and kept, so
    links survive restarts (like the storage secret)."""
    if configured:
        return configured
    folder = storage if storage is not None else Path(os.environ.get('NICEGUI_STORAGE_PATH', '.nicegui'))
    path = folder / SECRET_FILE
    if path.is_file():
        kept = path.read_text().strip()
        if kept:
            return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # 0600 from the start
    with os.fdopen(descriptor, 'w') as file:
        file.write(value)
    return value
