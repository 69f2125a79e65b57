"""The embedded SFU's forwarder on its own: sequence wraps, the keyframe cache and its paced replay, keyframe requests.

No sockets and no wall clock: a recording port stands in for the aiortc sender, ``now`` is a settable clock, and the
replay's pacing sleep is a counter (each sleep is one tick), so every assertion is about order and counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiortc.rtp import RtpPacket

from media.sfu.forwarder import (
    KEYFRAME_REQUEST_INTERVAL_S,
    REPLAY_CHUNK,
    REPLAY_TICK_S,
    Counters,
    Downstream,
    Forwarder,
)

VP8_KEYFRAME_START = b'\x10\x00' + b'k' * 10  # S bit, partition 0, P bit clear (RFC 7741)
VP8_INTER_START = b'\x10\x01' + b'i' * 10  # S bit, partition 0, P bit set
VP8_CONTINUATION = b'\x00' + b'c' * 10
FRAME_TICKS = 3000  # 30 fps at 90 kHz
PACKETS_PER_FRAME = 3
LONG_RUN = 2 * 65_536 + 10_000


class Clock:
    """A settable ``now``."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Ticks:
    """Stands in for ``asyncio.sleep`` in the replay: counts each pacing sleep, lets other tasks run once."""

    def __init__(self) -> None:
        self.count = 0
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.count += 1
        self.delays.append(delay)
        await asyncio.sleep(0)


class RecordingPort:
    """Stands in for ``aiortc_glue.SenderPort``: keeps (sequence, timestamp, payload, tick) of what it sends."""

    payload_type = 96
    ssrc = 4242

    def __init__(self, ticks: Ticks | None = None) -> None:
        self.ticks = ticks
        self.sent: list[tuple[int, int, bytes, int]] = []

    async def send(self, packet: RtpPacket) -> int:
        tick = self.ticks.count if self.ticks is not None else 0
        self.sent.append((packet.sequence_number, packet.timestamp, packet.payload, tick))
        return len(packet.payload)


class Publisher:
    """Numbers packets like a publisher does, from a start sequence and timestamp of our choosing."""

    def __init__(self, seq: int, ts: int) -> None:
        self.seq = seq
        self.ts = ts
        self.frames = 0

    def packet(self, payload: bytes, seq: int | None = None) -> RtpPacket:
        return RtpPacket(
            payload_type=100,
            sequence_number=(self.seq if seq is None else seq) & 0xFFFF,
            timestamp=self.ts & 0xFFFFFFFF,
            ssrc=1234,
            payload=payload,
        )

    def frame(self, *, keyframe: bool = False, packets: int = PACKETS_PER_FRAME) -> list[RtpPacket]:
        """The next frame's packets (first one marks the frame start), then the clock moves one frame on."""
        out = []
        for i in range(packets):
            payload = (VP8_KEYFRAME_START if keyframe else VP8_INTER_START) if i == 0 else VP8_CONTINUATION
            out.append(self.packet(payload))
            self.seq += 1
        self.ts += FRAME_TICKS
        self.frames += 1
        return out


class Requests:
    """The publisher side of keyframe requests: records the (injected) time each one is made."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.times: list[float] = []

    def __call__(self, ssrc: int) -> Awaitable[None]:
        self.times.append(self.clock.t)
        return asyncio.sleep(0)


def make_forwarder(
    kind: str,
    clock: Clock,
    requests: Requests | None = None,
    ticks: Ticks | None = None,
    mime_type: str | None = None,
    cache_packets: int = 600,
) -> tuple[Forwarder, Counters]:
    counters = Counters()

    def no_requests(ssrc: int) -> Awaitable[None]:
        raise AssertionError('no keyframe request expected')

    request: Callable[[int], Awaitable[None]] = requests if requests is not None else no_requests
    forwarder = Forwarder(
        kind=kind,
        mime_type=mime_type or ('video/VP8' if kind == 'video' else 'audio/opus'),
        codec_parameters={},
        counters=counters,
        request_keyframe=request,
        now=clock,
        sleep=ticks or Ticks(),
        cache_packets=cache_packets,
    )
    return forwarder, counters


def subscribe(forwarder: Forwarder, port: RecordingPort) -> Downstream:
    return forwarder.add_subscriber(port)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], what: str, polls: int = 2000) -> None:
    """Let other tasks run until ``condition`` holds; a bounded number of loop turns, no wall-clock deadline."""
    for _ in range(polls):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f'never happened: {what}')


def original_seqs(port: RecordingPort, down: Downstream) -> list[int]:
    """The publisher's sequence numbers of what the subscriber got."""
    assert down.seq_offset is not None
    return [(seq - down.seq_offset) & 0xFFFF for seq, *_ in port.sent]


