"""Ending things: closing tracks, collecting idle publications and unused sessions, closing everything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .session import PeerSession
from .state import SessionRecord, TrackRecord

if TYPE_CHECKING:
    from .service import CallsService

logger = logging.getLogger(__name__)


class Lifecycle:
    """Tears down tracks and sessions of a ``CallsService`` and runs its garbage collector."""

    def __init__(self, service: CallsService) -> None:
        self._service = service
        self._tasks: set[asyncio.Task[None]] = set()
        self._gc_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._gc_task is None:
            self._gc_task = asyncio.ensure_future(self._gc_loop())

    async def close_track(self, record: SessionRecord, track: TrackRecord, *, by_client: bool = False) -> None:
        """Stop one track of a session; closing a publication ends its subscribers' tracks. ``by_client``: the
        session's own ``tracks/close`` asked for it (not a timeout or a publisher leaving)."""
        track.active = False
        peer = self._service.peers.get(record.session_id)
        if by_client and peer is not None:
            peer.closed_by_client(track.mid)
        if track.location == 'remote':
            if peer is not None:
                await peer.stop_subscription(track.mid)
            return
        if peer is not None:
            peer.stop_publication(track.mid)
        await self._end_subscribers(record.session_id, track.track_name)

    async def close_session(self, session_id: str) -> None:
        """Free a session: its publications' subscribers end, its subscriptions detach, its PC closes."""
        record = self._service.registry.remove(session_id)
        peer = self._service.peers.pop(session_id, None)
        if record is not None:
            for track in record.tracks.values():
                if track.active and track.location == 'local':
                    track.active = False
                    await self._end_subscribers(session_id, track.track_name)
        if peer is not None:
            await peer.close()

    def on_connection_state(self, peer: PeerSession, state: str) -> None:
        record = self._service.registry.get(peer.session_id)
        if record is None:
            return
        if state == 'connected':
            record.connected_once = True
        elif state in ('failed', 'closed'):
            self._spawn(self.close_session(peer.session_id))

    async def collect(self, now: float) -> None:
        """One GC pass: idle publications (no media for media_timeout_s), never-connected sessions and SFU offers
        unanswered past answer_timeout_s (a session busy with a request is left to that request's own check)."""
        config = self._service.config
        for session_id in self._service.registry.expired(now, config.session_timeout_s):
            await self.close_session(session_id)
        for record in self._service.registry.answers_overdue(now):
            if not record.lock.locked():
                async with record.lock:
                    if record.answer_overdue(now) and not record.closed:
                        await self._service.expire_offer(record)
        for record in list(self._service.registry.sessions.values()):
            peer = self._service.peers.get(record.session_id)
            if peer is None:
                continue
            for track in list(record.tracks.values()):
                forwarder = peer.publications.get(track.mid) if track.location == 'local' else None
                if track.active and forwarder is not None and now - forwarder.last_packet_at > config.media_timeout_s:
                    await self.close_track(record, track)

    async def close_all(self) -> None:
        if self._gc_task is not None:
            self._gc_task.cancel()
            self._gc_task = None
        ids = list(self._service.peers)
        await asyncio.gather(*(self.close_session(i) for i in ids), return_exceptions=True)
        # never cancel these: a task cancelled while awaiting RTCPeerConnection.close() cancels aiortc's own future
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _end_subscribers(self, session_id: str, track_name: str) -> None:
        for sub_record, sub_track in self._service.registry.subscribers_of((session_id, track_name)):
            sub_track.active = False
            sub_peer = self._service.peers.get(sub_record.session_id)
            if sub_peer is not None:
                await sub_peer.stop_subscription(sub_track.mid)

    async def _gc_loop(self) -> None:
        config = self._service.config
        interval = max(0.05, min(config.media_timeout_s, config.session_timeout_s, config.answer_timeout_s) / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                await self.collect(loop.time())
            except Exception:
                logger.exception('SFU garbage collection failed')

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
