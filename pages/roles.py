"""The one place where a page is granted a role in a room.

Today the role follows the page the user chose in the lobby (as in the original). Signed role invites will replace
this function's body; every page asks here, so nothing else changes then.
"""

from __future__ import annotations

from rooms import Role

PAGE_ROLES = {'room': Role.REGULAR, 'hospital': Role.HOSPITAL, 'technician': Role.TECHNICIAN}


def grant_role(page: str) -> Role:
    """The role a participant gets on the given in-room page (`room`, `hospital` or `technician`)."""
    try:
        return PAGE_ROLES[page]
    except KeyError:
        raise ValueError(f'no role for page {page!r}') from None
