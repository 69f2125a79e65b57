"""The app for the demo: `app.py` as a subprocess on a free loopback port, with the embedded SFU, invite-only rooms
and its own storage, audit trail and secrets in a temporary folder (nothing of the developer's setup is read)."""

from __future__ import annotations

import secrets
from pathlib import Path

from localrun.app import RunningApp
from localrun.app import start_app as start_local_app

# The developer's shell must not turn the demo into something else (Cloudflare, another port, TLS, loss, access).
SCRUBBED_PREFIXES = ('CALLS_', 'TURN_', 'SFU_', 'NICEGUI_', 'TLS_', 'AUDIT_', 'INVITE_', 'ROOM_', 'STORAGE_')


def start_app(workdir: Path, timeout: float = 60.0) -> RunningApp:
    """Start the app in `workdir` (ROOM_ACCESS=invite, embedded SFU on 127.0.0.1) and wait for /healthz."""
    env = {
        'ROOM_ACCESS': 'invite',
        'INVITE_SECRET': secrets.token_urlsafe(32),
        'AUDIT_DB': str(workdir / 'audit.db'),
    }
    return start_local_app(workdir, env, timeout, scrubbed_prefixes=SCRUBBED_PREFIXES)
