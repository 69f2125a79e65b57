"""Operator commands for the audit log.

    python -m audit verify [--db PATH]              OK with the record count, or the first broken record (exit 1)
    python -m audit export --room ROOM [--db PATH]  the room's records as CSV on stdout (or --out FILE)

The file is AUDIT_DB (environment, .env or .dev.vars), else .nicegui/audit.db; it is opened read-only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from audit.salt import default_db_path
from audit.store import AuditError, AuditLog


def main(argv: list[str] | None = None) -> int:
    """Run one command; the exit status is 0 (OK), 1 (chain broken) or 2 (cannot read the log, bad arguments)."""
    parser = argparse.ArgumentParser(prog='python -m audit', description='Verify or export the audit trail.')
    commands = parser.add_subparsers(dest='command', required=True)
    check = commands.add_parser('verify', help='verify the hash chain; name the first broken record')
    check.add_argument('--db', type=Path, help='the audit log (default: AUDIT_DB, else .nicegui/audit.db)')
    export = commands.add_parser('export', help="print one room's records as CSV")
    export.add_argument('--db', type=Path, help='the audit log (default: AUDIT_DB, else .nicegui/audit.db)')
    export.add_argument('--room', required=True, help="the room's address name")
    export.add_argument('--out', type=Path, help='write the CSV here instead of stdout')
    args = parser.parse_args(argv)
    path = args.db or configured_db_path()
    try:
        log = AuditLog.open(path, client_salt=b'', readonly=True)
        try:
            if args.command == 'verify':
                return _verify(log)
            text = log.export_csv(args.room)
        finally:
            log.close()
    except AuditError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    if args.out is not None:
        args.out.write_text(text, encoding='utf-8', newline='')
    else:
        sys.stdout.write(text)
    return 0


def _verify(log: AuditLog) -> int:
    result = log.verify()
    print(f'{log.path}: {result.describe()}')
    missing = log.missing_triggers()
    if missing:
        print(f'warning: append-only triggers missing: {", ".join(missing)}', file=sys.stderr)
    return 0 if result.ok else 1


def configured_db_path() -> Path:
    """AUDIT_DB as the app reads it (environment, .env, .dev.vars), else the default next to NiceGUI's storage."""
    try:
        from settings import SettingsError, load_settings
    except ImportError:  # installed without the app's settings module
        value = os.environ.get('AUDIT_DB')
        return Path(value) if value else default_db_path()
    try:
        configured = load_settings().audit_db
    except SettingsError:  # another variable is invalid: the verifier still works from the environment
        value = os.environ.get('AUDIT_DB')
        return Path(value) if value else default_db_path()
    return configured if configured is not None else default_db_path()


if __name__ == '__main__':
    sys.exit(main())
