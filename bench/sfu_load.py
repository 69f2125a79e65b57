"""Load benchmark of the embedded SFU: server CPU per forwarded packet, packets/s, RSS, burst time to first frame.

    .venv/bin/python -m bench.sfu_load [--publishers 2 --subscribers 18 --seconds 20] [--soak 600]

The SFU runs in its own process (`bench.sfu_server`: `EmbeddedSFU.asgi_app` under uvicorn on 127.0.0.1, plus a
stats route). This process is the load generator: aiortc publishers that send pre-encoded VP8 (1 Mbit/s, 30 fps,
640x384, keyframe every 2 s) and Opus (20 ms) packets in a loop, and subscribers that pull every publisher's audio
and video over the Calls API and count the RTP packets they get without decoding them. Server CPU is utime+stime
from /proc/<pid>/stat over a fixed window. Then `--burst` decoding subscribers join at once, `--bursts` times, and
the time from the pull request to the first decoded frame is measured. As root it runs in a loopback-only network
namespace (`unshare -n`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import av
import httpx
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import RtpPacket

from bench.common import (
    cpu_seconds,
    free_port,
    loadavg,
    machine_cpu_busy,
    network_note,
    percentile,
    reexec_in_loopback_netns,
    rss_mb,
    summary,
)
from bench.media import Clip, LoopTrack, encode_opus, encode_vp8
from media.calls_api import SessionDescription, TrackObject, TracksRequest
from media.calls_client import CallsClient
from media.sfu import aiortc_glue

APP_ID = 'bench'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


def local_description(pc: RTCPeerConnection) -> SessionDescription:
    return SessionDescription(type=pc.localDescription.type, sdp=pc.localDescription.sdp)  # type: ignore[arg-type]


async def wait_connected(pc: RTCPeerConnection, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while pc.connectionState != 'connected':
        if pc.connectionState in ('failed', 'closed') or time.monotonic() > deadline:
            raise RuntimeError(f'peer connection {pc.connectionState} after {timeout} s')
        await asyncio.sleep(0.02)


# ---- publishers and subscribers ------------------------------------------------------------------------------


@dataclass
class Publisher:
    pc: RTCPeerConnection
    session_id: str


async def publish(client: CallsClient, video: Clip, audio: Clip | None) -> Publisher:
    session_id = (await client.new_session()).session_id
    pc = new_pc()
    tracks = []
    if audio is not None:
        ta = pc.addTransceiver(LoopTrack(audio), direction='sendonly')
        tracks.append((ta, 'a'))
    tv = pc.addTransceiver(LoopTrack(video), direction='sendonly')
    vp8 = [c for c in RTCRtpSender.getCapabilities('video').codecs if c.mimeType.lower() in ('video/vp8', 'video/rtx')]
    tv.setCodecPreferences(vp8)
    tracks.append((tv, 'v'))
    await pc.setLocalDescription(await pc.createOffer())
    request = TracksRequest(
        session_description=local_description(pc),
        tracks=[TrackObject(location='local', mid=t.mid, track_name=name) for t, name in tracks],
    )
    response = await client.new_tracks(session_id, request)
    if response.session_description is None or any(t.error_code for t in response.tracks or []):
        raise RuntimeError(f'push failed: {response}')
    await pc.setRemoteDescription(RTCSessionDescription(**response.session_description.model_dump()))
    await wait_connected(pc)
    return Publisher(pc, session_id)


@dataclass
class Counter:
    packets: int = 0
    octets: int = 0


@dataclass
class Subscriber:
    pc: RTCPeerConnection
    session_id: str
    counter: Counter = field(default_factory=Counter)
    tracks: list[MediaStreamTrack] = field(default_factory=list)


async def subscribe(
    client: CallsClient, names: list[tuple[str, str]], *, decode: bool, session_id: str | None = None
) -> Subscriber:
    """Pull `names` ((sessionId, trackName)); a counting subscriber never decodes (aiortc_glue.tap_receiver)."""
    sub = Subscriber(new_pc(), session_id or (await client.new_session()).session_id)
    sub.pc.on('track', sub.tracks.append)
    request = TracksRequest(tracks=[TrackObject(location='remote', session_id=s, track_name=n) for s, n in names])
    response = await client.new_tracks(sub.session_id, request)
    failed = [t for t in response.tracks or [] if t.error_code]
    if failed or response.session_description is None:
        raise RuntimeError(f'pull failed: {failed or response}')
    await sub.pc.setRemoteDescription(RTCSessionDescription(**response.session_description.model_dump()))
    if not decode:
        counter = sub.counter

        async def count(packet: RtpPacket) -> None:
            counter.packets += 1
            counter.octets += len(packet.payload)

        for transceiver in sub.pc.getTransceivers():
            aiortc_glue.tap_receiver(transceiver.receiver, count)
    await sub.pc.setLocalDescription(await sub.pc.createAnswer())
    await client.renegotiate(sub.session_id, local_description(sub.pc))
    return sub


async def first_video_frame(sub: Subscriber, timeout: float = 15.0) -> None:
    async def get() -> None:
        while not any(t.kind == 'video' for t in sub.tracks):
            await asyncio.sleep(0.005)
        track = next(t for t in sub.tracks if t.kind == 'video')
        while True:
            frame = await track.recv()
            if isinstance(frame, av.VideoFrame) and frame.width > 0:
                return

    await asyncio.wait_for(get(), timeout)


async def close_all(peers: list[Any]) -> None:
    await asyncio.gather(*(asyncio.wait_for(p.pc.close(), 10) for p in peers), return_exceptions=True)


# ---- the server process -----------------------------------------------------------------------------------------


class Server:
    def __init__(self, log_path: str) -> None:
        self.port = free_port()
        self.secret = secrets.token_urlsafe(24)
        secret_args = ['--app-secret', self.secret]
        self.log = open(log_path, 'wb')  # closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'bench.sfu_server', '--port', str(self.port), '--app-id', APP_ID, *secret_args],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        self.http = httpx.AsyncClient(base_url=f'http://127.0.0.1:{self.port}', timeout=30)
        self.api_http = httpx.AsyncClient(base_url=f'http://127.0.0.1:{self.port}/sfu/v1', timeout=30)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'SFU server exited with {self.process.returncode}')
            with contextlib.suppress(httpx.HTTPError):
                if (await self.http.get('/bench/stats')).status_code == 200:
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError('SFU server did not start')

    async def stats(self) -> dict[str, Any]:
        return dict((await self.http.get('/bench/stats')).json())

    def client(self) -> CallsClient:
        return CallsClient(self.api_http, APP_ID, self.secret)

    async def stop(self) -> None:
        await self.http.aclose()
        await self.api_http.aclose()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# ---- measurement ------------------------------------------------------------------------------------------------


@dataclass
class Window:
    seconds: float
    forwarded: int
    packets_in: int
    server_cpu_s: float
    generator_cpu_s: float
    machine_busy: float
    received: int

    @property
    def fwd_per_s(self) -> float:
        return self.forwarded / self.seconds

    @property
    def us_per_packet(self) -> float:
        return self.server_cpu_s * 1e6 / self.forwarded if self.forwarded else float('nan')

    def line(self) -> str:
        return (
            f'{self.fwd_per_s:7.0f} fwd pkt/s  {self.packets_in / self.seconds:5.0f} in pkt/s  '
            f'server CPU {self.server_cpu_s / self.seconds * 100:5.1f} % of a core  '
            f'{self.us_per_packet:5.1f} µs/fwd pkt  generator CPU {self.generator_cpu_s / self.seconds * 100:5.1f} %  '
            f'machine busy {self.machine_busy * 100:4.0f} % of 2 cores  '
            f'delivered {self.received / max(1, self.forwarded) * 100:5.1f} %'
        )


async def measure(server: Server, subscribers: list[Subscriber], seconds: float) -> Window:
    def received() -> int:
        return sum(s.counter.packets for s in subscribers)

    s0, c0, g0, m0, r0, t0 = (
        await server.stats(),
        cpu_seconds(server.pid),
        cpu_seconds(),
        machine_cpu_busy(),
        received(),
        time.monotonic(),
    )
    await asyncio.sleep(seconds)
    s1, c1, g1, m1, r1, t1 = (
        await server.stats(),
        cpu_seconds(server.pid),
        cpu_seconds(),
        machine_cpu_busy(),
        received(),
        time.monotonic(),
    )
    return Window(
        seconds=t1 - t0,
        forwarded=s1['forwarded_packets'] - s0['forwarded_packets'],
        packets_in=s1['packets_in'] - s0['packets_in'],
        server_cpu_s=c1 - c0,
        generator_cpu_s=g1 - g0,
        machine_busy=(m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
        received=r1 - r0,
    )


@dataclass
class Join:
    """ms from the pull request to: the answer sent (renegotiate done), ICE+DTLS connected, first decoded frame."""

    answered: float
    connected: float
    first_frame: float


failures = [0]  # joiners that got no frame


async def burst(client: CallsClient, publishers: list[Publisher], size: int) -> list[Join]:
    """`size` decoding subscribers pull a video track at the same moment (sessions created beforehand, as the app)."""
    sessions = [(await client.new_session()).session_id for _ in range(size)]
    subs: list[Subscriber] = []

    async def join(i: int) -> Join | None:
        start = time.perf_counter()
        pub = publishers[i % len(publishers)]
        try:
            sub = await subscribe(client, [(pub.session_id, 'v')], decode=True, session_id=sessions[i])
            answered = time.perf_counter()
            subs.append(sub)
            frame = asyncio.ensure_future(first_video_frame(sub))
            await wait_connected(sub.pc)
            connected = time.perf_counter()
            await frame
        except Exception as error:  # a failed joiner is reported, not fatal to the run
            print(
                f'  joiner failed after {(time.perf_counter() - start) * 1000:.0f} ms: {type(error).__name__} {error}'
            )
            return None
        ms = [(t - start) * 1000 for t in (answered, connected, time.perf_counter())]
        return Join(*ms)

    try:
        results = await asyncio.gather(*(join(i) for i in range(size)))
        failures[0] += sum(r is None for r in results)
        return [r for r in results if r is not None]
    finally:
        await close_all(subs)


async def run(args: argparse.Namespace) -> None:
    aiortc_glue.use_host_addresses(['127.0.0.1'])
    print(f'network: {network_note()}; loadavg before: {loadavg()}; cores: {os.cpu_count()}')
    t = time.monotonic()
    video = encode_vp8(width=640, height=384, fps=30, seconds=4, kbps=args.video_kbps, gop_s=2)
    audio = None if args.no_audio else encode_opus(seconds=2)
    print(
        f'pre-encoded in {time.monotonic() - t:.1f} s: VP8 {len(video.frames)} frames {video.bitrate_kbps:.0f} kbit/s'
        + (f', Opus {len(audio.frames)} frames {audio.bitrate_kbps:.0f} kbit/s' if audio else ', no audio')
    )
    log_path = os.path.join(args.workdir, 'sfu_server.log')
    server = Server(log_path)
    publishers: list[Publisher] = []
    subscribers: list[Subscriber] = []
    client = server.client()
    try:
        await server.wait_ready()
        rss_start = rss_mb(server.pid)
        idle0, t0 = cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(2)
        idle_pct = (cpu_seconds(server.pid) - idle0) / (time.monotonic() - t0) * 100
        print(f'server pid {server.pid}: RSS {rss_start:.0f} MB idle, idle CPU {idle_pct:.1f} %')

        publishers = list(await asyncio.gather(*(publish(client, video, audio) for _ in range(args.publishers))))
        names = [(p.session_id, n) for p in publishers for n in (['a', 'v'] if audio else ['v'])]
        for i in range(0, args.subscribers, 4):
            batch = min(4, args.subscribers - i)
            subscribers += await asyncio.gather(*(subscribe(client, names, decode=False) for _ in range(batch)))
        await asyncio.gather(*(wait_connected(s.pc) for s in subscribers))
        stats = await server.stats()
        print(
            f'{args.publishers} publishers x {args.subscribers} subscribers connected '
            f'({stats["subscriptions"] if "subscriptions" in stats else "?"} subscriptions); '
            f'warming up {args.warmup:.0f} s'
        )
        await asyncio.sleep(args.warmup)
        rss_loaded = rss_mb(server.pid)
        window = await measure(server, subscribers, args.seconds)
        print(f'window {window.seconds:.1f} s: {window.line()}')
        print(f'RSS: {rss_start:.0f} MB idle -> {rss_loaded:.0f} MB loaded -> {rss_mb(server.pid):.0f} MB after window')

        joins: list[Join] = []
        for b in range(args.bursts):
            joins += await burst(client, publishers, args.burst)
            stages = '  '.join(f'{j.answered:.0f}/{j.connected:.0f}/{j.first_frame:.0f}' for j in joins[-args.burst :])
            print(
                f'burst {b + 1}/{args.bursts}: {args.burst} at once, ms pull -> answered/connected/1st frame: {stages}'
            )
            await asyncio.sleep(1)

        soak: list[tuple[float, float, Window]] = []
        if args.soak > 0:
            print(f'soak: {args.soak:.0f} s, sample every {args.sample_every:.0f} s (with one burst of joiners each)')
            started = time.monotonic()
            while time.monotonic() - started < args.soak:
                w = await measure(server, subscribers, min(args.sample_every, args.soak - (time.monotonic() - started)))
                joins += await burst(client, publishers, args.burst)
                soak.append((time.monotonic() - started, rss_mb(server.pid), w))
                print(f'  t={soak[-1][0]:5.0f} s RSS {soak[-1][1]:6.1f} MB  {w.line()}')

        print()
        print('RESULTS')
        print(
            f'  load: {args.publishers} publishers (VP8 {video.bitrate_kbps:.0f} kbit/s 30 fps'
            f'{" + Opus" if audio else ""}) -> {args.subscribers} subscribers each pulling all of them'
        )
        print(f'  forwarded packets/s            {window.fwd_per_s:.0f}  (target >= 5000)')
        print(f'  server CPU per forwarded packet {window.us_per_packet:.1f} µs  (target <= 15)')
        print(f'  server CPU                     {window.server_cpu_s / window.seconds * 100:.1f} % of one core')
        print(f'  server RSS                     {rss_start:.0f} MB idle, {rss_mb(server.pid):.0f} MB loaded')
        print(
            f'  pull -> first decoded frame    {summary([j.first_frame for j in joins])} ms '
            f'({args.burst} joining at once, aiortc decoder; {failures[0]} joiners failed)'
        )
        print(f'    of which pull -> connected   {summary([j.connected for j in joins])} ms')
        print(f'    connected -> first frame     {summary([j.first_frame - j.connected for j in joins])} ms')
        if soak:
            rss = [r for _, r, _ in soak]
            us = [w.us_per_packet for _, _, w in soak]
            print(
                f'  soak RSS samples (MB)          {" ".join(f"{r:.0f}" for r in rss)}  '
                f'(first {rss[0]:.1f}, last {rss[-1]:.1f}, max {max(rss):.1f})'
            )
            print(f'  soak µs/fwd pkt                p50 {percentile(us, 50):.1f}, max {max(us):.1f}')
        print(
            f'  loadavg after                  {loadavg()}; machine busy during window '
            f'{window.machine_busy * 100:.0f} % of 2 cores; generator CPU '
            f'{window.generator_cpu_s / window.seconds * 100:.0f} %'
        )
    finally:
        await close_all([*subscribers, *publishers])
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--publishers', type=int, default=2)
    parser.add_argument('--subscribers', type=int, default=18, help='each pulls every publisher')
    parser.add_argument('--seconds', type=float, default=20, help='CPU measurement window')
    parser.add_argument('--warmup', type=float, default=5)
    parser.add_argument('--video-kbps', type=int, default=1000)
    parser.add_argument('--no-audio', action='store_true')
    parser.add_argument('--burst', type=int, default=4, help='subscribers joining at once')
    parser.add_argument('--bursts', type=int, default=5)
    parser.add_argument('--soak', type=float, default=0, help='seconds of extra load sampling RSS (e.g. 600)')
    parser.add_argument('--sample-every', type=float, default=30)
    parser.add_argument('--workdir', default='/tmp')
    args = parser.parse_args()
    reexec_in_loopback_netns('bench.sfu_load')
    asyncio.run(asyncio.wait_for(run(args), timeout=args.soak + args.seconds + 300))


if __name__ == '__main__':
    main()
