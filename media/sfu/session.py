"""The SFU side of one Calls session: its RTCPeerConnection, the publications it receives and the subscriptions
it sends. All SDP handling and aiortc object wiring for a session lives here; private internals go through
``aiortc_glue``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as sdp_module
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.calls_api import Simulcast

from . import aiortc_glue
from .codecs import negotiated_codec, preferences_for
from .forwarder import Counters, Downstream, Forwarder, PacketLoss
from .sdp_rejected import live_mids, mark_rejected, rejected_mids
from .simulcast import LayerSwitcher, SimulcastPublication, Source, offered_layers, receive_layers

logger = logging.getLogger(__name__)


class SdpError(ValueError):
    """An SDP that aiortc cannot parse or apply."""


@dataclass(kw_only=True, slots=True)
class Subscription:
    """A pulled track on this session: the publication's forwarder and, once connected, our downstream."""

    forwarder: Forwarder
    transceiver: RTCRtpTransceiver
    handle: aiortc_glue.SenderHandle | None = None
    downstream: Downstream | None = None
    switcher: LayerSwitcher | None = None  # a simulcast publication's layer chooser (forwarder is its own)
    closed: bool = False
    # closed, and its m-line may carry a new subscription: the client itself offered it inactive (a negotiated
    # close, as our browser client does it), or the SFU offer that added it was dropped unanswered
    recyclable: bool = False

    @property
    def port(self) -> aiortc_glue.SenderPort | None:
        return None if self.handle is None else self.handle.port

    def on_ready(self, port: aiortc_glue.SenderPort) -> None:
        if not self.closed and not self.forwarder.closed:
            self.downstream = self.forwarder.add_subscriber(port)

    def on_keyframe_request(self) -> None:
        self.forwarder.request_keyframe()

    def on_loss(self, fraction: float) -> None:
        """A receiver report from the subscriber (simulcast: it may move the layer, see ``LayerSwitcher``)."""
        if self.switcher is not None and not self.closed:
            self.switcher.on_loss(fraction)


