"""CSV of audit records, safe to open in a spreadsheet. Pure."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from audit.chain import AuditRecord
from audit.fields import canonical_json

COLUMNS = ('seq', 'time_utc', 'kind', 'room', 'actor', 'subject', 'client_hash', 'details', 'hash')
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (OWASP "CSV injection").
FORMULA_STARTS = ('=', '+', '-', '@', '\t', '\r', '\n')


def records_csv(records: Iterable[AuditRecord]) -> str:
    """RFC 4180 CSV (CRLF, quoted when needed) with a header; text cells that could run as formulas get a `'`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\r\n')
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(
            [
                record.seq,
                cell(record.at),
                cell(record.kind),
                cell(record.room),
                cell(record.actor),
                cell(record.subject or ''),
                cell(record.client or ''),
                cell(canonical_json(record.details) if record.details else ''),
                cell(record.hash),
            ]
        )
    return out.getvalue()


def cell(text: str) -> str:
    """`text`, prefixed with a single quote when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text
