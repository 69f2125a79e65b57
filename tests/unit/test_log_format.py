from __future__ import annotations

import json
import logging

from pages.log_format import JsonFormatter


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord('media.negotiation', logging.WARNING, __file__, 1, message, args, None)


def test_a_json_line_carries_room_and_participant_as_fields() -> None:
    line = JsonFormatter().format(record('room=%s participant=%s: pull failed', 'ward-11', 'ab12cd34'))
    data = json.loads(line)
    assert data['room'] == 'ward-11' and data['participant'] == 'ab12cd34'
    assert data['level'] == 'WARNING' and data['logger'] == 'media.negotiation'
    assert data['message'] == 'room=ward-11 participant=ab12cd34: pull failed'


def test_a_newline_in_a_message_stays_inside_one_line() -> None:
    line = JsonFormatter().format(record('name %s', 'x\n2026-11-30 INFO orange: forged'))
    assert '\n' not in line
    assert json.loads(line)['message'].endswith('forged')
    assert 'room' not in json.loads(line)