def reordered(packets: Iterator[RtpPacket], every: int) -> Iterator[RtpPacket]:
    """Swap neighbours every ``every`` packets, and always across a sequence wrap (0 arrives before 65535)."""
    held: RtpPacket | None = None
    for i, packet in enumerate(packets):
        if held is not None:
            yield packet
            yield held
            held = None
        elif i % every == every // 2 or packet.sequence_number == 0xFFFF:
            held = packet
        else:
            yield packet
    if held is not None:
        yield held


def live_stream(pub: Publisher, packets: int) -> Iterator[RtpPacket]:
    """``packets`` packets of video (a keyframe every 10 s); generated lazily, the run is long."""
    sent = 0
    while sent < packets:
        frame = pub.frame(keyframe=pub.frames % 300 == 0)
        sent += len(frame)
        yield from frame


# ---- sequence numbers wrap: forwarding never stops by itself --------------------------------------------------------


@pytest.mark.parametrize('kind', ['audio', 'video'])
async def test_forwarding_survives_many_sequence_wraps_with_reordering(kind: str) -> None:
    """More than 2 x 65,536 packets, reordered (also across each wrap), plus retransmissions: all pass but the one
    from before the subscriber started. Before extended sequence numbers everything after 32,768 packets was dropped.
    """
    clock = Clock()
    ticks = Ticks()
    requests = Requests(clock)
    forwarder, counters = make_forwarder(kind, clock, requests, ticks)
    # Start close to a wrap of both the sequence number and the (32-bit) timestamp.
    pub = Publisher(seq=65_536 - 700, ts=2**32 - 50 * FRAME_TICKS)
    before = pub.frame()
    cached = pub.frame(keyframe=True) + pub.frame()
    for packet in before + cached:
        await forwarder.on_packet(packet)
    port = RecordingPort(ticks)
    down = subscribe(forwarder, port)  # video replays the cached keyframe and the frame after it; audio starts live
    await until(lambda: down.backlog is None, 'the cache replay ends')
    expected = [p.sequence_number for p in cached] if kind == 'video' else []

    remembered: dict[int, RtpPacket] = {}
    for i, packet in enumerate(reordered(live_stream(pub, LONG_RUN), every=97)):
        clock.t += 1 / 90
        await forwarder.on_packet(packet)
        expected.append(packet.sequence_number)
        if i == 3:  # a retransmission from before the subscriber's start arrives late: dropped
            await forwarder.on_packet(before[1])
        if i in (69_950, 139_990):
            remembered[i] = packet
        if i - 40 in remembered:  # a retransmission of a recent packet after each wrap: passes
            await forwarder.on_packet(remembered[i - 40])
            expected.append(remembered[i - 40].sequence_number)

    got = original_seqs(port, down)
    assert len(got) > 2 * 65_536
    assert got == expected
    assert counters.packets_out == len(expected)
    assert requests.times == []  # the cache came and went a hundred times; nobody needed a keyframe


async def test_a_jump_in_the_publishers_numbering_is_followed() -> None:
    """A packet far behind the highest (no plausible retransmission) is dropped; once a second one agrees, the
    subscriber follows the new numbering instead of waiting half a cycle."""
    clock = Clock()
    forwarder, _ = make_forwarder('audio', clock)
    port = RecordingPort()
    down = subscribe(forwarder, port)
    pub = Publisher(seq=1000, ts=0)
    for _ in range(10):
        await forwarder.on_packet(pub.frame(packets=1)[0])
    pub.seq += 40_000  # 40,000 ahead reads as 25,536 behind
    jumped = [pub.frame(packets=1)[0] for _ in range(10)]
    for packet in jumped:
        await forwarder.on_packet(packet)
    assert original_seqs(port, down)[10:] == [p.sequence_number for p in jumped[1:]]


