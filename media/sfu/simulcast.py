"""Simulcast receive: a publisher's layers (RIDs) told apart, one layer per subscriber, switched on a keyframe.

A simulcast offer (``a=simulcast:send a;b;c`` with ``a=rid:<rid> send`` lines) carries no ``a=ssrc``: each layer is
its own RTP stream, told apart by the ``rtp-stream-id`` header extension (and its RTX by ``repaired-rtp-stream-id``)
on its first packets (Chromium stops sending them once the SSRC is acknowledged). The SFU answers
``a=simulcast:recv`` with the offered RIDs and keeps both RID extensions; ``aiortc_glue.route_simulcast`` routes an
unknown SSRC by its MID extension to the m-line's receiver and tells the publication which RID it carries.

Nothing is transcoded. Each subscriber gets a ``LayerSwitcher``: its own ``Forwarder`` (one downstream) fed with the
packets of the layer it watches, renumbered into one continuous stream (sequence numbers and timestamps carry on
across a switch, so the subscriber's jitter buffer sees one stream). A switch (``tracks/update`` with
``simulcast.preferredRid``, or ``ridNotAvailable: asciibetical`` when the layer watched stops) asks the target
layer for a keyframe (PLI) and happens on that keyframe's first packet; the old layer is forwarded until then.

Layer choice (Cloudflare's rules): ``preferredRid`` picks the layer (unset: the first RID in a-z order, the most
desirable by Cloudflare's naming advice); ``ridNotAvailable: asciibetical`` moves to the next available RID in a-z
order when the chosen one sends nothing for ``LAYER_IDLE_S`` (``none``: stay). ``priorityOrdering: asciibetical``
lets the SFU step a subscriber down the a-z order when its link cannot carry the layer, and back up when it can.
The SFU has no bandwidth estimate per subscriber, so "cannot carry" is read from the subscriber's own receiver
reports, as loss-based congestion control does: more than ``LOSS_DOWN`` of the packets lost in
``LOSSY_REPORTS_DOWN`` reports in a row caps the subscriber one layer lower; under ``LOSS_CLEAN`` for ``UP_AFTER_S``
lifts the cap one layer. ``none`` (the default) never moves the subscriber for loss.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc.rtp import RtpPacket

from media.calls_api import Simulcast

from .codecs import is_keyframe_start
from .forwarder import Counters, Downstream, Forwarder, PacketLoss

RID_URI = 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id'
REPAIRED_RID_URI = 'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id'
RID_URIS = (RID_URI, REPAIRED_RID_URI)
# A layer that sent nothing for this long is not available (Chromium stops a layer its bandwidth cannot carry).
LAYER_IDLE_S = 1.0
# Timestamp step between the last frame of the old layer and the first of the new one (one frame at 30 fps).
SWITCH_TS_STEP = 3000
# While a subscriber waits for its target layer's keyframe, that layer is asked for one at most this often.
SWITCH_REQUEST_INTERVAL_S = 1.0
# priorityOrdering: asciibetical (loss from the subscriber's receiver reports, one every second or so)
LOSS_DOWN = 0.10
LOSSY_REPORTS_DOWN = 2
LOSS_CLEAN = 0.02
UP_AFTER_S = 10.0

_MID = re.compile(r'^a=mid:(\S+)', re.MULTILINE)
_SIMULCAST_SEND = re.compile(r'^a=simulcast:send (\S+)', re.MULTILINE)
_RID_SEND = re.compile(r'^a=rid:([A-Za-z0-9_-]+) send', re.MULTILINE)


def _sections(sdp: str) -> list[str]:
    return re.split(r'(?m)^(?=m=)', sdp)


def offered_layers(offer_sdp: str) -> dict[str, list[str]]:
    """Per mid, the RIDs an offer sends as simulcast (``a=simulcast:send``), in the offer's order."""
    layers: dict[str, list[str]] = {}
    for section in _sections(offer_sdp)[1:]:
        mid, simulcast = _MID.search(section), _SIMULCAST_SEND.search(section)
        if mid is None or simulcast is None or section.split(' ', 2)[1] == '0':
            continue
        declared = set(_RID_SEND.findall(section))
        rids: list[str] = []
        for stream in simulcast.group(1).split(';'):
            for alternative in stream.split(','):
                rid = alternative.lstrip('~')
                if rid and (not declared or rid in declared) and rid not in rids:
                    rids.append(rid)
        if len(rids) > 1:
            layers[mid.group(1)] = rids
    return layers


def receive_layers(sdp: str, layers: dict[str, list[str]]) -> str:
    """``sdp`` (an SFU answer or offer) plus ``a=rid:<rid> recv`` and ``a=simulcast:recv`` for ``layers``' mids."""
    if not layers:
        return sdp
    out: list[str] = []
    for section in _sections(sdp):
        mid = _MID.search(section)
        rids = layers.get(mid.group(1)) if mid else None
        if rids and mid is not None and 'a=simulcast:' not in section:
            lines = ''.join(f'a=rid:{rid} recv\r\n' for rid in rids) + f'a=simulcast:recv {";".join(rids)}\r\n'
            end = mid.end()
            newline = section.find('\n', end)
            at = len(section) if newline < 0 else newline + 1
            section = section[:at] + lines + section[at:]
        out.append(section)
    return ''.join(out)


