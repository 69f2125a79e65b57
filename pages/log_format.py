"""Log lines a machine can read (``LOG_FORMAT=json``): one JSON object per line, with the room and participant as
fields of their own.

Our log messages name them as ``room=<name>`` and ``participant=<id>`` (never a whole object's repr); this formatter
lifts those into ``room`` and ``participant`` so an auditor's or operator's tooling can filter a room's lines without
parsing prose. Messages are JSON-escaped, so a newline in one can never start a forged line.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_FIELDS = re.compile(r'\b(room|participant)=([^\s:;,]+)')


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "room"?, "participant"?, "exception"?}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, str] = {
            'time': datetime.fromtimestamp(record.created, UTC).isoformat(timespec='milliseconds'),
            'level': record.levelname,
            'logger': record.name,
            'message': message,
        }
        for name, value in _FIELDS.findall(message):
            line.setdefault(name, value)
        if record.exc_info:
            line['exception'] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """Root logging as ``fmt`` says: ``text`` (human lines) or ``json``."""
    handler = logging.StreamHandler()
    if fmt == 'json':
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
    logging.basicConfig(level=level.upper(), handlers=[handler])
