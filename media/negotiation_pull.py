"""The pull side of `PageMedia` (media/negotiation.py): tracks/new for others' tracks, the SFU's offer answered by
the browser, closing tiles, and rotating a pull session that carries too many closed m-lines."""

from __future__ import annotations

import logging

from media.calls_api import GetSessionStateResponse, SessionDescription, TrackLocator, TracksRequest
from media.negotiation_sessions import ROTATING, KeyRecord, NegotiationError, SessionBase, count_mlines
from media.negotiation_states import KeyEvent, KeyState

log = logging.getLogger('media.negotiation')

S, E = KeyState, KeyEvent


class PullSide(SessionBase):
    """Pull internals; every method runs under the pull session's lock."""

    max_closed_mlines: int

    async def _pull_locked(self, wanted: dict[str, TrackLocator]) -> dict[str, str]:
        records: dict[str, KeyRecord] = {}
        for key, locator in wanted.items():
            records[key] = self._tiles[key] = KeyRecord(locator=locator)
            self._fire(key, records[key], E.PULL)
        mids: dict[str, str] = {}
        with self._exchange(self._pull, list(records.values())):
            session_id = await self._ensure(self._pull)
            order = list(wanted)
            request = TracksRequest(tracks=[wanted[key].remote_track() for key in order])
            known = {r.mid for r in self._tiles.values() if r.mid}
            asked = {(loc.session_id, loc.track_name) for loc in wanted.values()}

            def created(state: GetSessionStateResponse) -> bool:
                return any(
                    t.location == 'remote'
                    and t.mid not in known
                    and (t.session_id, t.track_name) in asked
                    and t.status != 'inactive'
                    for t in state.tracks or []
                )

            response = await self._new_tracks(session_id, request, created)
            self._check_open()
            results = dict(zip(order, response.tracks or [], strict=False))
            for key in order:
                result = results.get(key)
                if result is None or result.failed or not result.mid:
                    log.info(
                        'room=%s participant=%s: pull of %s failed: %s',
                        self.room,
                        self.participant_id,
                        key,
                        result.error_code if result is not None else 'no result',
                    )
                    self._fire(key, records[key], E.REFUSED)
                    self._tiles.pop(key, None)
                    continue
                records[key].mid = mids[key] = result.mid
            if not mids:
                return {}
            if not response.requires_immediate_renegotiation or response.session_description is None:
                raise NegotiationError('Receiving failed: the SFU sent no offer')
            for key in mids:
                self._fire(key, records[key], E.OFFERED)
            offer_sdp = response.session_description.sdp
            self._pull.mlines = count_mlines(offer_sdp)
            answer = await self.driver.answer_pull(offer_sdp, {mid: key for key, mid in mids.items()})
            # Answered even if the page left meanwhile: an SFU waiting for an answer refuses every other request
            # (406), the forced close of `close()` included.
            answer_sdp = SessionDescription(type='answer', sdp=answer)
            await self._retry(lambda: self.client.renegotiate(session_id, answer_sdp))
            self._check_open()
        for key in mids:
            self._fire(key, records[key], E.ANSWERED)
        return mids

    async def _close_pulled(self, records: dict[str, KeyRecord]) -> None:
        session_id = self._pull.id
        mids = [r.mid for r in records.values() if r.mid]
        others = any(r.state is S.RECEIVING for k, r in self._tiles.items() if k not in records)
        with self._exchange(self._pull, list(records.values())):
            if session_id is None or not mids:
                return
            if not others:
                await self.driver.drop_pulled(mids)
                await self._close(session_id, mids, None)
                return
            offer = await self.driver.create_pull_close_offer(mids)
            answer = await self._close(session_id, mids, offer)
            if answer is not None:
                self._pull.mlines = count_mlines(answer)
                await self.driver.apply_pull_answer(answer)

    async def _ready_pull(self) -> dict[str, TrackLocator]:
        """Rebuild a broken pull session, or rotate one carrying too many closed m-lines; returns what to re-pull."""
        session = self._pull
        live = sum(r.state is S.RECEIVING for r in self._tiles.values())
        if not session.broken and session.id is not None and session.mlines - live > self.max_closed_mlines:
            session.broken = f'{ROTATING}: {session.mlines - live} closed m-lines'
        return await self._rebuild(session) if session.broken else {}
