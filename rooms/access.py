"""Who may enter a room, and how: ownership, lock, capacity, the waiting room, admissions, removals and unique names.

Pure state kept on each `Room` (`room.access`); `Room` wraps the operations that others must hear about. A *pass* is
what a page presents on the way in: a verified grant (`rooms.grants`), an admission from the waiting room, or
nothing (someone with only the room's address).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from rooms.model import NAME_MAX_LENGTH, InvalidInputError, NotAllowedError, Role

MAX_WAITING: Final = 50  # knocks one room keeps at a time
MAX_CAPACITY: Final = 500


class Entry(StrEnum):
    """What happens to a pass at the door."""

    ENTER = 'enter'
    WAIT = 'wait'  # knock and wait for the host or a hospital station
    FULL = 'full'  # the room is at its cap


@dataclass(frozen=True, kw_only=True, slots=True)
class Pass:
    """What a page presents: its browser, the role it asks for, and the grant (if any) that backs it.

    `grant` is the invite's `jti` ('' without one); `admin` and `approval` come from the verified grant.
    """

    browser: str
    role: Role
    grant: str = ''
    admin: bool = False
    approval: bool = False


@dataclass(kw_only=True, slots=True)
class Knock:
    """Someone waiting to be let in, as the host and the room's stations see them."""

    id: str
    name: str
    role: Role
    browser: str
    grant: str
    at: float
    removed_before: bool = False  # their invite was removed from this room earlier


@dataclass(frozen=True, kw_only=True, slots=True)
class Admitted:
    """An admission from the waiting room: this browser may enter as `role` (kept until removed)."""

    role: Role
    name: str
    grant: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Member:
    """How a participant got in: its pass, and whether its name is verified (fixed by its grant)."""

    browser: str
    grant: str
    admin: bool = False
    verified: bool = False

    @property
    def ban_key(self) -> str:
        """What a removal bans: the invite, or for someone let in from the waiting room without one, the browser."""
        return f'grant:{self.grant}' if self.grant else f'browser:{self.browser}'


