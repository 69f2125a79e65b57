"""A toast when the page's own connection becomes unstable, and another when it recovers.

The browser's quality monitor (`components/js/quality.js`) decides: it reports only flips of its degraded state,
as the `quality` event of the page's `MediaSession`, so nothing crosses the websocket while all is well.
"""

from __future__ import annotations

import logging
from typing import Any

from nicegui import ui

log = logging.getLogger(__name__)

DEGRADED = 'Unstable connection — call quality may be affected.'
RECOVERED = 'Connection recovered'
DEGRADED_TIMEOUT_MS = 10_000  # Quasar's Notify counts milliseconds
RECOVERED_TIMEOUT_MS = 3_000


def show_quality_change(args: Any, *, who: str = 'a page') -> None:
    """Handle a `quality` event `{degraded, inboundLoss, outboundLoss}` (loss as fractions of packets).

    :param who: names the page in the log line (e.g. room and display name; never a session id).
    """
    degraded = args.get('degraded') if isinstance(args, dict) else None
    if not isinstance(degraded, bool):
        return  # not from our media client
    log.info(
        '%s: connection %s (loss in %s, out %s)',
        who,
        'degraded' if degraded else 'recovered',
        _percent(args.get('inboundLoss')),
        _percent(args.get('outboundLoss')),
    )
    if degraded:
        ui.notify(
            DEGRADED,
            type='warning',
            icon='network_check',
            position='top',  # the call's controls are at the bottom
            timeout=DEGRADED_TIMEOUT_MS,
            close_button=True,
        )
    else:
        ui.notify(RECOVERED, type='positive', icon='network_check', position='top', timeout=RECOVERED_TIMEOUT_MS)


def _percent(loss: Any) -> str:
    return f'{loss * 100:.1f} %' if isinstance(loss, int | float) else 'unknown'