def choose_layer(
    rids: list[str], available: set[str], selection: Simulcast | None, current: str | None, cap: str | None = None
) -> str:
    """The layer a subscriber should watch now (Cloudflare's preferredRid / ridNotAvailable rules). ``cap``: the
    most desirable layer its link carries now (priorityOrdering), never exceeded."""
    ordered = sorted(rids)
    preferred = selection.preferred_rid if selection is not None and selection.preferred_rid in rids else None
    # under priorityOrdering the wanted layer is the preferred (or most desirable) one, capped; otherwise a layer
    # reached by ridNotAvailable is kept while no preference says otherwise
    by_priority = selection is not None and selection.priority_ordering == 'asciibetical'
    wanted = preferred or (current if current in rids and not by_priority else None) or ordered[0]
    if cap is not None and cap in rids and wanted < cap:
        wanted = cap
    if wanted in available or not available:
        return wanted
    if selection is not None and selection.rid_not_available == 'asciibetical':
        after = [r for r in ordered if r > wanted and r in available]
        before = [r for r in ordered if r < wanted and r in available]
        return (after or before or [wanted])[0]
    return wanted


@dataclass(kw_only=True, slots=True)
class Layer:
    rid: str
    ssrc: int | None = None
    last_packet_at: float = -1e9


@dataclass(kw_only=True)
class LayerSwitcher:
    """One subscriber's view of a simulcast publication: the layer it watches, as one continuous stream."""

    publication: SimulcastPublication
    forwarder: Forwarder
    selection: Simulcast | None
    target: str
    current: str | None = None
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    _seq_delta: int = 0
    _ts_delta: int = 0
    _last_seq: int | None = None
    _last_ts: int = 0
    _next_request: float = -1e9
    cap: str | None = None  # priorityOrdering: the most desirable layer the subscriber's link carries now
    _lossy_reports: int = 0
    _clean_since: float | None = None

    def select(self, selection: Simulcast | None) -> None:
        """New preferences (tracks/update): retarget and ask the target layer for a keyframe."""
        self.selection = selection
        if selection is None or selection.priority_ordering != 'asciibetical':
            self.cap = None
        self.retarget()

    def on_loss(self, fraction: float, now: float | None = None) -> None:
        """A receiver report from the subscriber: ``fraction`` of the packets lost since its last one."""
        if self.selection is None or self.selection.priority_ordering != 'asciibetical':
            return
        now = self.publication.now() if now is None else now
        ordered = sorted(self.publication.rids)
        watched = self.current or self.target
        if fraction > LOSS_DOWN:
            self._clean_since = None
            self._lossy_reports += 1
            if self._lossy_reports < LOSSY_REPORTS_DOWN:
                return
            self._lossy_reports = 0
            available = self.publication.available()
            lower = [r for r in ordered if r > watched and (r in available or not available)]
            if lower:
                self.cap = lower[0]
                self.retarget()
            return
        self._lossy_reports = 0
        if fraction >= LOSS_CLEAN or self.cap is None:
            self._clean_since = None
            return
        if self._clean_since is None:
            self._clean_since = now
        elif now - self._clean_since >= UP_AFTER_S:
            self._clean_since = now
            higher = [r for r in ordered if r < self.cap]
            preferred = self.selection.preferred_rid if self.selection.preferred_rid in ordered else ordered[0]
            self.cap = higher[-1] if higher and higher[-1] > preferred else None
            self.retarget()

    def retarget(self) -> None:
        pub = self.publication
        target = choose_layer(pub.rids, pub.available(), self.selection, self.current, self.cap)
        if target != self.target or (self.current is not None and target != self.current):
            self.target = target
            if target != self.current:
                pub.request_layer_keyframe(target)

    def offer(self, rid: str, packet: RtpPacket, now: float) -> None:
        if rid != self.current:
            if rid != self.target:
                return
            if not is_keyframe_start(self.publication.mime_type, packet.payload):
                if now >= self._next_request:  # waiting for the target layer's keyframe: ask for it (rate-limited)
                    self._next_request = now + SWITCH_REQUEST_INTERVAL_S
                    self.publication.request_layer_keyframe(rid)
                return
            self._switch(packet)
        seq = (packet.sequence_number + self._seq_delta) & 0xFFFF
        ts = (packet.timestamp + self._ts_delta) & 0xFFFFFFFF
        if self._last_seq is None or (seq - self._last_seq) & 0xFFFF < 0x8000:
            self._last_seq, self._last_ts = seq, ts
        out = RtpPacket(
            payload_type=packet.payload_type,
            marker=packet.marker,
            sequence_number=seq,
            timestamp=ts,
            ssrc=self.ssrc,
            payload=packet.payload,
        )
        slow = self.forwarder.feed(out, now)
        if slow:  # legacy ports (SFU_FORWARD_PATH=legacy) are sent to by a coroutine
            self.publication.spawn(self._send(slow, out))

    async def _send(self, downs: list[Downstream], packet: RtpPacket) -> None:
        for down in downs:
            await self.forwarder._send(down, packet)

    def _switch(self, packet: RtpPacket) -> None:
        """Start forwarding the target layer from this keyframe packet, continuing the subscriber's numbering."""
        self.current = self.target
        if self._last_seq is not None:
            self._seq_delta = (self._last_seq + 1 - packet.sequence_number) & 0xFFFF
            self._ts_delta = (self._last_ts + SWITCH_TS_STEP - packet.timestamp) & 0xFFFFFFFF

    def close(self) -> None:
        self.forwarder.close()
        self.publication.switchers.discard(self)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return other is self


