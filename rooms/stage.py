"""The meeting room's stage manager: how many tiles fit, which ones, and in which stable positions."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from rooms.model import InvalidInputError, Participant, Source
from rooms.visibility import tile_key, visible_participants

if TYPE_CHECKING:
    from rooms.room import Room

NARROW_WIDTH_PX: Final = 600
NARROW_LIMIT: Final = 2
SHARING_LIMIT: Final = 5
DEFAULT_LIMIT: Final = 9


def stage_limit(width_px: float, anyone_sharing: bool) -> int:
    """How many tiles the stage shows: 2 on a narrow window (< 600 px), 5 while anyone shares, else 9."""
    if width_px < NARROW_WIDTH_PX:
        return NARROW_LIMIT
    return SHARING_LIMIT if anyone_sharing else DEFAULT_LIMIT


def resolve_roster(
    previous: Sequence[str], candidates: Sequence[str], limit: int, pinned: Collection[str] = ()
) -> list[str]:
    """Choose the stage's tiles, moving as few as possible.

    `candidates` is every tile that could be shown, most wanted first. The first `limit` of them are wanted, and
    every pinned candidate is wanted even beyond `limit`. Wanted tiles already on stage keep their positions (as the
    original's resolveRoster); a slot whose tile is no longer wanted goes to the first newcomer, or is dropped when
    there is none; remaining newcomers are appended.
    """
    if limit < 0:
        raise InvalidInputError('the stage limit must not be negative')
    unique = list(dict.fromkeys(candidates))
    pinned_wanted = [key for key in unique if key in pinned]
    others = [key for key in unique if key not in pinned]
    wanted = set(pinned_wanted + others[: max(limit - len(pinned_wanted), 0)])
    on_stage = set(previous)
    newcomers = [key for key in unique if key in wanted and key not in on_stage]
    roster: list[str] = []
    for key in dict.fromkeys(previous):
        if key in wanted:
            roster.append(key)
        elif newcomers:
            roster.append(newcomers.pop(0))
    return roster + newcomers


def stage_candidates(viewer: Participant, room: Room) -> list[str]:
    """The meeting room's tile keys, most wanted first: the viewer, then screens, then the most recently active.

    Keys are visibility's tile keys: "pid:camera" for a person (shown with an avatar when the camera is off) and
    "pid:screen" for a shared screen. The viewer's own tiles are included; pages render them from local media.
    """
    people = [viewer, *sorted(visible_participants(viewer, room), key=lambda p: -p.last_active)]
    screens = [tile_key(p.id, Source.SCREEN) for p in people if p.sharing_screen]
    faces = [tile_key(p.id, Source.CAMERA) for p in people]
    return [faces[0], *screens, *faces[1:]]


def stage_roster(
    viewer: Participant, room: Room, previous: Sequence[str], width_px: float, pinned: Collection[str] = ()
) -> list[str]:
    """The next stage for `viewer`: stage_candidates trimmed to stage_limit, positions kept by resolve_roster."""
    sharing = any(p.sharing_screen for p in (viewer, *visible_participants(viewer, room)))
    limit = stage_limit(width_px, sharing)
    return resolve_roster(previous, stage_candidates(viewer, room), limit, pinned)


@dataclass(kw_only=True)
class ViewerStage:
    """One viewer's stage across renders: the roster (stable positions), local pins and the window width.

    A screen is pinned when its sharer starts (as the original) — except one's own, which would mirror itself —
    and unpinned when sharing stops; pins of tiles that are gone are forgotten.
    """

    width: float = 1280.0
    roster: list[str] = field(default_factory=list)
    pinned: set[str] = field(default_factory=set)
    screens: set[str] = field(default_factory=set)

    def toggle_pin(self, key: str) -> None:
        """Pin `key`, or unpin it when it was pinned."""
        self.pinned ^= {key}

    def update(self, viewer: Participant, room: Room) -> list[str]:
        """Apply auto-pins, then return (and remember) the next roster for `viewer`."""
        others = visible_participants(viewer, room)
        sharing = {tile_key(p.id, Source.SCREEN) for p in others if p.sharing_screen}
        alive = {tile_key(p.id, Source.CAMERA) for p in (viewer, *others)} | sharing
        if viewer.sharing_screen:
            alive.add(tile_key(viewer.id, Source.SCREEN))
        self.pinned = (self.pinned | (sharing - self.screens)) & alive
        self.screens = sharing
        self.roster = stage_roster(viewer, room, self.roster, self.width, self.pinned)
        return self.roster
