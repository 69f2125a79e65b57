"""What a page may write into the server log: NiceGUI's `log` socket event, replaced.

NiceGUI's own handler writes whatever a page sends, at the level the page chooses, one log line per message: a
modified page could forge genuine-looking lines (newlines included) or write megabytes a second. Ours keeps the
first ``MAX_CHARS`` characters, escapes every control character (one message is one line), logs at DEBUG under
``orange.browser`` with the client's id, drops messages from unknown clients, and rate-limits each client.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nicegui import core
from nicegui.client import Client

from rooms.limits import BucketMap

log = logging.getLogger('orange.browser')
MAX_CHARS = 300
_buckets = BucketMap(rate=1.0, burst=10.0)


def clean(message: object) -> str:
    """One printable line of at most ``MAX_CHARS`` characters (plus an ellipsis when cut)."""
    if not isinstance(message, str):
        return f'<{type(message).__name__}>'
    cut = message[: MAX_CHARS + 1]
    text = ''.join(c if c.isprintable() else c.encode('unicode_escape').decode('ascii') for c in cut[:MAX_CHARS])
    return text + '…' if len(cut) > MAX_CHARS else text


def on_log(_: str, msg: Any) -> None:
    """The `log` event of a page's socket."""
    if not isinstance(msg, dict):
        return
    client_id = msg.get('client_id')
    if not isinstance(client_id, str) or client_id not in Client.instances:
        return
    if not _buckets.take(client_id, time.monotonic()):
        return
    level = msg.get('level') if msg.get('level') in {'debug', 'info', 'warning', 'error'} else 'unknown'
    log.debug('browser client=%s %s: %s', client_id, level, clean(msg.get('message')))


def install() -> None:
    """Take over the `log` event from NiceGUI's handler."""
    core.sio.on('log', on_log)
