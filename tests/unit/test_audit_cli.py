"""`python -m audit verify|export` as an operator runs it (a subprocess on a real file)."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from audit import AuditLog

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, 'PYTHONPATH': str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, '-m', 'audit', *args], capture_output=True, text=True, env=environment, cwd=ROOT, timeout=60
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / 'audit.db'
    log = AuditLog.open(path, client_salt=b'salt')
    log.record('room_created', room='ward-7', actor='Dr. Lee')
    log.record('admitted', room='ward-7', actor='Dr. Lee', subject='=cmd|"/c calc"!A1')
    log.record('watch_started', room='ward-7', actor='Tech, "Kim"', subject='MRI bore', client='10.1.2.3')
    log.record('joined', room='ct-1', actor='someone')
    log.close()
    return path


def test_verify_a_good_log(db: Path) -> None:
    result = run('verify', '--db', str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f'{db}: OK: 4 records, hash chain intact'


def test_verify_reads_audit_db_from_the_environment(db: Path) -> None:
    result = run('verify', env={'AUDIT_DB': str(db)})
    assert result.returncode == 0 and 'OK: 4 records' in result.stdout


def test_verify_names_the_first_tampered_record(db: Path) -> None:
    with sqlite3.connect(db, isolation_level=None) as connection:
        connection.execute('DROP TRIGGER audit_log_no_update')
        connection.execute("UPDATE audit_log SET subject = 'CT gantry' WHERE seq = 3")
    result = run('verify', '--db', str(db))
    assert result.returncode == 1
    assert 'BROKEN at record 3: hash mismatch' in result.stdout
    assert 'triggers missing: audit_log_no_update' in result.stderr


def test_verify_a_missing_file_is_an_error_not_ok(tmp_path: Path) -> None:
    result = run('verify', '--db', str(tmp_path / 'nope.db'))
    assert result.returncode == 2 and 'no audit log' in result.stderr
    (tmp_path / 'other.db').write_text('not a database')
    result = run('verify', '--db', str(tmp_path / 'other.db'))
    assert result.returncode == 2 and 'not a database' in result.stderr


def test_export_prints_the_rooms_csv(db: Path, tmp_path: Path) -> None:
    result = run('export', '--room', 'ward-7', '--db', str(db))
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert [row[2] for row in rows[1:]] == ['room_created', 'admitted', 'watch_started']
    assert rows[2][5] == '\'=cmd|"/c calc"!A1' and rows[3][4] == 'Tech, "Kim"'
    out = tmp_path / 'ward.csv'
    assert run('export', '--room', 'ward-7', '--db', str(db), '--out', str(out)).returncode == 0
    written = out.read_bytes().decode('utf-8')
    assert written.endswith('\r\n') and list(csv.reader(io.StringIO(written))) == rows
