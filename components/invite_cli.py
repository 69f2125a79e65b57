"""`scripts/mint-invite`: mint a signed role invite link from the command line (operators, scheduling systems).

    scripts/mint-invite --room k3j5qz7m2a4b6c8d0e2f4g6h --role technician --ttl 8h [--name "Tech Tom"]

Prints the link. The secret is the app's: INVITE_SECRET (environment, .env or .dev.vars, as the app reads them), else
the one the app generated and keeps in .nicegui/invite-secret ($NICEGUI_STORAGE_PATH). The minting is recorded in
the audit trail when it can be opened.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from components.invites import invite_path, kept_secret, mint
from rooms import InvalidInputError, validate_room_name
from rooms.grants import MAX_TTL, GrantRole

ROLE_NAMES = {'hospital': 'hospital', 'station': 'hospital', 'technician': 'technician', 'guest': 'guest'}
ROLE_NAMES |= {'meeting': 'guest', 'host': 'host'}
UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}


def parse_ttl(text: str) -> int:
    """'90s', '30m', '8h', '7d', '2w' or plain seconds."""
    match = re.fullmatch(r'\s*(\d+)\s*([smhdw]?)\s*', text.lower())
    if not match:
        raise argparse.ArgumentTypeError(f'{text!r} is not a duration such as 30m, 8h, 7d')
    seconds = int(match.group(1)) * UNITS[match.group(2) or 's']
    if not 0 < seconds <= MAX_TTL:
        raise argparse.ArgumentTypeError(f'an invite lives between 1 second and {MAX_TTL // 86400} days')
    return seconds


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='scripts/mint-invite', description='Mint a signed role invite link.')
    p.add_argument('--room', required=True, help="the room's address (the part of its URL after the host)")
    p.add_argument('--role', required=True, choices=sorted(ROLE_NAMES), help='who the link lets in')
    p.add_argument('--ttl', type=parse_ttl, default=parse_ttl('8h'), help='how long the link works: 30m, 8h, 7d …')
    p.add_argument('--name', help='fixed (verified) display name, e.g. "Ward 7 — MRI bore" for a station')
    p.add_argument('--title', help='readable room name shown to the invitee')
    p.add_argument('--approval', action='store_true', help='the invitee waits in the waiting room to be admitted')
    p.add_argument('--admin', action='store_true', help='the invitee may moderate (video.roomAdmin)')
    p.add_argument('--base-url', help='where the app is reached (default: from HOST, PORT and TLS settings)')
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from settings import SettingsError, load_settings

    try:
        settings = load_settings()
        validate_room_name(args.room)
    except (SettingsError, InvalidInputError) as error:
        print(error, file=sys.stderr)
        return 2
    configured = settings.invite_secret.get_secret_value() if settings.invite_secret is not None else None
    secret = kept_secret(configured)
    role = GrantRole(ROLE_NAMES[args.role])
    try:
        token, grant = mint(
            secret,
            room=args.room,
            role=role,
            ttl=args.ttl,
            name=args.name,
            title=args.title,
            approval=args.approval,
            room_admin=args.admin,
        )
    except InvalidInputError as error:
        print(error, file=sys.stderr)
        return 2
    base = args.base_url or default_base_url(settings.host, settings.port, settings.tls_enabled)
    print(base.rstrip('/') + invite_path(grant, token))
    record_minting(settings, grant.room, role, grant.jti, grant.exp, args.name)
    return 0


def default_base_url(host: str, port: int, tls: bool) -> str:
    shown = '127.0.0.1' if host in {'0.0.0.0', '::'} else host
    return f'{"https" if tls else "http"}://{shown}:{port}'


def record_minting(settings: object, room: str, role: GrantRole, jti: str, exp: int, name: str | None) -> None:
    """Add the minting to the audit trail; a trail that cannot be opened does not stop the link."""
    try:
        from app import open_audit

        audit = open_audit(settings)  # type: ignore[arg-type]
        try:
            audit.record(
                'invite_minted',
                room=room,
                actor='scripts/mint-invite',
                subject=name,
                details={'role': str(role), 'jti': jti, 'exp': exp},
            )
        finally:
            audit.close()
    except Exception as error:
        print(f'(not recorded in the audit trail: {error})', file=sys.stderr)


if __name__ == '__main__':
    sys.exit(main())
