"""The host's view of a room's audit trail: a table (newest first) with Refresh and Export CSV.

Which pages show it is the caller's decision: place it only in the host's UI. The view only reads the log.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from nicegui import ui

from audit import AuditError, AuditLog, AuditRecord
from components.testid import testid

log = logging.getLogger('orange.audit')

# What each kind reads as in the table; any other kind is shown as stored.
KIND_LABELS = {
    'room_created': 'created the room',
    'invite_minted': 'created an invite',
    'knock': 'knocked',
    'admitted': 'admitted',
    'denied': 'denied',
    'joined': 'joined',
    'left': 'left',
    'removed': 'removed',
    'locked': 'locked the room',
    'unlocked': 'unlocked the room',
    'muted': 'muted',
    'watch_started': 'started watching',
    'watch_stopped': 'stopped watching',
}
COLUMNS = [
    {'name': 'time', 'label': 'Time (UTC)', 'field': 'time', 'align': 'left'},
    {'name': 'what', 'label': 'What', 'field': 'what', 'align': 'left'},
    {'name': 'who', 'label': 'Who', 'field': 'who', 'align': 'left'},
    {'name': 'subject', 'label': 'Subject', 'field': 'subject', 'align': 'left'},
]


class AuditView:
    """`room`'s newest `limit` records from `audit`; `refresh()` re-reads them (also every `auto_refresh` s)."""

    def __init__(self, audit: AuditLog, room: str, *, limit: int = 500, auto_refresh: float | None = 5.0) -> None:
        self.audit = audit
        self.room = room
        self.limit = limit
        self._shown: int | None = None  # seq of the newest record on screen
        with testid(ui.card(), 'audit-view').classes('w-full gap-2'):
            with ui.row().classes('w-full items-center'):
                ui.label('Audit trail').classes('font-semibold')
                ui.space()
                refresh = ui.button(icon='refresh', on_click=self.refresh).props('flat round dense')
                testid(refresh.tooltip('Reload the trail'), 'audit-refresh')
                testid(ui.button('Export CSV', icon='download', on_click=self.export).props('flat'), 'audit-export')
            self.table = testid(ui.table(columns=COLUMNS, rows=[], row_key='seq', pagination=25), 'audit-table')
            self.table.classes('w-full').props('dense flat')
        self.refresh()
        if auto_refresh:
            ui.timer(auto_refresh, self.refresh)

    def refresh(self) -> None:
        """Show the newest records again (the table is only rebuilt when there is something new)."""
        try:
            records = self.audit.records(self.room, limit=self.limit)
        except AuditError as error:
            log.error('audit view of room %s: %s', self.room, error)
            return
        newest = records[-1].seq if records else 0
        if newest == self._shown:
            return
        self._shown = newest
        self.table.rows = [table_row(record) for record in reversed(records)]
        self.table.update()

    def export(self) -> None:
        """Download every record of the room as CSV."""
        try:
            text = self.audit.export_csv(self.room)
        except AuditError as error:
            log.error('audit export of room %s: %s', self.room, error)
            ui.notify('The audit trail could not be read; see the server log.', type='negative')
            return
        ui.download.content(text.encode('utf-8'), csv_filename(self.room, datetime.now(UTC)), 'text/csv')


def table_row(record: AuditRecord) -> dict[str, object]:
    """One table row: time without the date's 'T', a readable kind, the actor and the subject."""
    return {
        'seq': record.seq,
        'time': record.at.replace('T', ' ').removesuffix('Z'),
        'what': KIND_LABELS.get(record.kind, record.kind),
        'who': record.actor,
        'subject': record.subject or '',
    }


def csv_filename(room: str, now: datetime) -> str:
    """audit-<room>-<UTC time>.csv, with only letters, digits, '-' and '_' from the room's name."""
    safe = re.sub(r'[^A-Za-z0-9_-]+', '_', room)[:60] or 'room'
    return f'audit-{safe}-{now:%Y%m%dT%H%M%SZ}.csv'
