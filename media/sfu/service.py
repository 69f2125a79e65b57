"""The Calls operations of the embedded SFU, on typed ``media.calls_api`` models (HTTP lives in ``api.py``).

Each mutation runs under its session's FIFO lock; a mutation while an SFU offer is unanswered is a 406, until the
offer's ``answer_timeout_s`` passes: then its subscriptions are dropped and the session accepts requests again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from media.calls_api import (
    CLOSE_TRACK_ERROR,
    EMPTY_TRACK_ERROR,
    INVALID_PARAMS,
    INVALID_SESSION_DESCRIPTION,
    MAX_TRACKS_PER_REQUEST,
    NOT_FOUND_TRACK_ERROR,
    UPDATE_TRACK_ERROR,
    CloseTrackResult,
    CloseTracksRequest,
    CloseTracksResponse,
    InvalidRequestError,
    RenegotiateRequest,
    RenegotiateResponse,
    SessionDescription,
    SessionGoneError,
    SessionNotReadyError,
    TrackObject,
    TrackResult,
    TracksRequest,
    TracksResponse,
    UpdateTracksRequest,
    UpdateTracksResponse,
)

from .config import SfuConfig
from .forwarder import Counters, PacketLoss
from .guards import Mutation
from .lifecycle import Lifecycle
from .sdp_check import check_sdp
from .session import PeerSession, SdpError
from .simulcast import SimulcastPublication, Source
from .state import Registry, SessionRecord, TrackRecord

logger = logging.getLogger(__name__)

NOT_FOUND_DESCRIPTION = (
    'Track not found on remote peer. Make sure the publisher peer is connected and sending packets for this track'
)
EMPTY_DESCRIPTION = (
    'No track data from remote peer. Make sure the publisher peer is connected and sending packets for this track'
)


class CallsService:
    """Sessions, pushes, pulls, renegotiation and closes, as the Calls API defines them."""

    def __init__(self, config: SfuConfig, counters: Counters, now: Callable[[], float]) -> None:
        self.config = config
        self.registry = Registry()
        self.peers: dict[str, PeerSession] = {}
        self.lifecycle = Lifecycle(self)
        self._counters = counters
        self._now = now
        self._loss = PacketLoss(config.simulate_loss) if config.simulate_loss else None

    # --- sessions --------------------------------------------------------------------------------------------
    async def new_session(self, offer: SessionDescription | None) -> tuple[str, SessionDescription | None]:
        record = self.registry.new_session(self._now())
        peer = self._peer(record)
        if offer is None:
            return record.session_id, None
        async with record.lock:
            answer, _ = await self._answer(record, peer, offer)
        return record.session_id, answer

    def session(self, session_id: str) -> SessionRecord:
        record = self.registry.get(session_id)
        if record is None:
            raise SessionGoneError('Session not found, expired or closed')
        return record

    # --- tracks/new ------------------------------------------------------------------------------------------
    async def new_tracks(self, session_id: str, request: TracksRequest) -> TracksResponse:
        record = self.session(session_id)
        tracks = request.tracks or []
        if len(tracks) > MAX_TRACKS_PER_REQUEST:
            raise InvalidRequestError('Too many tracks in one request', error_code=INVALID_PARAMS)
        locations = {t.location for t in tracks}
        if len(locations) > 1:
            raise InvalidRequestError('Tracks must be all local or all remote', error_code=INVALID_PARAMS)
        async with self._mutation(record):
            if request.session_description is not None:
                if 'remote' in locations:
                    raise InvalidRequestError('Pull with a client offer is not supported', error_code=INVALID_PARAMS)
                return await self._push(record, request)
            if 'local' in locations:
                raise InvalidRequestError('Push without an offer is not supported', error_code=INVALID_PARAMS)
            return await self._pull(record, tracks)

    async def _push(self, record: SessionRecord, request: TracksRequest) -> TracksResponse:
        peer = self.peers[record.session_id]
        assert request.session_description is not None
        answer, mids = await self._answer(record, peer, request.session_description)
        wanted = list(request.tracks or [])
        if request.auto_discover:
            taken = set(peer.publications)
            named = {t.mid for t in wanted}
            wanted += [
                TrackObject(location='local', mid=m, track_name=str(uuid.uuid4()))
                for m in mids
                if m not in taken and m not in named and peer.offered_kind(m)
            ]
        results: list[TrackResult] = []
        for item in wanted:
            results.append(self._publish_one(record, peer, item))
        return TracksResponse(requires_immediate_renegotiation=False, session_description=answer, tracks=results)

    def _publish_one(self, record: SessionRecord, peer: PeerSession, item: TrackObject) -> TrackResult:
        mid, name = item.mid or '', item.track_name or ''
        kind = peer.offered_kind(mid) if mid else None
        error = None
        if not name:
            error = 'trackName is required'
        elif kind is None:
            error = f'mid {mid!r} is not a sending media section of the offer'
        elif mid in peer.publications:
            error = f'mid {mid!r} is already published'
        elif record.local_track(name) is not None:
            error = f'trackName {name!r} is already published on this session'
        if error is not None or kind is None:
            return TrackResult(track_name=name, mid=mid, error_code=INVALID_PARAMS, error_description=error)
        peer.publish(mid)
        record.tracks[mid] = TrackRecord(location='local', mid=mid, track_name=name, kind=kind)
        return TrackResult(track_name=name, mid=mid)

    async def _pull(self, record: SessionRecord, tracks: list[TrackObject]) -> TracksResponse:
        peer = self.peers[record.session_id]
        await self._await_connectivity(peer)
        found = await asyncio.gather(*(self._find_publication(t) for t in tracks))
        results: list[TrackResult] = []
        pending: list[tuple[int, Source]] = []
        for i, (item, (forwarder, error)) in enumerate(zip(tracks, found, strict=True)):
            if forwarder is None:
                desc = EMPTY_DESCRIPTION if error == EMPTY_TRACK_ERROR else NOT_FOUND_DESCRIPTION
                results.append(
                    TrackResult(
                        session_id=item.session_id,
                        track_name=item.track_name,
                        mid='',
                        error_code=error,
                        error_description=desc,
                    )
                )
                continue
            results.append(
                TrackResult(
                    session_id=item.session_id,
                    track_name=item.track_name,
                    simulcast=item.simulcast if isinstance(forwarder, SimulcastPublication) else None,
                )
            )
            pending.append((i, forwarder))
        if not pending:
            return TracksResponse(requires_immediate_renegotiation=False, tracks=results)
        transceivers = [(i, await peer.subscribe(f, tracks[i].simulcast)) for i, f in pending]
        offer_sdp = await peer.offer()
        peer.assign_mids()
        for i, transceiver in transceivers:
            item, mid = tracks[i], transceiver.mid or ''
            results[i].mid = mid
            record.tracks[mid] = TrackRecord(
                location='remote',
                mid=mid,
                track_name=item.track_name or '',
                kind=transceiver.kind,
                session_id=item.session_id,
            )
        record.awaiting_answer = True
        record.answer_deadline = self._now() + self.config.answer_timeout_s
        return TracksResponse(
            requires_immediate_renegotiation=True,
            session_description=SessionDescription(type='offer', sdp=offer_sdp),
            tracks=results,
        )

    async def _find_publication(self, item: TrackObject) -> tuple[Source | None, str]:
        key = (item.session_id or '', item.track_name or '')
        track = self.registry.publication(key)
        peer = self.peers.get(key[0])
        forwarder = None if track is None or peer is None else peer.publications.get(track.mid)
        if forwarder is None or forwarder.closed:
            return None, NOT_FOUND_TRACK_ERROR
        try:
            await asyncio.wait_for(forwarder.first_packet.wait(), self.config.empty_track_wait_s)
        except TimeoutError:
            return None, EMPTY_TRACK_ERROR
        return (None, NOT_FOUND_TRACK_ERROR) if forwarder.closed else (forwarder, '')

    # --- renegotiate -----------------------------------------------------------------------------------------
    async def renegotiate(self, session_id: str, request: RenegotiateRequest) -> RenegotiateResponse:
        record = self.session(session_id)
        peer = self.peers[session_id]
        async with record.lock:
            description = request.session_description
            if record.answer_overdue(self._now()):
                await self.expire_offer(record)  # too late: the subscriptions it offered are gone
            if record.closed:
                raise SessionGoneError('Session closed')
            if not record.awaiting_answer or peer.pc is None or peer.pc.localDescription is None:
                raise InvalidRequestError(
                    'No SFU offer is waiting for an answer', error_code=INVALID_SESSION_DESCRIPTION
                )
            if description.type != 'answer':
                raise InvalidRequestError('Expected an answer', error_code=INVALID_SESSION_DESCRIPTION)
            self._check(description.sdp, peer.pc.localDescription.sdp)
            try:
                await peer.accept_answer(description.sdp)
            except SdpError as exc:
                # still awaiting: the client may send a corrected answer until the deadline
                raise InvalidRequestError(str(exc), error_code=INVALID_SESSION_DESCRIPTION) from None
            record.awaiting_answer = False
            record.answer_deadline = None
            peer.answered()
        return RenegotiateResponse()

    async def expire_offer(self, record: SessionRecord) -> None:
        """Under the session lock: the SFU offer went unanswered past its deadline. Its subscriptions end (their
        senders stop, their tracks become inactive) and the session accepts requests again. A session whose PC is
        gone or failed cannot be negotiated again: it is closed (410 from now on), the client rebuilds."""
        record.awaiting_answer = False
        record.answer_deadline = None
        peer = self.peers.get(record.session_id)
        if peer is None:
            return
        mids = await peer.drop_offered()
        for mid in mids:
            track = record.tracks.get(mid)
            if track is not None:
                track.active = False
        logger.info('session %s: SFU offer unanswered, dropped %s', record.session_id, mids)
        if peer.pc is not None and peer.pc.connectionState in ('failed', 'closed'):
            await self.lifecycle.close_session(record.session_id)

    # --- tracks/close ----------------------------------------------------------------------------------------
    async def close_tracks(self, session_id: str, request: CloseTracksRequest) -> CloseTracksResponse:
        record = self.session(session_id)
        peer = self.peers[session_id]
        async with self._mutation(record):
            offer = request.session_description
            if not request.force and (offer is None or offer.type != 'offer'):
                raise InvalidRequestError('A negotiated close (force=false) needs an offer', error_code=INVALID_PARAMS)
            if offer is not None:
                self._check(offer.sdp, None)
            results: list[CloseTrackResult] = []
            for item in request.tracks:
                track = record.tracks.get(item.mid)
                if track is not None and not track.active:
                    # already ended (its publisher left or closed it), but the client closes it too: its m-line is
                    # handled like any other the client closed (see PeerSession.closed_by_client)
                    peer.closed_by_client(track.mid)
                if track is None or not track.active:
                    results.append(
                        CloseTrackResult(
                            mid=item.mid,
                            error_code=CLOSE_TRACK_ERROR,
                            error_description="Track doesn't exist or was already closed",
                        )
                    )
                    continue
                await self.lifecycle.close_track(record, track, by_client=True)
                results.append(CloseTrackResult(mid=item.mid))
            answer = None
            if not request.force and offer is not None:
                answer, _ = await self._answer(record, peer, offer)
        return CloseTracksResponse(requires_immediate_renegotiation=False, session_description=answer, tracks=results)

    # --- tracks/update ---------------------------------------------------------------------------------------
    async def update_tracks(self, session_id: str, request: UpdateTracksRequest) -> UpdateTracksResponse:
        record = self.session(session_id)
        peer = self.peers[session_id]
        async with self._mutation(record):
            results: list[TrackResult] = []
            for item in request.tracks:
                track = record.tracks.get(item.mid or '')
                result = TrackResult(mid=item.mid, session_id=item.session_id, track_name=item.track_name)
                if track is None or not track.active or track.location != 'remote':
                    result.error_code, result.error_description = UPDATE_TRACK_ERROR, 'Track not found'
                elif (item.session_id, item.track_name) != (track.session_id, track.track_name):
                    forwarder, _ = await self._find_publication(item)
                    if forwarder is None or forwarder.kind != track.kind:
                        result.error_code, result.error_description = NOT_FOUND_TRACK_ERROR, NOT_FOUND_DESCRIPTION
                    else:
                        peer.swap_source(track.mid, forwarder, item.simulcast)
                        track.session_id, track.track_name = item.session_id, item.track_name or ''
                        if isinstance(forwarder, SimulcastPublication):
                            result.simulcast = item.simulcast
                elif item.simulcast is not None:
                    if peer.is_simulcast(track.mid):
                        peer.select_layer(track.mid, item.simulcast)
                        result.simulcast = item.simulcast
                    else:
                        result.error_code = UPDATE_TRACK_ERROR
                        result.error_description = 'The track is not configured for simulcast, no updates applicable.'
                results.append(result)
        return UpdateTracksResponse(requires_immediate_renegotiation=False, tracks=results)

    # --- helpers ---------------------------------------------------------------------------------------------
    def _peer(self, record: SessionRecord) -> PeerSession:
        peer = PeerSession(
            record.session_id,
            ice_servers=self.config.ice_servers,
            counters=self._counters,
            on_state=self.lifecycle.on_connection_state,
            now=self._now,
            loss=self._loss,
            recycle_mlines=self.config.recycle_mlines,
        )
        self.peers[record.session_id] = peer
        return peer

    async def _answer(
        self, record: SessionRecord, peer: PeerSession, offer: SessionDescription
    ) -> tuple[SessionDescription, list[str]]:
        if offer.type != 'offer':
            raise InvalidRequestError('Expected an offer', error_code=INVALID_SESSION_DESCRIPTION)
        self._check(offer.sdp, None)
        try:
            sdp, mids = await peer.answer(offer.sdp)
        except SdpError as exc:
            raise InvalidRequestError(str(exc), error_code=INVALID_SESSION_DESCRIPTION) from None
        finally:
            # an unanswered SFU offer rolled back by peer.answer() takes its (inactive) subscriptions with it
            for mid, track in list(record.tracks.items()):
                if track.location == 'remote' and not track.active and mid not in peer.subscriptions:
                    del record.tracks[mid]
        return SessionDescription(type='answer', sdp=sdp), mids

    def _check(self, sdp: str, local_offer: str | None) -> None:
        problem = check_sdp(sdp, local_offer)
        if problem:
            raise InvalidRequestError(problem, error_code=INVALID_SESSION_DESCRIPTION)

    def _mutation(self, record: SessionRecord) -> Mutation:
        return Mutation(record, self._now, self.expire_offer)

    async def _await_connectivity(self, peer: PeerSession) -> None:
        pc = peer.pc
        if pc is None or pc.remoteDescription is None or pc.connectionState == 'connected':
            return
        try:
            await asyncio.wait_for(peer.connected.wait(), self.config.connect_wait_s)
        except TimeoutError:
            raise SessionNotReadyError(
                'Session is not ready yet. Please ensure the PeerConnection is connected before making this request'
            ) from None
