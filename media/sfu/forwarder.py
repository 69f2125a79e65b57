"""RTP fan-out for one publication: rewrite per subscriber, keyframe cache, keyframe requests. No codec in the path.

Each subscriber (``Downstream``) gets its own SSRC, payload type, sequence and timestamp offsets. Offsets are fixed
when the subscriber starts, so every gap upstream stays a gap downstream (the subscriber's NACK/PLI keep working).
Video subscribers start on a keyframe: the cached latest keyframe and what followed it are replayed at once,
otherwise packets are dropped until the next keyframe while a PLI asks the publisher for one.

For diagnostics a ``PacketLoss`` can drop a fraction of the packets sent to each subscriber (``SFU_SIMULATE_LOSS``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc.rtp import RtpPacket

from .aiortc_glue import SenderPort
from .codecs import is_keyframe_start

logger = logging.getLogger(__name__)

PLI_MIN_INTERVAL_S = 0.3


@dataclass(kw_only=True, slots=True)
class Counters:
    """Process-wide forwarding counters (read by ``EmbeddedSFU.stats()``)."""

    packets_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    keyframe_requests: int = 0
    cache_replays: int = 0
    simulated_drops: int = 0


class PacketLoss:
    """Diagnostic packet loss: each packet to each subscriber is dropped with probability ``fraction``.

    A dropped packet is rewritten (so the subscriber sees a gap in sequence numbers) but never sent nor kept for
    retransmission: a NACK cannot repair it, and the subscriber's ``packetsLost`` counts it like real loss.
    """

    def __init__(self, fraction: float, rng: random.Random | None = None) -> None:
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f'loss fraction must be in [0, 1), got {fraction}')
        self.fraction = fraction
        self._rng = rng or random.Random()

    def drop(self) -> bool:
        return self.fraction > 0.0 and self._rng.random() < self.fraction


@dataclass(kw_only=True, slots=True)
class Downstream:
    """One subscriber's view of a publication."""

    port: SenderPort
    seq_offset: int | None = None
    ts_offset: int = field(default_factory=lambda: random.getrandbits(32))
    first_seq: int = 0
    waiting_keyframe: bool = False
    # While the keyframe cache is replayed, live packets queue here so the subscriber gets them in order
    # (out-of-order sends would fail SRTP's replay check for the older packets).
    backlog: list[RtpPacket] | None = None
    send_failed: bool = False

    def rewrite(self, packet: RtpPacket) -> RtpPacket | None:
        """Return the packet as this subscriber sees it, or None if it precedes the subscriber's start."""
        if self.seq_offset is None:
            self.first_seq = packet.sequence_number
            self.seq_offset = (random.getrandbits(15) - packet.sequence_number) & 0xFFFF
        elif (packet.sequence_number - self.first_seq) & 0xFFFF >= 0x8000:
            return None  # a retransmission from before this subscriber joined
        out = RtpPacket(
            payload_type=self.port.payload_type,
            marker=packet.marker,
            sequence_number=(packet.sequence_number + self.seq_offset) & 0xFFFF,
            timestamp=(packet.timestamp + self.ts_offset) & 0xFFFFFFFF,
            ssrc=self.port.ssrc,
            payload=packet.payload,
        )
        out.extensions.audio_level = packet.extensions.audio_level
        return out


class Forwarder:
    """Fans one published track out to its subscribers."""

    def __init__(
        self,
        *,
        kind: str,
        mime_type: str,
        codec_parameters: dict[str, str | int],
        counters: Counters,
        request_keyframe: Callable[[int], Awaitable[None]],
        now: Callable[[], float],
        cache_packets: int = 600,
        loss: PacketLoss | None = None,
    ) -> None:
        self.kind = kind
        self.mime_type = mime_type.lower()
        self.codec_parameters = codec_parameters
        self.downstreams: list[Downstream] = []
        self.first_packet = asyncio.Event()
        self.media_ssrc: int | None = None
        self.closed = False
        self._counters = counters
        self._request_keyframe = request_keyframe
        self._now = now
        self._loss = loss
        self.last_packet_at = now()
        self._cache: list[RtpPacket] = []
        self._cache_limit = cache_packets
        self._last_pli = -1e9
        self._pli_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_packet(self, packet: RtpPacket) -> None:
        """Called for every RTP packet the publisher's receiver gets (RTX already unwrapped)."""
        if self.closed:
            return
        self._counters.packets_in += 1
        self.last_packet_at = self._now()
        self.media_ssrc = packet.ssrc
        self.first_packet.set()
        keyframe = self.kind == 'video' and is_keyframe_start(self.mime_type, packet.payload)
        if self.kind == 'video':
            self._update_cache(packet, keyframe)
        for down in list(self.downstreams):
            if down.backlog is not None:
                down.backlog.append(packet)
                continue
            if down.waiting_keyframe:
                if not keyframe:
                    continue
                down.waiting_keyframe = False
            await self._send(down, packet)

    def add_subscriber(self, port: SenderPort) -> Downstream:
        """Start forwarding to a subscriber; video starts from the cached keyframe if there is one."""
        down = Downstream(port=port)
        self.downstreams.append(down)
        if self.kind == 'video':
            if self._cache:
                self._counters.cache_replays += 1
                down.backlog = list(self._cache)
                self._spawn(self._replay(down))
            else:
                down.waiting_keyframe = True
                self.request_keyframe()
        return down

    def remove_subscriber(self, down: Downstream) -> None:
        if down in self.downstreams:
            self.downstreams.remove(down)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per ``PLI_MIN_INTERVAL_S`` (later requests coalesce)."""
        if self.closed or self.kind != 'video' or self._pli_timer is not None:
            return
        wait = self._last_pli + PLI_MIN_INTERVAL_S - self._now()
        if wait > 0:
            self._pli_timer = asyncio.get_running_loop().call_later(wait, self._send_pli)
        else:
            self._send_pli()

    def close(self) -> None:
        """Stop forwarding; subscribers are detached (the session layer ends their tracks)."""
        self.closed = True
        self.downstreams.clear()
        self._cache.clear()
        if self._pli_timer is not None:
            self._pli_timer.cancel()
            self._pli_timer = None
        for task in self._tasks:
            task.cancel()

    def _send_pli(self) -> None:
        self._pli_timer = None
        if self.closed:
            return
        self._last_pli = self._now()
        if self.media_ssrc is not None:
            self._counters.keyframe_requests += 1
            self._spawn(self._request_keyframe(self.media_ssrc))

    def _update_cache(self, packet: RtpPacket, keyframe: bool) -> None:
        if keyframe:
            self._cache = [packet]
        elif self._cache:
            self._cache.append(packet)
            if len(self._cache) > self._cache_limit:
                # too long since the last keyframe: refresh rather than replay a long backlog
                self._cache = []
                self.request_keyframe()

    async def _replay(self, down: Downstream) -> None:
        backlog = down.backlog
        while backlog:
            await self._send(down, backlog.pop(0))
        down.backlog = None  # no await since the emptiness check: live packets now go straight out

    async def _send(self, down: Downstream, packet: RtpPacket) -> None:
        out = down.rewrite(packet)
        if out is None:
            return
        if self._loss is not None and self._loss.drop():
            self._counters.simulated_drops += 1
            return
        try:
            sent = await down.port.send(out)
        except Exception as error:
            if not down.send_failed:  # once per subscriber: a dying transport fails every packet
                down.send_failed = True
                logger.warning('forwarding to ssrc %s failed: %s: %s', down.port.ssrc, type(error).__name__, error)
            return
        if sent:
            self._counters.packets_out += 1
            self._counters.bytes_out += sent

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