class SimulcastPublication:
    """A published simulcast track: its layers by RID and SSRC, fanned out through one switcher per subscriber.

    Stands where a ``Forwarder`` stands for a plain publication (``first_packet``, ``closed``, ``last_packet_at``,
    ``close()``); subscribers come through ``subscribe()``.
    """

    def __init__(
        self,
        *,
        kind: str,
        mime_type: str,
        codec_parameters: dict[str, str | int],
        rids: list[str],
        counters: Counters,
        request_keyframe: Callable[[int], Awaitable[None]],
        now: Callable[[], float],
        loss: PacketLoss | None = None,
    ) -> None:
        self.kind = kind
        self.mime_type = mime_type.lower()
        self.codec_parameters = codec_parameters
        self.rids = list(rids)
        self.layers = {rid: Layer(rid=rid) for rid in rids}
        self.switchers: set[LayerSwitcher] = set()
        self.first_packet = asyncio.Event()
        self.closed = False
        self._by_ssrc: dict[int, Layer] = {}
        self._counters = counters
        self._request_keyframe = request_keyframe
        self._now = now
        self._loss = loss
        self.last_packet_at = now()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the receiving side ----------------------------------------------------------------------------------------
    def learn(self, ssrc: int, rid: str) -> bool:
        """The router saw ``ssrc`` carry layer ``rid`` (its RID extension); False for a RID not offered."""
        layer = self.layers.get(rid)
        if layer is None:
            return False
        if layer.ssrc is not None and layer.ssrc != ssrc:
            self._by_ssrc.pop(layer.ssrc, None)
        layer.ssrc = ssrc
        self._by_ssrc[ssrc] = layer
        return True

    def ssrc_of(self, rid: str) -> int | None:
        layer = self.layers.get(rid)
        return None if layer is None else layer.ssrc

    def feed(self, packet: RtpPacket, now: float | None = None) -> None:
        layer = self._by_ssrc.get(packet.ssrc)
        if layer is None or self.closed:
            return
        self._counters.packets_in += 1  # once per received packet, whatever the number of subscribers
        now = self._now() if now is None else now
        stale = [r for r, lay in self.layers.items() if now - lay.last_packet_at > LAYER_IDLE_S]
        layer.last_packet_at = self.last_packet_at = now
        self.first_packet.set()
        if layer.rid in stale:  # a layer came back: switchers waiting for it (or preferring it) may move
            for switcher in list(self.switchers):
                switcher.retarget()
        for switcher in list(self.switchers):
            if switcher.current is not None and switcher.current != layer.rid:
                watched = self.layers[switcher.current]
                if now - watched.last_packet_at > LAYER_IDLE_S:
                    switcher.retarget()  # ridNotAvailable: the watched layer stopped
            switcher.offer(layer.rid, packet, now)

    async def on_packet(self, packet: RtpPacket) -> None:
        self.feed(packet)

    def now(self) -> float:
        return self._now()

    def available(self) -> set[str]:
        now = self._now()
        return {rid for rid, layer in self.layers.items() if now - layer.last_packet_at <= LAYER_IDLE_S}

    # --- the sending side ------------------------------------------------------------------------------------------
    def subscribe(self, selection: Simulcast | None) -> LayerSwitcher:
        async def request_keyframe(_ssrc: int) -> None:
            switcher_target = switcher.current or switcher.target
            ssrc = self.ssrc_of(switcher_target)
            if ssrc is not None:
                await self._request_keyframe(ssrc)

        forwarder = Forwarder(
            kind=self.kind,
            mime_type=self.mime_type,
            codec_parameters=self.codec_parameters,
            counters=self._counters,
            request_keyframe=request_keyframe,
            now=self._now,
            loss=self._loss,
            count_in=False,
        )
        target = choose_layer(self.rids, self.available(), selection, None)
        switcher = LayerSwitcher(publication=self, forwarder=forwarder, selection=selection, target=target)
        self.switchers.add(switcher)
        return switcher

    def request_layer_keyframe(self, rid: str) -> None:
        ssrc = self.ssrc_of(rid)
        if ssrc is not None and not self.closed:
            self._counters.keyframe_requests += 1
            self.spawn(self._request_keyframe(ssrc))

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        self.closed = True
        for switcher in list(self.switchers):
            switcher.close()
        for task in self._tasks:
            task.cancel()


Source = Forwarder | SimulcastPublication
