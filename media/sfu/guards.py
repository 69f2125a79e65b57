"""The per-session mutation guard: the FIFO lock plus the 406 rule of the Calls API."""

from __future__ import annotations

from media.calls_api import NegotiationConflictError, SessionGoneError

from .state import SessionRecord


class Mutation:
    """Holds the session's FIFO lock; refuses (406) while an SFU offer is unanswered."""

    def __init__(self, record: SessionRecord) -> None:
        self._record = record

    async def __aenter__(self) -> None:
        await self._record.lock.acquire()
        if self._record.awaiting_answer:
            self._record.lock.release()
            raise NegotiationConflictError('An SFU offer is waiting for its answer (PUT renegotiate) first')
        if self._record.closed:
            self._record.lock.release()
            raise SessionGoneError('Session closed')

    async def __aexit__(self, *exc: object) -> None:
        self._record.lock.release()
