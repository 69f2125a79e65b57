"""The secret that keys the hash of client addresses: configured (AUDIT_SALT), or generated once into a 0600 file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SALT_FILE = 'audit-salt'


def storage_dir() -> Path:
    """NiceGUI's storage directory, where the app keeps its generated secrets and, by default, the audit log."""
    return Path(os.environ.get('NICEGUI_STORAGE_PATH', '.nicegui'))


def default_db_path() -> Path:
    """Where the audit log lives when AUDIT_DB is not set."""
    return storage_dir() / 'audit.db'


def client_salt(configured: str | None, path: Path | None = None) -> bytes:
    """`configured` (AUDIT_SALT) as bytes, else the salt kept in `path` (default .nicegui/audit-salt), made once.

    Keep the file: with a new salt the same address hashes differently, so old and new records no longer match.
    """
    if configured:
        return configured.encode('utf-8')
    path = path if path is not None else storage_dir() / SALT_FILE
    if path.is_file():
        kept = path.read_text().strip()
        if kept:
            return kept.encode('utf-8')
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # 0600 from the start
    with os.fdopen(descriptor, 'w') as file:
        file.write(value)
    return value.encode('utf-8')
