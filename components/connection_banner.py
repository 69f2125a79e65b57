"""A banner while media is connecting, reconnecting or failed; hidden when all is well."""

from __future__ import annotations

from nicegui import ui

from components.testid import testid

STYLES = {
    'connecting': ('Connecting media…', 'bg-amber-100 text-amber-900'),
    'reconnecting': ('Connection lost — reconnecting…', 'bg-amber-100 text-amber-900'),
    'failed': ('Media connection failed. Check your network and reload the page.', 'bg-red-100 text-red-900'),
}


class ConnectionBanner:
    """Shows the page's worst media connection state."""

    def __init__(self) -> None:
        self.state = 'connecting'
        self.label = testid(ui.label(STYLES['connecting'][0]), 'connection-banner')
        self.label.classes('w-full rounded px-3 py-2 ' + STYLES['connecting'][1])

    def show(self, state: str, message: str = '') -> None:
        if state == self.state:
            return
        self.state = state
        self.label.props(f'data-state="{state}"')
        if state == 'connected':
            self.label.set_visibility(False)
            return
        text, classes = STYLES.get(state, (message, 'bg-amber-100 text-amber-900'))
        self.label.text = text
        self.label.classes(replace='w-full rounded px-3 py-2 ' + classes)
        self.label.set_visibility(True)
