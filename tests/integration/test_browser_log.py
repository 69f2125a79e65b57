"""A page cannot forge lines in, or flood, the server log through NiceGUI's `log` socket event (issue #10)."""

from __future__ import annotations

import logging

import pytest
from nicegui import core
from nicegui.client import Client
from nicegui.testing import User

from pages import browser_log


async def test_the_app_uses_our_log_handler(user: User) -> None:
    await user.open('/')
    assert core.sio.handlers['/']['log'] is browser_log.on_log


async def test_a_message_is_one_short_escaped_debug_line(user: User, caplog: pytest.LogCaptureFixture) -> None:
    await user.open('/')
    client_id = next(iter(Client.instances))
    forged = 'x\n2026-11-30 12:00:00 INFO orange: admin logged in\r\n' + 'y' * 10_000_000
    with caplog.at_level(logging.DEBUG, logger='orange.browser'):
        browser_log.on_log('sid', {'client_id': client_id, 'level': 'error', 'message': forged})
    records = [r for r in caplog.records if r.name == 'orange.browser']
    assert len(records) == 1
    line = records[0].getMessage()
    assert records[0].levelno == logging.DEBUG
    assert '\n' not in line and '\r' not in line
    assert '\\n2026-11-30' in line
    assert len(line) < browser_log.MAX_CHARS + 100


async def test_a_flood_is_rate_limited_and_unknown_clients_are_ignored(
    user: User, caplog: pytest.LogCaptureFixture
) -> None:
    await user.open('/')
    client_id = next(iter(Client.instances))
    with caplog.at_level(logging.DEBUG, logger='orange.browser'):
        for _ in range(1_000):
            browser_log.on_log('sid', {'client_id': client_id, 'level': 'info', 'message': 'spam'})
        browser_log.on_log('sid', {'client_id': 'not-a-client', 'level': 'info', 'message': 'forged'})
        browser_log.on_log('sid', ['not', 'a', 'dict'])
        browser_log.on_log('sid', {'client_id': client_id, 'level': 'critical', 'message': 42})
    lines = [r.getMessage() for r in caplog.records if r.name == 'orange.browser']
    assert 1 <= len(lines) <= 20
    assert not any('forged' in line for line in lines)