# ---- the keyframe cache: the latest keyframe and at most ~1 s after it, replayed paced ------------------------------


async def test_cache_replay_is_paced_and_in_order_with_live_packets_behind_it() -> None:
    clock = Clock()
    ticks = Ticks()
    requests = Requests(clock)
    forwarder, counters = make_forwarder('video', clock, requests, ticks)
    pub = Publisher(seq=100, ts=0)
    cached = pub.frame(keyframe=True, packets=5)
    for _ in range(24):  # 0.8 s of frames after the keyframe
        cached += pub.frame()
    for packet in cached:
        clock.t += 1 / 90
        await forwarder.on_packet(packet)

    port = RecordingPort(ticks)
    down = subscribe(forwarder, port)
    live: list[RtpPacket] = []
    while down.backlog is not None and len(live) < 300:  # live packets arrive while the replay runs
        live += pub.frame()
        for packet in live[-PACKETS_PER_FRAME:]:
            await forwarder.on_packet(packet)
        await asyncio.sleep(0)
    await until(lambda: down.backlog is None, 'the cache replay ends')
    after = pub.frame()
    for packet in after:
        await forwarder.on_packet(packet)

    assert counters.cache_replays == 1 and requests.times == []  # served from the cache
    assert original_seqs(port, down) == [p.sequence_number for p in cached + live + after]  # nothing lost, in order
    # Paced: the keyframe's own 5 packets went out at once, then small chunks, one per pacing sleep.
    by_tick: dict[int, int] = {}
    for *_, tick in port.sent[: len(cached)]:
        by_tick[tick] = by_tick.get(tick, 0) + 1
    first_tick = port.sent[0][3]
    assert by_tick.pop(first_tick) == 5
    assert by_tick and max(by_tick.values()) <= REPLAY_CHUNK
    assert len(by_tick) >= (len(cached) - 5) // REPLAY_CHUNK
    assert live, 'live packets arrived during the replay'
    assert ticks.delays and set(ticks.delays) == {REPLAY_TICK_S}


async def test_cache_holds_the_latest_keyframe_and_at_most_a_second_after_it() -> None:
    clock = Clock()
    ticks = Ticks()
    forwarder, _ = make_forwarder('video', clock, Requests(clock), ticks)
    pub = Publisher(seq=60_000, ts=2**32 - 10 * FRAME_TICKS)  # the timestamp wraps inside the cache
    for _ in range(2):  # an older keyframe and a second of frames: superseded
        for packet in pub.frame(keyframe=True) + [p for _ in range(30) for p in pub.frame()]:
            clock.t += 1 / 90
            await forwarder.on_packet(packet)
    latest = pub.frame(keyframe=True)
    for _ in range(29):
        latest += pub.frame()
    for packet in latest:
        clock.t += 1 / 90
        await forwarder.on_packet(packet)

    port = RecordingPort(ticks)
    down = subscribe(forwarder, port)
    await until(lambda: down.backlog is None, 'the cache replay ends')
    assert original_seqs(port, down) == [p.sequence_number for p in latest]
    span = (port.sent[-1][1] - port.sent[0][1]) & 0xFFFFFFFF
    assert span <= 90_000