@dataclass(kw_only=True, slots=True)
class RoomAccess:
    """A room's door: its policy, its waiting list and what it remembers about passes."""

    owner: str = ''  # the host grant's id, once the host came in
    locked: bool = False
    capacity: int | None = None
    technician_approval: bool = True  # a hospital station decides; by default technicians wait for approval
    waiting: dict[str, Knock] = field(default_factory=dict)
    admitted: dict[str, Admitted] = field(default_factory=dict)  # browser -> admission from the waiting room
    banned: set[str] = field(default_factory=set)  # Member.ban_key of those removed (until readmitted)
    members: dict[str, Member] = field(default_factory=dict)  # participant id -> how it got in

    # -- queries ---------------------------------------------------------------------------------------------------

    @property
    def keeps_room(self) -> bool:
        """True while the door remembers something that must outlive an empty room."""
        return bool(
            self.locked
            or self.capacity is not None
            or not self.technician_approval
            or self.waiting
            or self.admitted
            or self.banned
        )

    def is_admin(self, pid: str) -> bool:
        member = self.members.get(pid)
        return member is not None and member.admin

    def is_banned(self, pass_: Pass) -> bool:
        keys = {f'browser:{pass_.browser}'} | ({f'grant:{pass_.grant}'} if pass_.grant else set())
        return bool(keys & self.banned)

    def entry(self, pass_: Pass, present: Iterable[str] = ()) -> Entry:
        """Decide at the door. `present` lists the browsers of the participants in the room now (a reload of a page
        that is still in the room does not count twice against the cap)."""
        browsers = list(present)
        if pass_.admin and not self.is_banned(pass_):
            return Entry.ENTER  # the host always gets in: to their own room, locked or full
        if self.capacity is not None and sum(1 for b in browsers if b != pass_.browser) >= self.capacity:
            return Entry.FULL
        admitted = self.admitted.get(pass_.browser)
        if admitted is not None and admitted.role is pass_.role and admitted.grant == pass_.grant:
            return Entry.ENTER  # let in from the waiting room (and not removed since)
        if self.is_banned(pass_) or self.locked or not pass_.grant or pass_.approval:
            return Entry.WAIT
        if pass_.role is Role.TECHNICIAN and self.technician_approval:
            return Entry.WAIT
        return Entry.ENTER

    def knocks_for(self, role: Role, admin: bool) -> list[Knock]:
        """The knocks a participant sees: the host every one, a hospital station every one, others none."""
        if admin or role is Role.HOSPITAL:
            return sorted(self.waiting.values(), key=lambda k: k.at)
        return []

    def may_decide(self, role: Role, admin: bool) -> bool:
        """Whether a participant admits or denies knocks (the host and the room's hospital stations)."""
        return admin or role is Role.HOSPITAL

    # -- the waiting room ------------------------------------------------------------------------------------------

    def knock(self, *, knock_id: str, name: str, pass_: Pass, now: float) -> Knock:
        """Put someone in the waiting room (again: their earlier knock from the same browser is replaced)."""
        if pass_.role is Role.HOSPITAL and not pass_.grant:
            raise NotAllowedError('a hospital station needs a station invite')
        for old in [k for k in self.waiting.values() if k.browser == pass_.browser]:
            del self.waiting[old.id]
        if len(self.waiting) >= MAX_WAITING:
            raise NotAllowedError('too many people are waiting; try again later')
        knock = Knock(
            id=knock_id,
            name=name,
            role=pass_.role,
            browser=pass_.browser,
            grant=pass_.grant,
            at=now,
            removed_before=self.is_banned(pass_),
        )
        self.waiting[knock_id] = knock
        return knock

    def withdraw(self, knock_id: str) -> Knock | None:
        """The knocker gave up (or their page closed)."""
        return self.waiting.pop(knock_id, None)

    def admit(self, knock_id: str) -> Knock:
        """Let a knock in: its browser may now enter as the role it asked for (also after a removal: readmitted)."""
        knock = self._knock(knock_id)
        del self.waiting[knock_id]
        self.admitted[knock.browser] = Admitted(role=knock.role, name=knock.name, grant=knock.grant)
        self.banned -= {f'browser:{knock.browser}', *([f'grant:{knock.grant}'] if knock.grant else [])}
        return knock

    def deny(self, knock_id: str) -> Knock:
        knock = self._knock(knock_id)
        del self.waiting[knock_id]
        return knock

    # -- members ---------------------------------------------------------------------------------------------------

    def enter(self, pid: str, member: Member) -> None:
        """Remember how participant `pid` got in."""
        self.members[pid] = member

    def left(self, pid: str) -> Member | None:
        return self.members.pop(pid, None)

    def remove(self, pid: str) -> Member | None:
        """A removal: the member's invite (or browser) is banned and its admission forgotten until readmitted."""
        member = self.members.pop(pid, None)
        if member is not None:
            self.banned.add(member.ban_key)
            self.admitted.pop(member.browser, None)
        return member

    # -- policy ----------------------------------------------------------------------------------------------------

    def set_capacity(self, capacity: int | None) -> None:
        if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
            raise InvalidInputError(f'a room holds 1 to {MAX_CAPACITY} participants')
        self.capacity = capacity

    def _knock(self, knock_id: str) -> Knock:
        try:
            return self.waiting[knock_id]
        except KeyError:
            raise NotAllowedError('nobody is waiting under this knock (they left or were let in already)') from None


def unique_name(wanted: str, taken: Iterable[str]) -> str:
    """`wanted`, or `wanted (2)`, `wanted (3)` … — the first that no one in `taken` has (case-insensitively)."""
    names = {name.casefold() for name in taken}
    if wanted.casefold() not in names:
        return wanted
    number = 2
    while True:
        suffix = f' ({number})'
        candidate = wanted[: NAME_MAX_LENGTH - len(suffix)].rstrip() + suffix
        if candidate.casefold() not in names:
            return candidate
        number += 1
