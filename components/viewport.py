"""The browser window's width, for layouts that depend on it (the meeting room's stage limit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui


class Viewport(ui.element, component='viewport.js'):
    """Invisible element; `width` is the window's inner width in CSS pixels (None until the browser reported)."""

    def __init__(self, on_change: Callable[[float], Any]) -> None:
        super().__init__()
        self.width: float | None = None

        def changed(event: Any) -> None:
            width = float(event.args.get('width') or 0)
            if width != self.width:
                self.width = width
                on_change(width)

        self.on('width', changed)