async def test_a_second_keyframe_start_in_the_same_frame_does_not_restart_the_cache() -> None:
    """H264 marks both the SPS and the IDR's first fragment as keyframe starts; VP8's keyframe start may come again
    as a retransmission. Either way the cache keeps the whole keyframe, parameter sets first."""
    clock = Clock()
    ticks = Ticks()
    forwarder, _ = make_forwarder('video', clock, ticks=ticks, mime_type='video/H264')
    pub = Publisher(seq=10, ts=0)
    sps, pps = pub.packet(b'\x67sps'), pub.packet(b'\x68pps', seq=11)
    idr = [pub.packet(b'\x7c\x85idr', seq=12), pub.packet(b'\x7c\x45idr', seq=13)]  # FU-A start and end of an IDR
    pub.seq, pub.ts = 14, FRAME_TICKS
    frame = [pub.packet(b'\x41p')]
    keyframe = [sps, pps, *idr]
    for packet in [*keyframe, *frame, sps]:  # the SPS retransmitted at the end
        await forwarder.on_packet(packet)
    port = RecordingPort(ticks)
    down = subscribe(forwarder, port)
    await until(lambda: down.backlog is None, 'the cache replay ends')
    assert original_seqs(port, down) == [10, 11, 12, 13, 14, 10]  # the late SPS copy passes: it is after the start


@pytest.mark.parametrize('limit', ['span', 'packets'])
async def test_a_cache_past_its_bound_is_not_replayed_and_the_joiner_waits_for_a_keyframe(limit: str) -> None:
    clock = Clock()
    requests = Requests(clock)
    forwarder, counters = make_forwarder('video', clock, requests, cache_packets=40 if limit == 'packets' else 600)
    pub = Publisher(seq=5, ts=0)
    frames = 35 if limit == 'span' else 15  # 35 frames: > 1 s; 15 frames of 3 packets: > 40 packets
    for packet in pub.frame(keyframe=True) + [p for _ in range(frames) for p in pub.frame()]:
        clock.t += 1 / 90
        await forwarder.on_packet(packet)
    assert requests.times == []

    port = RecordingPort()
    down = subscribe(forwarder, port)
    assert counters.cache_replays == 0 and down.waiting_keyframe
    assert requests.times == [clock.t]  # asked at once: none was sent in the last second
    for packet in pub.frame():
        await forwarder.on_packet(packet)
    assert port.sent == []  # inter frames are useless without their keyframe
    keyframe = pub.frame(keyframe=True)
    for packet in keyframe:
        await forwarder.on_packet(packet)
    assert original_seqs(port, down) == [p.sequence_number for p in keyframe]


async def test_a_stale_cache_is_not_replayed_after_the_publisher_paused() -> None:
    clock = Clock()
    requests = Requests(clock)
    forwarder, counters = make_forwarder('video', clock, requests)
    pub = Publisher(seq=5, ts=0)
    for packet in pub.frame(keyframe=True) + pub.frame():
        await forwarder.on_packet(packet)
    clock.t += 20.0  # the camera's sending was switched off for a while
    down = subscribe(forwarder, RecordingPort())
    assert counters.cache_replays == 0 and down.waiting_keyframe and requests.times == [clock.t]


# ---- keyframe requests: only when a subscriber needs one, at most one a second --------------------------------------


async def test_cache_overflow_with_no_subscriber_asks_no_keyframe() -> None:
    """A publisher nobody watches: a minute of video after one keyframe, the cache outgrows its bound again and
    again, and the publisher is never asked for a keyframe (the old cache asked every 600 packets)."""
    clock = Clock()
    forwarder, counters = make_forwarder('video', clock)  # any request raises
    pub = Publisher(seq=0, ts=0)
    for packet in pub.frame(keyframe=True):
        await forwarder.on_packet(packet)
    for _ in range(60 * 30):
        for packet in pub.frame():
            clock.t += 1 / 90
            await forwarder.on_packet(packet)
    await asyncio.sleep(0)
    assert counters.keyframe_requests == 0


