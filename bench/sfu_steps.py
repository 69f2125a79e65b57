"""Cost of each step of the SFU's per-packet path, in-process, old (legacy) and new (fast), µs per packet.

    .venv/bin/python -m bench.sfu_steps [--packets 20000] [--profile gcm|cm]

No peer connection: real pylibsrtp sessions, aiortc's parser and serialiser, the forwarder, and a real UDP socket
(``sendto`` to a local socket that is never read). It names the slowest step per received and per forwarded packet,
which ``bench.sfu_load`` (whole processes, loopback peers) cannot separate. Runs are interleaved old/new and
repeated; the median is printed, with the machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pylibsrtp
from aiortc import clock
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from bench.common import loadavg, machine_cpu_busy
from media.sfu.aiortc_glue import NTP, _Wire, abs_send_time_bytes, lean_parser, serialise
from media.sfu.forwarder import Counters, Downstream, Forwarder

PAYLOAD = bytes([0x90, 0x80, 0x12, 0x34]) + os.urandom(1096)  # a VP8 inter-frame packet, 1,100 bytes of payload
EXTENSIONS = [
    (1, 'urn:ietf:params:rtp-hdrext:sdes:mid'),
    (3, 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time'),
]


def srtp_pair(profile: int) -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    key = os.urandom(16 + 14 if profile == pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80 else 16 + 12)
    tx = pylibsrtp.Session(
        pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    )
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    return tx, rx


def extensions_map() -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    m.configure(
        RTCRtpSendParameters(
            codecs=[RTCRtpCodecParameters(mimeType='video/VP8', clockRate=90000, payloadType=97)],
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in EXTENSIONS],
            muxId='1',
        )
    )
    return m


def source_packets(n: int, ext: HeaderExtensionsMap) -> list[bytes]:
    out = []
    for i in range(n):
        p = RtpPacket(payload_type=96, marker=i % 3 == 0, sequence_number=i & 0xFFFF, timestamp=3000 * (i // 3), ssrc=7)
        p.payload = PAYLOAD
        p.extensions.mid = '0'
        p.extensions.abs_send_time = i & 0xFFFFFF
        out.append(p.serialize(ext))
    return out


def per_packet(n: int, fn: Callable[[int], object]) -> float:
    start = time.perf_counter_ns()
    for i in range(n):
        fn(i)
    return (time.perf_counter_ns() - start) / n / 1000


class SinkPort:
    """A SenderPort stand-in for the legacy step (its ``send`` minus the coroutine machinery)."""

    payload_type = 97
    ssrc = 4242


def run_once(n: int, profile: int, sock: socket.socket, addr: Any) -> dict[str, float]:
    ext = extensions_map()
    tx_pub, rx_sfu = srtp_pair(profile)
    raw = source_packets(n, ext)
    protected = [tx_pub.protect(d) for d in raw]
    figures: dict[str, float] = {}

    # ---- receive ----
    figures['recv: SRTP unprotect'] = per_packet(n, lambda i: rx_sfu.unprotect(protected[i]))
    figures['recv (old): RtpPacket.parse'] = per_packet(n, lambda i: RtpPacket.parse(raw[i], ext))
    lean = lean_parser(ext)
    figures['recv (new): lean_parser'] = per_packet(n, lambda i: lean(raw[i]))
    packets = [RtpPacket.parse(d, ext) for d in raw]
    stats, nack = StreamStatistics(90000), NackGenerator()

    def old_stats(i: int) -> None:
        stats.add(packets[i])
        nack.add(packets[i])

    figures['recv (old): StreamStatistics + NackGenerator.add'] = per_packet(n, old_stats)
    stats, nack = StreamStatistics(90000), NackGenerator()

    def lean_receiver(i: int) -> None:
        p = packets[i]
        stats.add(p)
        seq = p.sequence_number
        if nack.max_seq is not None and seq == (nack.max_seq + 1) & 0xFFFF and not nack.missing:
            nack.max_seq = seq
        else:
            nack.add(p)

    figures['recv (new): statistics + NACK shortcut'] = per_packet(n, lean_receiver)
    from aiortc.rate import RemoteBitrateEstimator

    remb = RemoteBitrateEstimator()
    figures['recv (old): REMB estimator per packet'] = per_packet(
        n,
        lambda i: remb.add(
            abs_send_time=packets[i].extensions.abs_send_time or 0,
            arrival_time_ms=i // 5,
            payload_size=len(packets[i].payload),
            ssrc=7,
        ),
    )
    from aiortc.codecs import depayload
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters as Codec

    vp8 = Codec(mimeType='video/VP8', clockRate=90000, payloadType=96)
    figures['recv (old): VP8 depayload (for a decoder we never run)'] = per_packet(
        n, lambda i: depayload(vp8, packets[i].payload)
    )
    figures['recv (old): clock.current_datetime (active SSRC)'] = per_packet(n, lambda i: clock.current_datetime())

    async def forwarder_feed() -> float:
        fwd = Forwarder(
            kind='video',
            mime_type='video/VP8',
            codec_parameters={},
            counters=Counters(),
            request_keyframe=lambda s: asyncio.sleep(0),
            now=time.monotonic,
        )
        return per_packet(n, lambda i: fwd.feed(packets[i], 1.0 + i / 300))

    figures['recv: forwarder bookkeeping (keyframe cache), no subscriber'] = asyncio.run(forwarder_feed())

    # ---- forward, per subscriber ----
    tx_sub, _ = srtp_pair(profile)
    down = Downstream(port=SinkPort())  # type: ignore[arg-type]
    wire = _Wire(ext, '1')
    history: dict[int, RtpPacket] = {}

    def legacy(i: int) -> bytes:
        out = down.rewrite(packets[i])
        assert out is not None
        out.extensions.mid = '1'
        out.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
        history[out.sequence_number % 128] = out
        return out.serialize(ext)

    figures['fwd (old): rewrite RtpPacket + serialize + history'] = per_packet(n, legacy)
    down2 = Downstream(port=SinkPort())  # type: ignore[arg-type]
    ring: list[Any] = [None] * 128

    def fast(i: int) -> None:
        p = packets[i]
        seq = down2.map_seq(p.sequence_number)
        assert seq is not None
        ntp = NTP.ntp(1.0 + i / 1000)
        ring[seq % 128] = p
        serialise(wire, 97, 4242, p, seq, (p.timestamp + down2.ts_offset) & 0xFFFFFFFF, abs_send_time_bytes(ntp))

    figures['fwd (new): map seq + patch header bytes + ring'] = per_packet(n, fast)
    figures['fwd: SRTP protect'] = per_packet(n, lambda i: tx_sub.protect(raw[i]))
    wire_bytes = protected[0]
    figures['fwd: UDP sendto (loopback syscall)'] = per_packet(n, lambda i: sock.sendto(wire_bytes, addr))
    sender = SimpleNamespace(a=0, b=0, c=0, d=0)

    def counters(i: int) -> None:
        sender.a = i
        sender.b = i
        sender.c += 1100
        sender.d += 1

    figures['fwd: sender-report counters'] = per_packet(n, counters)
    return figures


FLOOR_SENDER = """
import socket, sys, time
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data, t, i = bytes([0x90]) * 1150, time.monotonic(), 0
while time.monotonic() - t < seconds:
    s.sendto(data, ('127.0.0.1', port))
    i += 1
    time.sleep(max(0.0, t + i / rate - time.monotonic()))
