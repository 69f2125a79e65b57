"""RTP fan-out for one publication: rewrite per subscriber, keyframe cache, keyframe requests. No codec in the path.

Each subscriber (``Downstream``) gets its own SSRC, payload type, sequence and timestamp offsets. Offsets are fixed
when the subscriber starts, so every gap upstream stays a gap downstream (the subscriber's NACK/PLI keep working).
Sequence numbers are compared on extended (unwrapped) values per subscriber: a stream wraps every 65,536 packets.

Video subscribers start on a keyframe. The forwarder keeps the latest keyframe and at most ``KEYFRAME_CACHE_SPAN_S``
of media after it (and at most ``cache_packets`` packets); a new subscriber gets that cache replayed, paced: the
keyframe at once, the rest in small chunks a few milliseconds apart while its live packets queue behind. With no
usable cache the subscriber waits for the next keyframe and the publisher is asked for one.

Keyframe requests (PLI) go to the publisher only when a subscriber needs one — a joiner with no usable cache, or a
subscriber's own PLI/FIR — and at most once per ``KEYFRAME_REQUEST_INTERVAL_S``: later requests coalesce into one
sent when the interval is over, and a keyframe arriving meanwhile satisfies them. A cache that outgrows its bound is
simply dropped; nobody watching means no request.

For diagnostics a ``PacketLoss`` can drop a fraction of the packets sent to each subscriber (``SFU_SIMULATE_LOSS``).

Two paths (``SFU_FORWARD_PATH``): ``feed(packet, now)`` is called synchronously by the lean receiver and writes to
every fast port (``SenderPort.write``: sequence and timestamp as integers, the header patched in bytes, no
``RtpPacket`` and no coroutine per subscriber); ``on_packet(packet)``, the legacy tap, does the same bookkeeping and
then awaits ``port.send(rewritten RtpPacket)`` for ports without ``write``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc.rtp import RtpPacket

from .aiortc_glue import NTP, SenderPort, abs_send_time_bytes
from .codecs import is_keyframe_start

logger = logging.getLogger(__name__)

# One keyframe a second for everyone at most: a lossy viewer's PLI storm must not multiply every viewer's bitrate
# (a keyframe is 5-20 times an inter frame), and Chrome ignores a second request within 300 ms anyway.
KEYFRAME_REQUEST_INTERVAL_S = 1.0

# The cache holds the latest keyframe and at most this much media after it (RTP timestamps, and arrival time for a
# publisher that paused): replaying more only delays the joiner's live picture and bursts its link.
KEYFRAME_CACHE_SPAN_S = 1.0
VIDEO_CLOCK_RATE = 90_000

# Replay pacing: the keyframe's own packets (up to REPLAY_FIRST_BURST) at once so the first picture comes fast, then
# REPLAY_CHUNK packets every REPLAY_TICK_S (≈ 1,200 packets/s, a few times a camera's rate, so the replay catches up
# with live) — small enough bursts for a real link and a browser's receive buffer.
REPLAY_FIRST_BURST = 64
REPLAY_CHUNK = 6
REPLAY_TICK_S = 0.005
# A replay's queue holds what is left of the cache plus at most this many live packets; more means the replay cannot
# keep up (a stalled loop or link), and the subscriber starts over on the next keyframe instead of lagging further.
REPLAY_BACKLOG_PACKETS = 400

# A packet further behind the highest sequence number than this is no reordering nor retransmission (the sender's
# history is far shorter): it is a jump in the publisher's numbering, followed once two packets agree (RFC 3550 A.1).
MAX_MISORDER = 3000

_SEQ_MOD = 0x10000
_SEQ_HALF = 0x8000
_TS_MASK = 0xFFFFFFFF
_TS_HALF = 0x80000000
_KEYFRAME_RETRANSMIT_TICKS = 5 * VIDEO_CLOCK_RATE  # an older keyframe start within this is a retransmission
_NONE: list[Downstream] = []  # feed()'s "no legacy subscriber" answer, never mutated


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
    # the port's synchronous ``write`` (fast path: header bytes patched, no RtpPacket, no coroutine per packet)
    fast: bool = False
    seq_offset: int | None = None
    ts_offset: int = field(default_factory=lambda: random.getrandbits(32))
    first_seq: int = 0
    waiting_keyframe: bool = False
    # While the keyframe cache is replayed, live packets queue here behind what is left of it so the subscriber gets
    # everything in order (out-of-order sends would fail SRTP's replay check for the older packets).
    backlog: deque[RtpPacket] | None = None
    send_failed: bool = False
    # Extended (unwrapped) sequence numbers: the subscriber's first packet and the highest seen since.
    first_ext: int = field(default=0, init=False, repr=False)
    highest_ext: int = field(default=0, init=False, repr=False)
    _jump_seq: int = field(default=-1, init=False, repr=False)  # the sequence number that confirms a jump

    def rewrite(self, packet: RtpPacket) -> RtpPacket | None:
        """Return the packet as this subscriber sees it, or None if it precedes the subscriber's start."""
        seq = self.map_seq(packet.sequence_number)
        if seq is None:
            return None
        out = RtpPacket(
            payload_type=self.port.payload_type,
            marker=packet.marker,
            sequence_number=seq,
            timestamp=(packet.timestamp + self.ts_offset) & _TS_MASK,
            ssrc=self.port.ssrc,
            payload=packet.payload,
        )
        out.extensions.audio_level = packet.extensions.audio_level
        return out

    def map_seq(self, seq: int) -> int | None:
        """This subscriber's sequence number for the publisher's ``seq``, or None if it precedes its start."""
        if self.seq_offset is None:
            self.first_seq = seq
            self.first_ext = self.highest_ext = seq
            self.seq_offset = (random.getrandbits(15) - seq) & 0xFFFF
        else:
            ahead = (seq - self.highest_ext) & 0xFFFF
            if ahead < _SEQ_HALF:
                self.highest_ext += ahead
            elif _SEQ_MOD - ahead <= MAX_MISORDER:
                if self.highest_ext - (_SEQ_MOD - ahead) < self.first_ext:
                    return None  # a retransmission (or late reordering) from before this subscriber started
            elif seq == self._jump_seq:
                self.highest_ext += ahead  # the publisher's numbering jumped: carry on from here
            else:
                self._jump_seq = (seq + 1) & 0xFFFF
                return None
        return (seq + self.seq_offset) & 0xFFFF