class PeerSession:
    """One RTCPeerConnection on the SFU side (created on the first SDP exchange)."""

    def __init__(
        self,
        session_id: str,
        *,
        ice_servers: list[RTCIceServer],
        counters: Counters,
        on_state: Callable[[PeerSession, str], None],
        now: Callable[[], float],
        loss: PacketLoss | None = None,
        recycle_mlines: bool = False,
    ) -> None:
        self.session_id = session_id
        self.recycle_mlines = recycle_mlines
        self.pc: RTCPeerConnection | None = None
        self.publications: dict[str, Source] = {}  # by mid
        self.simulcast: dict[str, list[str]] = {}  # mid -> RIDs the client sends there (its latest offer)
        self.subscriptions: dict[str, Subscription] = {}  # by mid
        self.rejected_mids: set[str] = set()  # stopped by the client: rejected in every SDP we send from now on
        # closed by the client's tracks/close: rejected by the next answer if the client still offers them live
        self.closed_by_request: set[str] = set()
        self._ice_servers = ice_servers
        self._counters = counters
        self._on_state = on_state
        self._now = now
        self._loss = loss
        self.connected = asyncio.Event()
        self._pending: list[Subscription] = []  # subscribed, not yet in an offer
        self.offered: list[str] = []  # mids of the subscriptions in the SFU offer waiting for its answer
        # rejected m-lines that the pending SFU offer recycled: (old transceiver, m-line index), until it is answered
        self._recycled: list[tuple[RTCRtpTransceiver, int]] = []
        self._closed = False

    @property
    def connection_state(self) -> str:
        return 'new' if self.pc is None else self.pc.connectionState

    def _ensure_pc(self) -> RTCPeerConnection:
        if self.pc is None:
            config = RTCConfiguration(iceServers=list(self._ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            pc = RTCPeerConnection(configuration=config)
            self.pc = pc

            @pc.on('connectionstatechange')
            def _changed() -> None:
                if self.pc is not pc:
                    return  # replaced (see _forget_unanswered_offer)
                if pc.connectionState == 'connected':
                    self.connected.set()
                self._on_state(self, pc.connectionState)

        return self.pc

    async def answer(self, offer_sdp: str) -> tuple[str, list[str]]:
        """Apply a client offer; return the SFU answer and the offer's mids."""
        await self._forget_unanswered_offer()
        pc = self._ensure_pc()
        try:
            recycled = aiortc_glue.release_recycled_mlines(pc, offer_sdp, self.rejected_mids | rejected_mids(offer_sdp))
        except aiortc_glue.MlineReuseError as exc:
            raise SdpError(str(exc)) from exc
        for transceiver in recycled:
            await self._drop_transceiver(transceiver)
        old_tag, new_tag = aiortc_glue.current_bundle_tag(pc), aiortc_glue.bundle_tag(offer_sdp)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type='offer'))
        except Exception as exc:
            raise SdpError(str(exc) or type(exc).__name__) from exc
        self.simulcast = offered_layers(offer_sdp)
        aiortc_glue.keep_rid_extensions(pc, offer_sdp, set(self.simulcast))
        if old_tag is not None and new_tag not in (None, old_tag) and old_tag in rejected_mids(offer_sdp):
            # the client closed the m-line carrying the BUNDLE tag: it moved the group to a new transport (new
            # socket, new DTLS handshake); this answer's setLocalDescription handshakes again on the same ICE agent
            if await aiortc_glue.restart_dtls(pc):
                logger.info(
                    'session %s: BUNDLE moved from mid %s to %s; new DTLS handshake', self.session_id, old_tag, new_tag
                )
        await pc.setLocalDescription(await pc.createAnswer())
        mids = [t.mid for t in pc.getTransceivers() if t.mid is not None]
        self.rejected_mids |= rejected_mids(offer_sdp)
        # a closed track's m-line still offered live (sending or receiving): reject it so the client stops it; never
        # the BUNDLE tag (rejecting it would unbundle every other m-line), which stays inactive
        still_live = (self.closed_by_request & live_mids(offer_sdp)) - {new_tag}
        self.rejected_mids |= still_live
        self.closed_by_request -= self.rejected_mids
        inactive = inactive_mids(offer_sdp)
        for mid, sub in self.subscriptions.items():
            if sub.closed and mid in inactive:
                sub.recyclable = True
        answer = mark_rejected(pc.localDescription.sdp, self.rejected_mids)
        return _crlf(receive_layers(answer, self.simulcast)), mids

    async def offer(self) -> str:
        """Create and set an SFU offer covering every transceiver (new m-lines recycle rejected ones of their kind)."""
        pc = self._ensure_pc()
        offer = await aiortc_glue.create_offer(pc)
        if self.recycle_mlines and pc.signalingState == 'stable':
            offer, recycled = aiortc_glue.recycle_rejected_mlines(pc, offer, self.rejected_mids)
            self._recycled += recycled
        await pc.setLocalDescription(offer)
        return _crlf(receive_layers(mark_rejected(pc.localDescription.sdp, self.rejected_mids), self.simulcast))

    async def accept_answer(self, answer_sdp: str) -> None:
        pc = self._ensure_pc()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type='answer'))
        except Exception as exc:
            raise SdpError(str(exc) or type(exc).__name__) from exc
        recycled, self._recycled = self._recycled, []
        for old, _index in recycled:  # their m-lines now carry new subscriptions: they are gone for good
            if old.mid in self.subscriptions and self.subscriptions[old.mid].transceiver is old:
                await self.stop_subscription(old.mid)
                del self.subscriptions[old.mid]
            await old.stop()

    def offered_kind(self, mid: str) -> str | None:
        """Kind of a transceiver the client offered to send on (None if absent or not sending)."""
        t = self._transceiver(mid)
        if t is None or t.direction not in ('recvonly', 'sendrecv'):
            return None
        return t.kind

    def publish(self, mid: str) -> Source:
        """Start receiving on ``mid`` (after ``answer``) and return the publication's forwarder (a
        ``SimulcastPublication`` when the client sends simulcast there)."""
        assert self.pc is not None and self.pc.localDescription is not None
        transceiver = self._transceiver(mid)
        assert transceiver is not None
        codec = negotiated_codec(self.pc.localDescription.sdp, mid)
        mime = codec[0] if codec else ('video/VP8' if transceiver.kind == 'video' else 'audio/opus')
        receiver = transceiver.receiver

        async def request_keyframe(media_ssrc: int) -> None:
            await aiortc_glue.send_pli(receiver, media_ssrc)

        rids = self.simulcast.get(mid)
        if rids and transceiver.kind == 'video':
            return self._publish_simulcast(mid, receiver, rids, mime, codec[1] if codec else {}, request_keyframe)
        forwarder = Forwarder(
            kind=transceiver.kind,
            mime_type=mime,
            codec_parameters=codec[1] if codec else {},
            counters=self._counters,
            request_keyframe=request_keyframe,
            now=self._now,
            loss=self._loss,
        )
        self.publications[mid] = forwarder
        aiortc_glue.tap_receiver(receiver, forwarder.on_packet, feed=forwarder.feed)
        return forwarder

    def _publish_simulcast(
        self,
        mid: str,
        receiver: RTCRtpReceiver,
        rids: list[str],
        mime: str,
        parameters: dict[str, str | int],
        request_keyframe: Callable[[int], Awaitable[None]],
    ) -> SimulcastPublication:
        publication = SimulcastPublication(
            kind='video',
            mime_type=mime,
            codec_parameters=parameters,
            rids=rids,
            counters=self._counters,
            request_keyframe=request_keyframe,
            now=self._now,
            loss=self._loss,
        )

        def on_stream(ssrc: int, rid: str | None, repaired: str | None) -> bool:
            if rid:
                return publication.learn(ssrc, rid)
            media = publication.ssrc_of(repaired) if repaired else None
            if media is None:
                return False
            aiortc_glue.map_rtx_stream(receiver, ssrc, media)
            return True

        self.publications[mid] = publication
        aiortc_glue.per_stream_nacks(receiver)
        aiortc_glue.tap_receiver(receiver, publication.on_packet, feed=publication.feed)
        aiortc_glue.route_simulcast(receiver, on_stream)
        return publication

    async def subscribe(self, source: Source, simulcast: Simulcast | None = None) -> RTCRtpTransceiver:
        """A sendonly transceiver fed by ``source``: a recycled slot of its kind, else a new one. A simulcast
        source feeds it one layer (``simulcast``: the subscriber's preferences).

        A new transceiver's mid exists after the next ``offer()``; a recycled one keeps its mid.
        """
        pc = self._ensure_pc()
        switcher = source.subscribe(simulcast) if isinstance(source, SimulcastPublication) else None
        forwarder = source if switcher is None else switcher.forwarder
        assert isinstance(forwarder, Forwarder)
        sub = await self._recycle(forwarder) if self.recycle_mlines else None
        if sub is None:
            transceiver = pc.addTransceiver(forwarder.kind, direction='sendonly')
            sub = Subscription(forwarder=forwarder, transceiver=transceiver)
            sub.handle = aiortc_glue.SenderHandle(
                transceiver.sender, sub.on_ready, sub.on_keyframe_request, sub.on_loss
            )
        sub.switcher = switcher
        prefs = preferences_for(forwarder.kind, forwarder.mime_type, forwarder.codec_parameters)
        if prefs:
            sub.transceiver.setCodecPreferences(prefs)
        self._pending.append(sub)
        return sub.transceiver

    def recyclable_mids(self, kind: str) -> list[str]:
        """Mids of closed subscriptions of ``kind`` whose m-line can carry a new one.

        Closed by negotiation (the client offered it inactive) or dropped before any answer; never a stopped or
        rejected (port 0) m-line, never one closed by force only (the client may still hold it as receiving, or
        may have stopped it without telling, as aiortc does: only ``inactive`` says it will take a new stream).
        """
        pc = self.pc
        if pc is None:
            return []
        present = {id(t) for t in pc.getTransceivers()}
        claimed = {id(p.transceiver) for p in self._pending}
        return [
            mid
            for mid, sub in self.subscriptions.items()
            if sub.closed
            and sub.recyclable
            and sub.transceiver.kind == kind
            and id(sub.transceiver) in present
            and id(sub.transceiver) not in claimed
            and not sub.transceiver.stopped
            and mid not in self.rejected_mids
            and sub.transceiver.currentDirection in (None, 'inactive')
        ]

    async def _recycle(self, forwarder: Forwarder) -> Subscription | None:
        mids = self.recyclable_mids(forwarder.kind)
        if not mids:
            return None
        old = self.subscriptions[mids[0]]
        self.closed_by_request.discard(mids[0])  # the mid carries a new subscription: it is live again
        sub = Subscription(forwarder=forwarder, transceiver=old.transceiver, handle=old.handle)
        assert sub.handle is not None
        await sub.handle.recycle(sub.on_ready, sub.on_keyframe_request, sub.on_loss)  # fresh SSRCs: a new stream
        sub.transceiver.direction = 'sendonly'
        return sub

    def assign_mids(self) -> None:
        """After ``offer()``: index the new subscriptions by their mid; they wait for the answer."""
        self.offered = []
        for sub in self._pending:
            mid = sub.transceiver.mid
            assert mid is not None
            self.subscriptions[mid] = sub
            self.offered.append(mid)
        self._pending.clear()

    def answered(self) -> None:
        """The SFU offer was answered: its subscriptions are settled."""
        self.offered = []

    async def drop_offered(self) -> list[str]:
        """The SFU offer's answer never came (or never was valid): stop its subscriptions; return their mids.

        The offer itself stays this PC's pending local description: the next SFU offer carries the same m-lines
        (inactive, or recycled for a new pull), which is what a client that did apply it expects. A client offer
        rolls it back first (``_forget_unanswered_offer``).
        """
        mids, self.offered = self.offered, []
        for mid in mids:
            await self.stop_subscription(mid)
            self.subscriptions[mid].recyclable = True
        return mids

    async def stop_subscription(self, mid: str) -> None:
        """Stop forwarding to ``mid`` and end its stream: the sender stops (RTCP BYE, no more sender reports) and
        later offers and answers carry the m-line inactive until a new subscription recycles it."""
        sub = self.subscriptions.get(mid)
        if sub is None or sub.closed:
            return
        sub.closed = True
        if sub.downstream is not None:
            sub.forwarder.remove_subscriber(sub.downstream)
            sub.downstream = None
        if sub.switcher is not None:
            sub.switcher.close()
        if not sub.transceiver.stopped:
            sub.transceiver.direction = 'inactive'
        if sub.handle is not None:
            await sub.handle.stop()

    async def _forget_unanswered_offer(self) -> None:
        """Before a client offer: roll back an SFU offer that timed out unanswered (aiortc cannot apply a remote
        offer in ``have-local-offer``, and has no rollback). A PC that never negotiated is replaced instead."""
        pc = self.pc
        if pc is None or pc.signalingState != 'have-local-offer':
            return
        if pc.remoteDescription is None:  # nothing was ever negotiated: start over with a new PC
            for mid in list(self.subscriptions):
                await self.stop_subscription(mid)
            self.subscriptions.clear()
            self.pc = None
            self.connected = asyncio.Event()
            await pc.close()
            return
        detached = {id(t) for t in aiortc_glue.rollback_local_offer(pc)}
        aiortc_glue.restore_recycled(pc, self._recycled)
        self._recycled = []
        for mid, sub in list(self.subscriptions.items()):
            if id(sub.transceiver) in detached:
                await self.stop_subscription(mid)
                del self.subscriptions[mid]

    async def _drop_transceiver(self, transceiver: RTCRtpTransceiver) -> None:
        """A transceiver whose (rejected) m-line the client recycled under a new mid: its publication or
        subscription ends for good and it stops; the new mid gets a transceiver of its own."""
        mid = transceiver.mid
        if mid is not None:
            forwarder = self.publications.get(mid)
            if forwarder is not None:
                forwarder.close()
            if mid in self.subscriptions:
                await self.stop_subscription(mid)
                self.subscriptions[mid].recyclable = False
        await transceiver.stop()

    def is_simulcast(self, mid: str) -> bool:
        """Whether the subscription on ``mid`` watches a simulcast publication."""
        sub = self.subscriptions.get(mid)
        return sub is not None and sub.switcher is not None and not sub.closed

    def select_layer(self, mid: str, simulcast: Simulcast) -> None:
        """tracks/update with ``simulcast``: the subscription's new layer preferences (switched on a keyframe)."""
        sub = self.subscriptions[mid]
        assert sub.switcher is not None
        sub.switcher.select(simulcast)

    def swap_source(self, mid: str, source: Source, simulcast: Simulcast | None = None) -> None:
        """Feed an existing subscription from another publication of the same kind (tracks/update)."""
        sub = self.subscriptions[mid]
        if sub.downstream is not None:
            sub.forwarder.remove_subscriber(sub.downstream)
            sub.downstream = None
        if sub.switcher is not None:
            sub.switcher.close()
        sub.switcher = source.subscribe(simulcast) if isinstance(source, SimulcastPublication) else None
        forwarder = source if sub.switcher is None else sub.switcher.forwarder
        assert isinstance(forwarder, Forwarder)
        sub.forwarder = forwarder
        if sub.port is not None and not sub.closed and not forwarder.closed:
            sub.downstream = forwarder.add_subscriber(sub.port)

    def stop_publication(self, mid: str) -> Source | None:
        forwarder = self.publications.get(mid)
        if forwarder is not None:
            forwarder.close()
        return forwarder

    def closed_by_client(self, mid: str) -> None:
        """The client closed the track on ``mid`` (``tracks/close``). From now on answers carry its m-line
        ``inactive``, and the next answer rejects it if the client still offers it live (see ``sdp_rejected``)."""
        self.closed_by_request.add(mid)
        transceiver = self._transceiver(mid)
        if transceiver is not None and not transceiver.stopped:
            transceiver.direction = 'inactive'

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for forwarder in self.publications.values():
            forwarder.close()
        for mid in list(self.subscriptions):
            await self.stop_subscription(mid)
        if self.pc is not None:
            await self.pc.close()

    def _transceiver(self, mid: str) -> RTCRtpTransceiver | None:
        if self.pc is None:
            return None
        return next((t for t in self.pc.getTransceivers() if t.mid == mid), None)


def inactive_mids(sdp: str) -> set[str]:
    """The mids a (parsable) SDP marks ``inactive``."""
    return {m.rtp.muxId for m in sdp_module.SessionDescription.parse(sdp).media if m.direction == 'inactive'}


def _crlf(sdp: str) -> str:
    return sdp if sdp.endswith('\r\n') else sdp.rstrip('\r\n') + '\r\n'
