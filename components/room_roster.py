"""Who is in a room, as the lobby shows it: hospital stations (with how many cameras each sends), technicians and
the meeting's participants. `RoomRoster.show` re-renders only when what it shows has changed."""

from __future__ import annotations

from dataclasses import dataclass

from nicegui import ui

from components.testid import testid
from rooms import Participant, Role, Room


@dataclass(frozen=True, kw_only=True, slots=True)
class Roster:
    """The names in a room by role; `stations` pairs each station's name with the cameras it is sending."""

    stations: tuple[tuple[str, int], ...] = ()
    technicians: tuple[str, ...] = ()
    meeting: tuple[str, ...] = ()

    @classmethod
    def of(cls, room: Room | None) -> Roster:
        """The roster of `room` in join order (an empty one when the room does not exist)."""
        people = list(room.participants.values()) if room is not None else []

        def names(role: Role) -> tuple[str, ...]:
            return tuple(p.name for p in people if p.role is role)

        return cls(
            stations=tuple((p.name, sending_cameras(p)) for p in people if p.role is Role.HOSPITAL),
            technicians=names(Role.TECHNICIAN),
            meeting=names(Role.REGULAR),
        )

    @property
    def empty(self) -> bool:
        return not (self.stations or self.technicians or self.meeting)


def sending_cameras(station: Participant) -> int:
    """How many of a station's cameras technicians can see right now (sending and switched on)."""
    return sum(1 for feed in station.cameras if feed.locator is not None and feed.enabled)


class RoomRoster:
    """A card listing who is in the room; call `show(room)` whenever the room changes."""

    def __init__(self) -> None:
        self._shown: Roster | None = None
        with testid(ui.card(), 'roster').classes('w-full gap-1') as self.card:
            ui.label('In this room').classes('text-base font-semibold')
            self.body = ui.column().classes('w-full gap-1')

    def show(self, room: Room | None) -> None:
        roster = Roster.of(room)
        if roster == self._shown:
            return
        self._shown = roster
        self.body.clear()
        with self.body:
            if roster.empty:
                testid(ui.label('Nobody is here yet.').classes('text-gray-600'), 'roster-empty')
                return
            for name, cameras in roster.stations:
                sending = f'{cameras} camera{"" if cameras == 1 else "s"}' if cameras else 'no camera sending yet'
                self._row('local_hospital', name, f'hospital station · {sending}', 'roster-station')
            for name in roster.technicians:
                self._row('monitor_heart', name, 'technician', 'roster-technician')
            if roster.meeting:
                count = len(roster.meeting)
                detail = f'{count} in the meeting'
                self._row('groups', ', '.join(roster.meeting), detail, 'roster-meeting')

    @staticmethod
    def _row(icon: str, name: str, detail: str, marker: str) -> None:
        with testid(ui.row(), marker).classes('w-full items-center gap-2 no-wrap'):
            ui.icon(icon, color='orange-8')
            ui.label(name).classes('font-medium truncate')
            ui.label(detail).classes('text-sm text-gray-600 whitespace-nowrap')
