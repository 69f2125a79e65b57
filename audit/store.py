"""AuditLog: the hash chain kept in an append-only SQLite table (stdlib sqlite3, WAL, file mode 0600).

Append-only is enforced twice: SQL triggers abort every UPDATE and DELETE (and any INSERT that is not the next link),
and the hash chain (audit.chain) shows any change made by someone who bypassed SQLite's rules with the file itself.

A `record` call is one short write transaction (a few hundred microseconds, see bench/audit.py), cheap enough to run
on the event loop. Odd input never raises; a storage failure (disk full, file gone) raises AuditError.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from audit.chain import GENESIS, AuditRecord, VerifyResult, seal, verify
from audit.export import records_csv
from audit.fields import bound_details, bound_kind, bound_optional, bound_text, canonical_json, format_at, hash_client

log = logging.getLogger('orange.audit')

SCHEMA_VERSION = 1
COLUMNS = 'seq, at, kind, room, actor, subject, client, details, prev_hash, hash'
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    room TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT,
    client TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_room ON audit_log (room, seq);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_next_link_only BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
  OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), '{GENESIS}')
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: only the next link of the chain may be inserted'); END;
"""
TRIGGERS = ('audit_log_no_update', 'audit_log_no_delete', 'audit_log_next_link_only')


class AuditError(RuntimeError):
    """The audit log could not be opened, read or written (the message says which file and why)."""


class AuditLog:
    """The append-only audit trail of every room. Open with `AuditLog.open(path, client_salt=...)`."""

    def __init__(self, connection: sqlite3.Connection, path: Path, client_salt: bytes, clock: Callable[[], datetime]):
        self._db = connection
        self._path = path
        self._salt = client_salt
        self._clock = clock
        self._lock = threading.Lock()  # one writer at a time within the process; BEGIN IMMEDIATE across processes

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        client_salt: bytes,
        clock: Callable[[], datetime] | None = None,
        readonly: bool = False,
    ) -> AuditLog:
        """Open (creating it 0600, with its parent directory) the log at `path`.

        `client_salt` keys the hash of client addresses; `clock` (default: now, UTC) stamps records; `readonly`
        opens an existing file without creating or changing anything (for the verifier).
        """
        path = Path(path)
        try:
            if readonly:
                if not path.is_file():
                    raise AuditError(f'no audit log at {path}')
                connection = sqlite3.connect(f'{path.resolve().as_uri()}?mode=ro', uri=True, check_same_thread=False)
            else:
                _create_private(path)
                connection = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
                connection.execute('PRAGMA journal_mode=WAL')
                connection.execute('PRAGMA synchronous=NORMAL')  # durable across app crashes; see README
                connection.executescript(SCHEMA)
                connection.execute(f'PRAGMA user_version={SCHEMA_VERSION}')
        except sqlite3.Error as error:
            raise AuditError(f'cannot open the audit log at {path}: {error}') from error
        return cls(connection, path, client_salt, clock or (lambda: datetime.now(UTC)))

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def record(
        self,
        kind: str,
        *,
        room: str,
        actor: str,
        subject: str | None = None,
        client: str | None = None,
        details: dict[str, object] | None = None,
    ) -> AuditRecord:
        """Append one record and return it. `client` is the raw client address: only its salted hash is stored.

        Strings are cut at 200 characters and details at ~2 kB; a value of an unexpected type is stored as text.
        Raises AuditError only when the file cannot be written.
        """
        kind, room, actor = bound_kind(kind), bound_text(room), bound_text(actor)
        subject, hashed, bounded = bound_optional(subject), hash_client(client, self._salt), bound_details(details)
        with self._lock:
            try:
                self._db.execute('BEGIN IMMEDIATE')
                try:
                    at = format_at(self._clock())
                    record = seal(
                        self._last(),
                        at=at,
                        kind=kind,
                        room=room,
                        actor=actor,
                        subject=subject,
                        client=hashed,
                        details=bounded,
                    )
                    self._db.execute(
                        f'INSERT INTO audit_log ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', _row(record)
                    )
                    self._db.execute('COMMIT')
                except BaseException:
                    self._db.execute('ROLLBACK')
                    raise
            except sqlite3.Error as error:
                log.error('audit log %s: could not append %s in room %s: %s', self._path, kind, room, error)
                raise AuditError(f'cannot write the audit log at {self._path}: {error}') from error
        return record

    def records(self, room: str | None = None, *, limit: int = 1000) -> list[AuditRecord]:
        """The newest `limit` records (of `room`, or of every room), oldest first."""
        where, params = ('WHERE room = ?', [room]) if room is not None else ('', [])
        query = f'SELECT {COLUMNS} FROM audit_log {where} ORDER BY seq DESC LIMIT ?'
        rows = self._query(query, (*params, max(0, limit)))
        return [_record(row) for row in reversed(rows)]

    def verify(self) -> VerifyResult:
        """Verify the whole chain, streaming it from the file in seq order."""
        with self._lock:
            try:
                return verify(_record(row) for row in self._db.execute(f'SELECT {COLUMNS} FROM audit_log ORDER BY seq'))
            except sqlite3.Error as error:
                raise AuditError(f'cannot read the audit log at {self._path}: {error}') from error

    def export_csv(self, room: str) -> str:
        """Every record of `room`, oldest first, as spreadsheet-safe CSV."""
        rows = self._query(f'SELECT {COLUMNS} FROM audit_log WHERE room = ? ORDER BY seq', (room,))
        return records_csv(_record(row) for row in rows)

    def missing_triggers(self) -> list[str]:
        """The append-only triggers that are not in the file (someone dropped them); empty when all are there."""
        present = {row[0] for row in self._query("SELECT name FROM sqlite_master WHERE type = 'trigger'", ())}
        return [name for name in TRIGGERS if name not in present]

    def close(self) -> None:
        """Close the file; later calls raise AuditError."""
        with self._lock:
            self._db.close()

    def _last(self) -> AuditRecord | None:
        row = self._db.execute(f'SELECT {COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1').fetchone()
        return None if row is None else _record(row)

    def _query(self, query: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return list(self._db.execute(query, params))
            except sqlite3.Error as error:
                raise AuditError(f'cannot read the audit log at {self._path}: {error}') from error


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite does (SQLite gives its -wal and -shm files the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    try:
        path.chmod(0o600)
    except OSError:  # not ours: leave it, SQLite will say whether it can be used
        pass


def _row(record: AuditRecord) -> tuple[object, ...]:
    return (
        record.seq,
        record.at,
        record.kind,
        record.room,
        record.actor,
        record.subject,
        record.client,
        canonical_json(record.details),
        record.prev_hash,
        record.hash,
    )


def _record(row: tuple[object, ...]) -> AuditRecord:
    """A stored row as a record; a row damaged beyond reading still becomes a record (whose hash will not match)."""
    seq, at, kind, room, actor, subject, client, details, prev_hash, hash_ = row
    return AuditRecord(
        seq=seq if isinstance(seq, int) else -1,
        at=str(at),
        kind=str(kind),
        room=str(room),
        actor=str(actor),
        subject=None if subject is None else str(subject),
        client=None if client is None else str(client),
        details=_details(details),
        prev_hash=str(prev_hash),
        hash=str(hash_),
    )


def _details(text: object) -> dict[str, object]:
    try:
        value = json.loads(str(text))
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {'_unreadable': str(text)}
