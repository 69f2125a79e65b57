"""The host's audit view (NiceGUI `user` fixture): the room's trail newest first, refresh, CSV download."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from nicegui import app, ui
from nicegui.testing import User

from audit import AuditLog
from components.audit_view import AuditView, csv_filename


def table_rows(user: User) -> list[dict[str, object]]:
    (table,) = user.find(marker='audit-table').elements
    assert isinstance(table, ui.table)
    return list(table.rows)


async def test_the_host_sees_the_rooms_trail_newest_first_refreshes_and_exports(user: User, tmp_path: Path) -> None:
    audit = AuditLog.open(tmp_path / 'audit.db', client_salt=b'salt')
    audit.record('room_created', room='ward-7', actor='Dr. Lee')
    audit.record('watch_started', room='ward-7', actor='Tech Kim', subject='MRI bore', client='10.0.0.9')
    audit.record('joined', room='ct-1', actor='Somebody elsewhere')

    @ui.page('/_test/audit/view')
    def page() -> None:
        AuditView(audit, 'ward-7', auto_refresh=None)

    await user.open('/_test/audit/view')
    await user.should_see('Audit trail')
    rows = table_rows(user)
    assert [(r['what'], r['who'], r['subject']) for r in rows] == [
        ('started watching', 'Tech Kim', 'MRI bore'),
        ('created the room', 'Dr. Lee', ''),
    ]
    assert re.fullmatch(r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}', str(rows[0]['time']))

    audit.record('watch_stopped', room='ward-7', actor='Tech Kim', subject='MRI bore')
    user.find(marker='audit-refresh').click()
    assert table_rows(user)[0]['what'] == 'stopped watching'

    user.find(marker='audit-export').click()
    response = await user.download.next()
    exported = list(csv.reader(io.StringIO(response.text)))
    assert [row[2] for row in exported[1:]] == ['room_created', 'watch_started', 'watch_stopped']
    audit.close()


async def test_the_app_opens_the_audit_log(user: User) -> None:
    await user.open('/')
    assert isinstance(app.state.audit, AuditLog)
    assert app.state.audit.verify().ok


def test_the_csv_file_name_carries_the_room_and_time_only_safely() -> None:
    moment = datetime(2026, 11, 30, 12, 5, 6, tzinfo=UTC)
    assert csv_filename('ward-7', moment) == 'audit-ward-7-20261130T120506Z.csv'
    assert csv_filename('../x y"', moment) == 'audit-_x_y_-20261130T120506Z.csv'
