"""One name for an element in both test layers: NiceGUI's marker (`user` fixture) and `data-testid` (Playwright)."""

from __future__ import annotations

from typing import TypeVar

from nicegui import ui

E = TypeVar('E', bound=ui.element)


def testid(element: E, name: str) -> E:
    """Mark `element` as `name` for `user.find(marker=...)` and `page.get_by_test_id(...)`."""
    element.mark(name)
    element.props(f'data-testid="{name}"')
    return element
