"""All rooms by name, with room-name validation and change notification for the pages that show them."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from rooms.model import InvalidInputError, Participant
from rooms.room import HEARTBEAT_TIMEOUT, Room, RoomChange

log = logging.getLogger(__name__)

ROOM_NAME_MAX_LENGTH: Final = 64
_ROOM_NAME = re.compile(r'[A-Za-z0-9_-]{1,64}')
# Paths the app serves itself (the original's shadowing routes plus ours); a room by that name would be unreachable.
# Names starting with "_" are refused too: NiceGUI serves its own files under /_nicegui.
RESERVED_ROOM_NAMES: Final = frozenset({'api', 'call-quality-feedback', 'new', 'set-username', 'sfu', 'static'})

Subscriber = Callable[[RoomChange], None]


def validate_room_name(name: object) -> str:
    """Return `name` if it is a usable room name (1-64 of A-Z a-z 0-9 - _, not reserved), else raise."""
    if not isinstance(name, str) or not _ROOM_NAME.fullmatch(name):
        raise InvalidInputError(f'a room name is 1 to {ROOM_NAME_MAX_LENGTH} letters, digits, "-" or "_"; got {name!r}')
    if name.startswith('_') or name.lower() in RESERVED_ROOM_NAMES:
        raise InvalidInputError(f'{name!r} is reserved and cannot be a room name')
    return name


def normalise_room_name(text: object) -> str:
    """Turn what a user typed into a room name (spaces become "-", as the original did), or raise."""
    if not isinstance(text, str):
        raise InvalidInputError('a room name must be a string')
    return validate_room_name(text.strip().replace(' ', '-'))


@dataclass(kw_only=True, slots=True)
class RoomRegistry:
    """Rooms by name; subscribers of a room name hear about every change made to that room."""

    _rooms: dict[str, Room] = field(default_factory=dict, init=False)
    _subscribers: dict[str, list[Subscriber]] = field(default_factory=dict, init=False)
    observers: list[Subscriber] = field(default_factory=list, init=False)
    """Hear every change of every room (the audit trail); they run before the room's own subscribers."""

    def get(self, name: str) -> Room | None:
        """Return the room called `name`, or None if it does not exist."""
        return self._rooms.get(name)

    def get_or_create(self, name: str) -> Room:
        """Return the room called `name`, creating it (after validating the name) if needed."""
        room = self._rooms.get(name)
        if room is None:
            room = Room(name=validate_room_name(name), on_change=self._notify)
            self._rooms[name] = room
        return room

    def names(self) -> list[str]:
        """The names of the existing rooms, in creation order."""
        return list(self._rooms)

    def __contains__(self, name: object) -> bool:
        return name in self._rooms

    def __len__(self) -> int:
        return len(self._rooms)

    def drop_if_empty(self, name: str) -> bool:
        """Forget the room if nobody is in it and no page subscribes to it; return True if it was dropped."""
        room = self._rooms.get(name)
        if room is None or not room.is_empty or self._subscribers.get(name) or room.access.keeps_room:
            return False
        del self._rooms[name]
        room.on_change = None
        return True

    def expire_all(self, now: float, timeout: float = HEARTBEAT_TIMEOUT) -> dict[str, list[Participant]]:
        """Expire silent participants in every room; return those removed by room name, dropping emptied rooms."""
        removed: dict[str, list[Participant]] = {}
        for room in list(self._rooms.values()):
            gone = room.expire(now, timeout)
            if gone:
                removed[room.name] = gone
                self.drop_if_empty(room.name)
        return removed

    def subscribe(self, name: str, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(change)` after every change to the room `name`; return a function that unsubscribes."""
        validate_room_name(name)
        subscribers = self._subscribers.setdefault(name, [])
        subscribers.append(callback)
        subscribed = True

        def unsubscribe() -> None:
            nonlocal subscribed
            if subscribed:
                subscribed = False
                subscribers.remove(callback)
                if not subscribers and self._subscribers.get(name) is subscribers:
                    del self._subscribers[name]

        return unsubscribe

    def subscriber_count(self, name: str) -> int:
        """How many callbacks subscribe to the room `name`."""
        return len(self._subscribers.get(name, ()))

    def _notify(self, change: RoomChange) -> None:
        for callback in [*self.observers, *self._subscribers.get(change.room, ())]:
            try:
                callback(change)
            except Exception:
                # One broken page must not keep the others from updating.
                # Never the subscriber's repr: a page's Call holds room state (names, sessions, tracks).
                name = getattr(callback, '__qualname__', type(callback).__name__)
                log.exception(
                    'room=%s: subscriber %s failed on %s of %s', change.room, name, change.kind, change.participant_id
                )