"""


def floor(rate: float, seconds: float) -> float:
    """CPU µs per received datagram of a uvloop process whose datagram protocol does nothing (another process sends
    ``rate`` datagrams/s): the event loop's cost of waking up once per packet."""
    import subprocess
    import sys

    import uvloop

    from bench.common import cpu_seconds

    class Count(asyncio.DatagramProtocol):
        n = 0

        def datagram_received(self, data: bytes, addr: Any) -> None:
            Count.n += 1

    async def run() -> float:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Count, local_addr=('127.0.0.1', 0))
        port = transport.get_extra_info('sockname')[1]
        sender = subprocess.Popen([sys.executable, '-c', FLOOR_SENDER, str(port), str(rate), str(seconds + 3)])
        try:
            await asyncio.sleep(2)
            c0, n0 = cpu_seconds(), Count.n
            await asyncio.sleep(seconds)
            c1, n1 = cpu_seconds(), Count.n
        finally:
            sender.kill()
            transport.close()
        return (c1 - c0) * 1e6 / max(1, n1 - n0)

    return float(uvloop.run(run()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--packets', type=int, default=20000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--profile', choices=['gcm', 'cm'], default='gcm')
    parser.add_argument('--floor-rate', type=float, default=165, help='datagrams/s for the wake-up floor (0: skip)')
    parser.add_argument('--floor-seconds', type=float, default=15)
    args = parser.parse_args()
    profile = (
        pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
        if args.profile == 'gcm'
        else pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    )
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(('127.0.0.1', 0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    print(f'loadavg before: {loadavg()}; SRTP {args.profile}; {args.packets} packets x {args.repeat}')
    m0 = machine_cpu_busy()
    runs = [run_once(args.packets, profile, sock, sink.getsockname()) for _ in range(args.repeat)]
    floor_us = floor(args.floor_rate, args.floor_seconds) if args.floor_rate > 0 else float('nan')
    m1 = machine_cpu_busy()
    print(f'loadavg after: {loadavg()}; machine busy {(m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100:.0f} % of 2 cores')
    print(
        f'event-loop floor: {floor_us:.1f} µs of CPU per received datagram '
        f'(uvloop, empty protocol, {args.floor_rate:.0f} datagrams/s from another process)'
    )
    print('| step | µs per packet (median, min-max) |')
    print('|---|---|')
    for name in runs[0]:
        values = [r[name] for r in runs]
        print(f'| {name} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |')


if __name__ == '__main__':
    main()