async def test_a_lossy_viewer_gets_at_most_one_keyframe_request_a_second() -> None:
    """One viewer sends PLIs on every frame for ten seconds: the publisher is asked about once a second."""
    clock = Clock()
    requests = Requests(clock)
    forwarder, counters = make_forwarder('video', clock, requests)
    pub = Publisher(seq=0, ts=0)
    for packet in pub.frame(keyframe=True):
        await forwarder.on_packet(packet)
    lossy = subscribe(forwarder, RecordingPort())
    subscribe(forwarder, RecordingPort())
    await until(lambda: lossy.backlog is None, 'the cache replay ends')
    for _ in range(10 * 30):
        for _ in range(4):
            forwarder.request_keyframe()  # PLI and FIR, twice
        for packet in pub.frame():
            clock.t += 1 / 90
            await forwarder.on_packet(packet)
    await asyncio.sleep(0)
    assert 9 <= len(requests.times) <= 11
    assert counters.keyframe_requests == len(requests.times)
    gaps = [b - a for a, b in zip(requests.times, requests.times[1:], strict=False)]
    assert min(gaps) >= KEYFRAME_REQUEST_INTERVAL_S - 1e-9


async def test_a_keyframe_arriving_meanwhile_satisfies_a_coalesced_request() -> None:
    clock = Clock()
    requests = Requests(clock)
    forwarder, _ = make_forwarder('video', clock, requests)
    pub = Publisher(seq=0, ts=0)
    await forwarder.on_packet(pub.frame(packets=1)[0])  # media, but no keyframe yet
    subscribe(forwarder, RecordingPort())
    assert requests.times == [clock.t]  # the first joiner's request goes out at once
    clock.t += 0.3
    forwarder.request_keyframe()  # a PLI 0.3 s later waits for the interval
    forwarder.request_keyframe()
    await forwarder.on_packet(pub.frame(packets=1)[0])
    assert len(requests.times) == 1
    for packet in pub.frame(keyframe=True):  # the publisher answers the first request
        await forwarder.on_packet(packet)
    clock.t += 2.0
    for packet in pub.frame():
        await forwarder.on_packet(packet)
    assert len(requests.times) == 1  # the waiting request was satisfied by that keyframe

    forwarder.request_keyframe()  # a new PLI long after the last request goes out at once
    assert len(requests.times) == 2 and requests.times[1] == clock.t


async def test_a_new_joiner_waits_at_most_the_rest_of_the_interval() -> None:
    clock = Clock()
    requests = Requests(clock)
    forwarder, _ = make_forwarder('video', clock, requests)
    pub = Publisher(seq=0, ts=0)
    await forwarder.on_packet(pub.frame(packets=1)[0])
    subscribe(forwarder, RecordingPort())
    start = clock.t
    clock.t += 0.5
    subscribe(forwarder, RecordingPort())  # the publisher ignored (or lost) the first request
    while clock.t < start + 1.5:
        clock.t += 0.1
        await forwarder.on_packet(pub.frame(packets=1)[0])
    assert len(requests.times) == 2
    assert start + KEYFRAME_REQUEST_INTERVAL_S <= requests.times[1] <= start + KEYFRAME_REQUEST_INTERVAL_S + 0.1001


async def test_no_request_when_everyone_who_asked_has_left() -> None:
    clock = Clock()
    requests = Requests(clock)
    forwarder, _ = make_forwarder('video', clock, requests)
    pub = Publisher(seq=0, ts=0)
    await forwarder.on_packet(pub.frame(packets=1)[0])
    down = subscribe(forwarder, RecordingPort())
    clock.t += 0.2
    forwarder.request_keyframe()
    forwarder.remove_subscriber(down)
    clock.t += 2.0
    await forwarder.on_packet(pub.frame(packets=1)[0])
    assert len(requests.times) == 1


async def test_removing_a_subscriber_stops_its_replay() -> None:
    clock = Clock()
    ticks = Ticks()
    forwarder, _ = make_forwarder('video', clock, ticks=ticks)
    pub = Publisher(seq=0, ts=0)
    for packet in pub.frame(keyframe=True, packets=2) + [p for _ in range(20) for p in pub.frame()]:
        await forwarder.on_packet(packet)
    port = RecordingPort(ticks)
    down = subscribe(forwarder, port)
    await until(lambda: len(port.sent) > 2, 'the replay starts')
    forwarder.remove_subscriber(down)
    sent = len(port.sent)
    for _ in range(10):
        await asyncio.sleep(0)
        await forwarder.on_packet(pub.frame(packets=1)[0])
    assert len(port.sent) == sent
