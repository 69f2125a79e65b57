"""Sessions and tracks bookkeeping of the embedded SFU — plain data, no aiortc, no clock (callers pass ``now``)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Literal

Location = Literal['local', 'remote']
PublicationKey = tuple[str, str]  # (sessionId, trackName)


@dataclass(kw_only=True, slots=True)
class TrackRecord:
    """One transceiver of a session as the Calls API reports it (GET session)."""

    location: Location
    mid: str
    track_name: str
    kind: str
    session_id: str | None = None  # remote tracks: the publisher's session
    active: bool = True


@dataclass(kw_only=True, slots=True)
class SessionRecord:
    """A Calls session: one PeerConnection on the SFU side once SDP was exchanged."""

    session_id: str
    created_at: float
    tracks: dict[str, TrackRecord] = field(default_factory=dict)  # by mid
    awaiting_answer: bool = False
    answer_deadline: float | None = None  # while awaiting_answer: when the SFU offer's subscriptions are dropped
    connected_once: bool = False
    closed: bool = False
    # FIFO: asyncio.Lock wakes waiters in arrival order, which is exactly the per-session queue the API needs
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def answer_overdue(self, now: float) -> bool:
        return self.awaiting_answer and self.answer_deadline is not None and now >= self.answer_deadline

    def local_track(self, track_name: str) -> TrackRecord | None:
        for track in self.tracks.values():
            if track.location == 'local' and track.track_name == track_name and track.active:
                return track
        return None


class Registry:
    """All sessions and the publications they expose, keyed by ``(sessionId, trackName)``."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionRecord] = {}

    def new_session(self, now: float) -> SessionRecord:
        record = SessionRecord(session_id=secrets.token_hex(16), created_at=now)
        self.sessions[record.session_id] = record
        return record

    def get(self, session_id: str) -> SessionRecord | None:
        record = self.sessions.get(session_id)
        return None if record is None or record.closed else record

    def remove(self, session_id: str) -> SessionRecord | None:
        record = self.sessions.pop(session_id, None)
        if record is not None:
            record.closed = True
        return record

    def publication(self, key: PublicationKey) -> TrackRecord | None:
        session = self.get(key[0])
        return None if session is None else session.local_track(key[1])

    def subscribers_of(self, key: PublicationKey) -> list[tuple[SessionRecord, TrackRecord]]:
        """Active remote tracks in any session that pull this publication."""
        return [
            (s, t)
            for s in self.sessions.values()
            for t in s.tracks.values()
            if t.location == 'remote' and t.active and (t.session_id, t.track_name) == key
        ]

    def expired(self, now: float, session_timeout_s: float) -> list[str]:
        """Sessions never connected within ``session_timeout_s`` of their creation."""
        return [
            s.session_id
            for s in self.sessions.values()
            if not s.connected_once and now - s.created_at > session_timeout_s
        ]

    def answers_overdue(self, now: float) -> list[SessionRecord]:
        """Sessions whose SFU offer went unanswered past its deadline."""
        return [s for s in self.sessions.values() if s.awaiting_answer and s.answer_overdue(now)]

    def counts(self) -> dict[str, int]:
        tracks = [t for s in self.sessions.values() for t in s.tracks.values() if t.active]
        return {
            'sessions': len(self.sessions),
            'publications': sum(t.location == 'local' for t in tracks),
            'subscriptions': sum(t.location == 'remote' for t in tracks),
        }
