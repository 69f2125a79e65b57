"""The push side of `PageMedia` (media/negotiation.py): offer, tracks/new and answer for our own tracks, the watch of
their byte counters, closing them, and bringing back a track that was off or silent (re-published when the SFU has
dropped it or may have)."""

from __future__ import annotations

import asyncio
import logging
import uuid

from media.calls_api import (
    CallsError,
    GetSessionStateResponse,
    SessionDescription,
    TrackLocator,
    TrackObject,
    TracksRequest,
)
from media.negotiation_sessions import KeyRecord, NegotiationError, SenderWatch, SessionBase
from media.negotiation_states import PUSH_STATES, KeyEvent, KeyState

log = logging.getLogger('media.negotiation')

S, E = KeyState, KeyEvent


class PushSide(SessionBase):
    """Push internals; every method runs under the push session's lock unless it says otherwise."""

    sending_timeout: float
    republish_after: float

    async def _push_locked(self, keys: list[str]) -> SenderWatch:
        """Offer, tracks/new, answer: `keys` end ACCEPTED; returns the watch of their byte counters."""
        records = {k: self._keys.setdefault(k, KeyRecord()) for k in keys}
        for key, record in records.items():
            self._fire(key, record, E.PUSH)
            record.mid, record.locator = None, None
        with self._exchange(self._push, list(records.values())):
            session_id = await self._ensure(self._push)
            offer = await self.driver.create_push_offer(keys)
            self._check_open()
            names = {key: f'{key}-{uuid.uuid4().hex[:12]}' for key in keys}
            for key, record in records.items():
                record.mid = offer.mids[key]
                record.locator = TrackLocator(session_id=session_id, track_name=names[key])
            request = TracksRequest(
                session_description=SessionDescription(type='offer', sdp=offer.sdp),
                tracks=[TrackObject(location='local', mid=offer.mids[key], track_name=names[key]) for key in keys],
            )

            def created(state: GetSessionStateResponse) -> bool:
                return any(t.location == 'local' and t.track_name in names.values() for t in state.tracks or [])

            response = await self._new_tracks(session_id, request, created)
            failed = [t for t in response.tracks or [] if t.failed]
            if failed or response.session_description is None:
                reason = failed[0].error_description if failed else 'no answer'
                raise NegotiationError(f'Publishing failed: {reason}')
            self._check_open()
            # Watch the byte counters from the moment the answer goes out: one browser round trip less before the
            # tracks are announced (the watch only reads stats, so it may run outside the session's lock).
            watch = self._watch(records)
            try:
                await self.driver.apply_push_answer(response.session_description.sdp)
                self._check_open()
            except BaseException:
                watch.future.cancel()
                raise
        for key, record in records.items():
            self._fire(key, record, E.ACCEPT)
        return watch

    def _watch(self, records: dict[str, KeyRecord]) -> SenderWatch:
        for record in records.values():
            record.epoch += 1
        future = asyncio.ensure_future(self.driver.wait_sending(list(records), self.sending_timeout))
        return SenderWatch(list(records), {key: record.epoch for key, record in records.items()}, future)

    async def _settle(self, watch: SenderWatch) -> None:
        """After the watch: ACCEPTED keys become SENDING (announced) or SILENT; a switched-off one PAUSED."""
        try:
            sending = await watch.future
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the browser did not answer: not sending (asked again later)
            log.info('room=%s participant=%s: watching senders: %r', self.room, self.participant_id, error)
            sending = set()
        missing = []
        for key in watch.keys:
            record = self._keys.get(key)
            if record is None or record.state is not S.ACCEPTED or record.epoch != watch.epochs.get(key):
                continue  # closed, paused, failed or watched again meanwhile
            if record.off:
                self._fire(key, record, E.SWITCH_OFF)
                record.quiet_since = self.clock()
            elif key in sending:
                self._fire(key, record, E.SENDS)
                record.quiet_since = None
            else:
                self._fire(key, record, E.NO_MEDIA)
                record.quiet_since = self.clock()
                missing.append(key)
                continue
            self.on_locator(key, record.locator)
        if missing:
            log.warning(
                'room=%s participant=%s: %s not sending after %.1f s; not announced until it does',
                self.room,
                self.participant_id,
                ', '.join(missing),
                self.sending_timeout,
            )

    async def _revive(self, keys: list[str], why: str) -> list[SenderWatch]:
        """PAUSED or SILENT `keys` that send (again): reuse the locator while the SFU still has it, else re-publish.

        Called under the push lock; returns the watches of the byte counters, for the caller to settle once the lock
        is released (so a camera slow to send never blocks other pushes)."""
        fresh: list[str] = []
        stale: list[str] = []
        for key in keys:
            (stale if await self._stale(self._keys[key]) else fresh).append(key)
        watches: list[SenderWatch] = []
        if stale:
            log.info(
                'room=%s participant=%s: re-publishing %s (%s too long for the SFU to keep it)',
                self.room,
                self.participant_id,
                ', '.join(stale),
                why,
            )
            records = {k: self._keys[k] for k in stale}
            for key, record in records.items():
                self._fire(key, record, E.EXPIRE)
            try:
                await self._close_pushed(records)
            finally:
                self._forget_failed(self._push, self._keys, records, keep=True)
            for key, record in records.items():
                self._fire(key, record, E.CLOSED)
            watches.append(await self._push_locked(stale))
        paused: dict[str, KeyRecord] = {}
        for key in fresh:
            record = self._keys[key]
            if record.state is S.SILENT:
                self._fire(key, record, E.SENDS)
                record.quiet_since = None
                self.on_locator(key, record.locator)
            elif record.state is S.PAUSED:
                self._fire(key, record, E.SWITCH_ON)
                paused[key] = record
        if paused:
            watches.append(self._watch(paused))
        return watches

    async def _stale(self, record: KeyRecord) -> bool:
        """Has the SFU dropped (or is it about to drop) this quiet track? By our monotonic clock, else by asking it.

        The clock decides for a track that sent nothing for `republish_after` (a microphone switched off keeps
        sending silence, so the clock alone never condemns it). Otherwise GET session tells whether the SFU still
        holds the track active: it catches a back end whose idle timeout is shorter than ours."""
        quiet = self.clock() - record.quiet_since if record.quiet_since is not None else 0.0
        if quiet >= self.republish_after and (record.state is S.SILENT or not record.sends_while_off):
            return True
        if self._push.id is None or record.locator is None:
            return True
        try:
            state = await self.client.get_session(self._push.id)
        except CallsError as error:
            log.info('room=%s participant=%s: GET session: %s', self.room, self.participant_id, error)
            return False
        name = record.locator.track_name
        return not any(
            t.location == 'local' and t.track_name == name and t.status != 'inactive' for t in state.tracks or []
        )

    async def _close_pushed(self, records: dict[str, KeyRecord]) -> None:
        """Close CLOSING `records` at the SFU and in the browser (negotiated, or forced for the last m-lines)."""
        session_id = self._push.id
        mids = [r.mid for r in records.values() if r.mid]
        keys = list(records)
        others = any(r.state in PUSH_STATES for k, r in self._keys.items() if k not in records)
        with self._exchange(self._push, list(records.values())):
            if session_id is None or not mids:
                return
            if not others:  # closing the last m-lines by negotiation breaks BUNDLE (calls-api §3.4)
                await self.driver.drop_pushed(keys)  # the page must not reuse the force-closed mids
                await self._close(session_id, mids, None)
                return
            offer = await self.driver.create_push_close_offer(keys)
            answer = await self._close(session_id, mids, offer)
            if answer is not None:
                await self.driver.apply_push_answer(answer)

    async def _ready_push(self) -> None:
        if self._push.broken:
            await self._rebuild(self._push)