class Forwarder:
    """Fans one published track out to its subscribers.

    :param now: monotonic clock (seconds) for liveness, the cache's age and the keyframe request interval.
    :param cache_packets: hard cap on the keyframe cache in packets (its span is bounded by
        ``KEYFRAME_CACHE_SPAN_S`` of RTP time too); a cache that outgrows either is dropped, with no keyframe request.
    :param sleep: what paces a cache replay between chunks (tests inject one that counts ticks).
    """

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
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        count_in: bool = True,
    ) -> None:
        self.kind = kind
        self._count_in = count_in  # False: a simulcast subscriber's own forwarder (its publication counts arrivals)
        self.mime_type = mime_type.lower()
        self.codec_parameters = codec_parameters
        self.downstreams: list[Downstream] = []
        self.first_packet = asyncio.Event()
        self.media_ssrc: int | None = None
        self.closed = False
        self._video = kind == 'video'
        self._fanout: tuple[Downstream, ...] = ()  # snapshot of downstreams: no list copy per packet
        self._counters = counters
        self._request_keyframe = request_keyframe
        self._now = now
        self._loss = loss
        self._sleep = sleep
        self.last_packet_at = now()
        self._cache: list[RtpPacket] = []
        self._cache_limit = cache_packets
        self._cache_span = round(KEYFRAME_CACHE_SPAN_S * VIDEO_CLOCK_RATE)
        self._cache_at = 0.0  # arrival of the cached keyframe
        self._keyframe_ts: int | None = None  # RTP timestamp of the latest keyframe, cached or not
        self._last_request_at = -math.inf
        self._request_due: float | None = None  # a coalesced keyframe request waits until then
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_packet(self, packet: RtpPacket) -> None:
        """Called for every RTP packet the publisher's receiver gets (RTX already unwrapped): the legacy tap."""
        for down in self.feed(packet):
            await self._send(down, packet)

    def feed(self, packet: RtpPacket, now: float | None = None) -> list[Downstream]:
        """Forward one packet: synchronously to every fast subscriber; return the others (legacy ports), which the
        caller sends to with ``_send`` (``on_packet`` does). ``now``: the monotonic time the caller already read."""
        if self.closed:
            return _NONE
        if self._count_in:
            self._counters.packets_in += 1
        if now is None:
            now = self._now()
        self.last_packet_at = now
        self.media_ssrc = packet.ssrc
        self.first_packet.set()
        keyframe = False
        if self._video:
            keyframe = self._update_cache(packet, now)
            if keyframe:
                self._request_due = None  # whoever asked gets this keyframe
            elif self._request_due is not None and now >= self._request_due:
                self._send_request(now)
        fanout = self._fanout
        if not fanout:
            return _NONE
        slow = _NONE
        abs3 = b''
        ntp = 0
        counters = self._counters
        for down in fanout:
            backlog = down.backlog
            if backlog is not None:
                if len(backlog) < REPLAY_BACKLOG_PACKETS + self._cache_limit:
                    backlog.append(packet)
                    continue
                self._abandon_replay(down)
            if down.waiting_keyframe:
                if not keyframe:
                    continue
                down.waiting_keyframe = False
            if not down.fast:
                if slow is _NONE:
                    slow = []
                slow.append(down)
                continue
            # the fast path, inlined: the in-order case of Downstream.map_seq, then the port's write
            seq = packet.sequence_number
            ahead = (seq - down.highest_ext) & 0xFFFF
            if 0 < ahead < _SEQ_HALF and down.seq_offset is not None:
                down.highest_ext += ahead
                out_seq = (seq + down.seq_offset) & 0xFFFF
            else:
                mapped = down.map_seq(seq)
                if mapped is None:
                    continue
                out_seq = mapped
            if self._loss is not None and self._loss.drop():
                counters.simulated_drops += 1
                continue
            if not abs3:
                ntp = NTP.ntp(now)
                abs3 = abs_send_time_bytes(ntp)
            try:
                sent = down.port.write(packet, out_seq, (packet.timestamp + down.ts_offset) & _TS_MASK, abs3, ntp)
            except Exception as error:
                self._send_failed(down, error)
                continue
            if sent:
                counters.packets_out += 1
                counters.bytes_out += sent
        return slow

    def add_subscriber(self, port: SenderPort) -> Downstream:
        """Start forwarding to a subscriber; video starts from the cached keyframe if there is one."""
        down = Downstream(port=port, fast=getattr(port, 'fast', False) is True)
        self.downstreams.append(down)
        self._fanout = tuple(self.downstreams)
        if self._video:
            if self._cache and self._now() - self._cache_at <= KEYFRAME_CACHE_SPAN_S:
                self._counters.cache_replays += 1
                cache = self._cache
                ts = cache[0].timestamp
                burst = 1
                while burst < len(cache) and burst < REPLAY_FIRST_BURST and cache[burst].timestamp == ts:
                    burst += 1
                down.backlog = deque(cache)
                self._spawn(self._replay(down, burst))
            else:
                self._cache = []  # stale: the publisher paused since
                down.waiting_keyframe = True
                self.request_keyframe()
        return down

    def remove_subscriber(self, down: Downstream) -> None:
        """Stop forwarding to a subscriber (its replay, if any, stops too)."""
        if down in self.downstreams:
            self.downstreams.remove(down)
            self._fanout = tuple(self.downstreams)
        down.backlog = None

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per ``KEYFRAME_REQUEST_INTERVAL_S``.

        A request within the interval of the last one waits until the interval is over and is sent with the first
        packet after that, unless a keyframe arrives first; further requests meanwhile coalesce into it.
        """
        if self.closed or not self._video or self._request_due is not None:
            return
        now = self._now()
        due = self._last_request_at + KEYFRAME_REQUEST_INTERVAL_S
        if now >= due and self.media_ssrc is not None:
            self._send_request(now)
        else:
            self._request_due = max(now, due)  # sent by on_packet: no timer to wake an idle loop

    def close(self) -> None:
        """Stop forwarding; subscribers are detached (the session layer ends their tracks)."""
        self.closed = True
        for down in self.downstreams:
            down.backlog = None
        self.downstreams.clear()
        self._fanout = ()
        self._cache = []
        self._request_due = None
        for task in self._tasks:
            task.cancel()

    def _send_request(self, now: float) -> None:
        self._request_due = None
        if not self._fanout or self.media_ssrc is None:
            return  # everyone who wanted it left
        self._last_request_at = now
        self._counters.keyframe_requests += 1
        self._spawn(self._request_keyframe(self.media_ssrc))

    def _update_cache(self, packet: RtpPacket, now: float) -> bool:
        """Keep the cache current; return True if ``packet`` starts a new keyframe."""
        ts = packet.timestamp
        if is_keyframe_start(self.mime_type, packet.payload):
            last = self._keyframe_ts
            # H264's IDR after its SPS in the same frame, or a retransmitted keyframe start, must not restart the
            # cache without the packets before it; a timestamp far behind is a publisher that restarted its clock.
            if last is None or (ts != last and (last - ts) & _TS_MASK > _KEYFRAME_RETRANSMIT_TICKS):
                self._keyframe_ts = ts
                self._cache = [packet]
                self._cache_at = now
                return True
        cache = self._cache
        if cache:
            span = (ts - cache[0].timestamp) & _TS_MASK
            if len(cache) >= self._cache_limit or self._cache_span < span < _TS_HALF:
                self._cache = []  # too long since the keyframe to replay; nobody asked, so no keyframe request
            else:
                cache.append(packet)
        return False

    async def _replay(self, down: Downstream, burst: int) -> None:
        queue = down.backlog
        count = burst
        while queue is not None and down.backlog is queue:
            while count and queue:
                await self._send(down, queue.popleft())
                count -= 1
            if down.backlog is not queue:
                return  # removed or abandoned meanwhile
            if not queue:
                down.backlog = None  # no await since the emptiness check: live packets now go straight out
                return
            count = REPLAY_CHUNK
            await self._sleep(REPLAY_TICK_S)

    def _abandon_replay(self, down: Downstream) -> None:
        logger.info('keyframe replay to ssrc %s fell behind; waiting for the next keyframe', down.port.ssrc)
        if down.backlog is not None:
            down.backlog.clear()
        down.backlog = None
        down.waiting_keyframe = True
        self.request_keyframe()

    async def _send(self, down: Downstream, packet: RtpPacket) -> None:
        if down.fast:  # a replayed packet on the fast path
            seq = down.map_seq(packet.sequence_number)
            if seq is None:
                return
            if self._loss is not None and self._loss.drop():
                self._counters.simulated_drops += 1
                return
            ntp = NTP.ntp(self._now())
            ts = (packet.timestamp + down.ts_offset) & _TS_MASK
            try:
                sent = down.port.write(packet, seq, ts, abs_send_time_bytes(ntp), ntp)
            except Exception as error:
                self._send_failed(down, error)
                return
        else:
            out = down.rewrite(packet)
            if out is None:
                return
            if self._loss is not None and self._loss.drop():
                self._counters.simulated_drops += 1
                return
            try:
                sent = await down.port.send(out)
            except Exception as error:
                self._send_failed(down, error)
                return
        if sent:
            self._counters.packets_out += 1
            self._counters.bytes_out += sent

    def _send_failed(self, down: Downstream, error: Exception) -> None:
        if not down.send_failed:  # once per subscriber: a dying transport fails every packet
            down.send_failed = True
            logger.warning('forwarding to ssrc %s failed: %s: %s', down.port.ssrc, type(error).__name__, error)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
