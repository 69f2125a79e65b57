"""The per-session mutation guard: the FIFO lock plus the 406 rule of the Calls API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from media.calls_api import NegotiationConflictError, SessionGoneError

from .state import SessionRecord


class Mutation:
    """Holds the session's FIFO lock; refuses (406) while an SFU offer is unanswered and not yet overdue.

    An offer past its answer deadline is expired first (``expire``, under the lock), and the request goes ahead.
    """

    def __init__(
        self,
        record: SessionRecord,
        now: Callable[[], float],
        expire: Callable[[SessionRecord], Awaitable[None]],
    ) -> None:
        self._record = record
        self._now = now
        self._expire = expire

    async def __aenter__(self) -> None:
        record = self._record
        await record.lock.acquire()
        try:
            if record.answer_overdue(self._now()):
                await self._expire(record)
            if record.closed:
                raise SessionGoneError('Session closed')
            if record.awaiting_answer:
                raise NegotiationConflictError('An SFU offer is waiting for its answer (PUT renegotiate) first')
        except BaseException:
            record.lock.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._record.lock.release()
