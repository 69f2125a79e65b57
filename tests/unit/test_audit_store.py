"""AuditLog on a real SQLite file: appends, append-only triggers, tampering found by verify, no raw addresses."""

from __future__ import annotations

import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit import AuditError, AuditLog
from audit.salt import client_salt

SALT = b'test-salt'


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=250)
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / 'audit' / 'audit.db'


@pytest.fixture
def log(db: Path) -> Iterator[AuditLog]:
    audit = AuditLog.open(db, client_salt=SALT, clock=Clock())
    yield audit
    audit.close()


def fill(log: AuditLog, n: int = 6) -> None:
    for i in range(n):
        log.record('joined', room='ward-7' if i % 2 else 'ct-1', actor=f'person {i}', client=f'10.0.0.{i}')


def raw(db: Path) -> sqlite3.Connection:
    """A connection that bypasses the app: what someone with the file could do."""
    return sqlite3.connect(db, isolation_level=None)


def test_record_appends_and_returns_the_stored_record(log: AuditLog, db: Path) -> None:
    first = log.record('room_created', room='ward-7', actor='Dr. Lee', details={'cameras': 2})
    second = log.record('admitted', room='ward-7', actor='Dr. Lee', subject='Tech Kim', client='192.0.2.1')
    assert (first.seq, second.seq) == (1, 2) and second.prev_hash == first.hash
    assert first.at == '2026-11-30T12:00:00.250Z'
    assert log.records('ward-7') == [first, second]
    assert log.verify().ok and log.verify().count == 2
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_records_filters_by_room_and_keeps_the_newest(log: AuditLog) -> None:
    fill(log, 10)
    ward = log.records('ward-7')
    assert [r.seq for r in ward] == [2, 4, 6, 8, 10]
    assert [r.seq for r in log.records('ward-7', limit=2)] == [8, 10]
    assert len(log.records()) == 10 and log.records('nowhere') == []


def test_the_log_survives_reopening(db: Path, log: AuditLog) -> None:
    fill(log, 3)
    log.close()
    again = AuditLog.open(db, client_salt=SALT)
    try:
        assert again.record('left', room='ct-1', actor='x').seq == 4
        assert again.verify().ok
    finally:
        again.close()


def test_update_and_delete_are_refused_by_the_database(log: AuditLog, db: Path) -> None:
    fill(log, 3)
    with raw(db) as connection:
        with pytest.raises(sqlite3.IntegrityError, match='append-only'):
            connection.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        with pytest.raises(sqlite3.IntegrityError, match='append-only'):
            connection.execute('DELETE FROM audit_log WHERE seq = 3')
        with pytest.raises(sqlite3.IntegrityError, match='append-only'):  # REPLACE would delete without the trigger
            connection.execute(
                'INSERT OR REPLACE INTO audit_log (seq, at, kind, room, actor, details, prev_hash, hash) '
                "VALUES (2, 't', 'joined', 'r', 'mallory', '{}', 'x', 'y')"
            )
    assert log.verify().ok and log.verify().count == 3


def tamper(db: Path, sql: str) -> None:
    with raw(db) as connection:
        connection.execute('DROP TRIGGER audit_log_no_update')
        connection.execute('DROP TRIGGER audit_log_no_delete')
        connection.execute(sql)


def test_a_row_changed_in_the_file_is_found(log: AuditLog, db: Path) -> None:
    fill(log)
    tamper(db, "UPDATE audit_log SET actor = 'someone else' WHERE seq = 4")
    result = log.verify()
    assert not result.ok and result.broken_seq == 4 and result.reason is not None and 'hash mismatch' in result.reason
    assert log.missing_triggers() == ['audit_log_no_update', 'audit_log_no_delete']


def test_a_row_deleted_from_the_file_is_a_gap(log: AuditLog, db: Path) -> None:
    fill(log)
    tamper(db, 'DELETE FROM audit_log WHERE seq = 3')
    result = log.verify()
    assert not result.ok and result.broken_seq == 4 and result.reason == 'gap in seq: expected record 3, found 4'


def test_a_broken_link_is_found(log: AuditLog, db: Path) -> None:
    fill(log)
    tamper(db, "UPDATE audit_log SET prev_hash = '" + 'f' * 64 + "' WHERE seq = 5")
    result = log.verify()
    assert not result.ok and result.broken_seq == 5 and result.reason is not None and 'broken link' in result.reason


def test_unreadable_details_are_a_mismatch_not_a_crash(log: AuditLog, db: Path) -> None:
    fill(log)
    tamper(db, "UPDATE audit_log SET details = 'not json' WHERE seq = 2")
    assert log.verify().broken_seq == 2


def test_client_addresses_are_never_stored_raw(log: AuditLog, db: Path) -> None:
    address = '198.51.100.23'
    record = log.record('knock', room='ward-7', actor='guest', client=address, details={'note': 'hi'})
    assert record.client is not None and len(record.client) == 16 and address not in record.client
    log.close()
    for path in db.parent.iterdir():  # the database, its WAL and shared-memory files
        assert address.encode() not in path.read_bytes(), path.name
    other = AuditLog.open(db.parent / 'other.db', client_salt=b'another salt')
    try:
        assert other.record('knock', room='r', actor='g', client=address).client != record.client
    finally:
        other.close()


def test_odd_input_is_stored_not_raised(log: AuditLog) -> None:
    record = log.record(
        'x' * 100,
        room=None,  # type: ignore[arg-type]
        actor='a' * 10_000,
        subject=12,  # type: ignore[arg-type]
        client=('1.2.3.4', 5),  # type: ignore[arg-type]
        details={'bad': object(), 'nan': float('nan'), 'long': 'z' * 100_000},
    )
    assert record.room == 'None' and len(record.actor) == 200 and record.subject == '12' and len(record.kind) == 40
    assert record.details['nan'] == 'nan' and len(str(record.details['long'])) == 200
    assert log.records() == [record] and log.verify().ok


def test_concurrent_writers_keep_one_unbroken_chain(log: AuditLog) -> None:
    def write(k: int) -> None:
        for i in range(25):
            log.record('watch_started', room='ward-7', actor=f'w{k}', subject=f'camera {i}')

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = log.verify()
    assert result.ok and result.count == 100


def test_a_closed_log_raises_audit_error(log: AuditLog) -> None:
    log.close()
    with pytest.raises(AuditError):
        log.record('joined', room='r', actor='a')


def test_readonly_open_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match='no audit log'):
        AuditLog.open(tmp_path / 'missing.db', client_salt=b'', readonly=True)
    assert not (tmp_path / 'missing.db').exists()


def test_the_salt_is_configured_or_generated_once_into_a_private_file(tmp_path: Path) -> None:
    assert client_salt('from-env', tmp_path / 'unused') == b'from-env'
    assert not (tmp_path / 'unused').exists()
    path = tmp_path / 'store' / 'audit-salt'
    first = client_salt(None, path)
    assert len(first) == 64 and client_salt(None, path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
