"""Load benchmark of the embedded SFU at the levels that matter, old and new forwarding path in one run.

    .venv/bin/python -m bench.sfu_load                      # every level, fast and legacy path, 3 interleaved rounds
    .venv/bin/python -m bench.sfu_load --levels idle,publisher-only --paths fast,legacy --rounds 5
    .venv/bin/python -m bench.sfu_load --levels fanout --paths fast --soak 600

Levels: ``idle`` (no peer), ``publisher-only`` (one VP8 + Opus publisher, nobody pulling: CPU per *received*
packet, keyframe requests), ``telehealth`` (4 video-only cameras pulled by 1, 2, 3 and 2 subscribers), ``fanout``
(``--publishers`` x ``--subscribers``, each pulling every publisher, plus burst joiners). Each path
(``SFU_FORWARD_PATH``: ``fast``, ``legacy``) runs in its own SFU server process (`bench.sfu_server`: the embedded SFU
under uvicorn on 127.0.0.1 plus a stats route), started together; for every level the rounds alternate which path
goes first, so before/after come from the same minutes on the same machine. This process is the load generator:
aiortc publishers that send pre-encoded VP8 (1 Mbit/s, 30 fps, 640x384, keyframe every 2 s) and Opus (20 ms)
packets in a loop, and subscribers that count the RTP packets they get without decoding them. Server CPU is
utime+stime from /proc/<pid>/stat over a fixed window. As root it runs in a loopback-only network namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
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
    def __init__(self, log_path: str, path: str = 'fast') -> None:
        self.path = path
        self.port = free_port()
        self.secret = secrets.token_urlsafe(24)
        secret_args = [f'--app-secret={self.secret}']  # '=': a secret may start with '-'
        self.log = open(log_path, 'wb')  # closed in stop()
        env = {**os.environ, 'SFU_FORWARD_PATH': path}
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'bench.sfu_server', '--port', str(self.port), '--app-id', APP_ID, *secret_args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        # uvicorn closes an idle connection after 5 s; reusing one at that moment fails with ReadError (it aborted
        # two runs on a loaded machine): the client lets idle connections go after 2 s
        limits = httpx.Limits(keepalive_expiry=2.0)
        self.http = httpx.AsyncClient(base_url=f'http://127.0.0.1:{self.port}', timeout=30, limits=limits)
        self.api_http = httpx.AsyncClient(base_url=f'http://127.0.0.1:{self.port}/sfu/v1', timeout=30, limits=limits)

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


# ---- levels: idle, publisher only, the telehealth shape, the benchmark fan-out -----------------------------------

LEVELS = ('idle', 'publisher-only', 'telehealth', 'fanout')
TELEHEALTH_SHAPE = (1, 2, 3, 2)  # subscribers of each of 4 cameras (technicians per camera: 1-3)


@dataclass
class Figures:
    """One measured window of one level on one path."""

    level: str
    path: str
    window: Window
    rss_mb: float
    keyframe_requests: int
    joins: list[Join] = field(default_factory=list)

    @property
    def cpu_pct(self) -> float:
        return self.window.server_cpu_s / self.window.seconds * 100

    @property
    def us_per_in(self) -> float:
        w = self.window
        return w.server_cpu_s * 1e6 / w.packets_in if w.packets_in else float('nan')

    def line(self) -> str:
        w = self.window
        return (
            f'{self.level:15s} {self.path:6s} CPU {self.cpu_pct:5.2f} %  in {w.packets_in / w.seconds:5.0f}/s '
            f'fwd {w.fwd_per_s:6.0f}/s  µs/in {self.us_per_in:6.1f}  µs/fwd {w.us_per_packet:6.1f}  '
            f'RSS {self.rss_mb:5.1f} MB  PLI {self.keyframe_requests}  delivered '
            f'{w.received / max(1, w.forwarded) * 100:5.1f} %  machine busy {w.machine_busy * 100:3.0f} %  '
            f'load {loadavg()}'
        )


async def run_level(level: str, server: Server, video: Clip, audio: Clip | None, args: argparse.Namespace) -> Figures:
    """Set the level's load up on ``server``, warm up, measure one window, tear the load down."""
    client = server.client()
    publishers: list[Publisher] = []
    subscribers: list[Subscriber] = []
    joins: list[Join] = []
    try:
        if level == 'publisher-only':
            publishers = [await publish(client, video, audio)]
        elif level == 'telehealth':  # 4 cameras (video only), each pulled by 1-3 subscribers
            publishers = list(await asyncio.gather(*(publish(client, video, None) for _ in TELEHEALTH_SHAPE)))
            for pub, count in zip(publishers, TELEHEALTH_SHAPE, strict=True):
                subscribers += await asyncio.gather(
                    *(subscribe(client, [(pub.session_id, 'v')], decode=False) for _ in range(count))
                )
        elif level == 'fanout':
            publishers = list(await asyncio.gather(*(publish(client, video, audio) for _ in range(args.publishers))))
            names = [(p.session_id, n) for p in publishers for n in (['a', 'v'] if audio else ['v'])]
            for i in range(0, args.subscribers, 4):
                batch = min(4, args.subscribers - i)
                subscribers += await asyncio.gather(*(subscribe(client, names, decode=False) for _ in range(batch)))
        else:  # idle: one Calls request starts the SFU's garbage collector, as the app's first page does
            await client.new_session()
        await asyncio.gather(*(wait_connected(s.pc) for s in subscribers))
        await asyncio.sleep(args.warmup)
        before = await server.stats()
        print(
            f'  {level} on {server.path}: {before["sessions"]} sessions, {before["subscriptions"]} subscriptions '
            f'at the server ({len(publishers)} publishers, {len(subscribers)} subscribers here)',
            flush=True,
        )
        window = await measure(server, subscribers, args.seconds)
        after = await server.stats()
        rss = rss_mb(server.pid)
        if level == 'fanout':
            for _ in range(args.bursts):
                joins += await burst(client, publishers, args.burst)
                await asyncio.sleep(0.5)
        return Figures(level, server.path, window, rss, after['keyframe_requests'] - before['keyframe_requests'], joins)
    finally:
        await close_all([*subscribers, *publishers])
        await asyncio.sleep(1.0)  # the SFU notices the closed peers and frees their sessions


def median(values: list[float]) -> float:
    return percentile(values, 50)


def report(results: list[Figures], paths: list[str]) -> None:
    """The before/after table: medians over the rounds of each level, for each path."""

    def pick(level: str, path: str) -> list[Figures]:
        return [f for f in results if f.level == level and f.path == path]

    def cell(values: list[float], fmt: str) -> str:
        values = [v for v in values if not math.isnan(v)]
        if not values:
            return '-'
        spread = f' ({fmt.format(min(values))}-{fmt.format(max(values))})' if len(values) > 1 else ''
        return fmt.format(median(values)) + spread

    rows: list[tuple[str, list[str]]] = []
    recv_cost = {p: median([f.us_per_in for f in pick('publisher-only', p)] or [math.nan]) for p in paths}
    for level in LEVELS:
        if not any(f.level == level for f in results):
            continue
        by_path = {p: pick(level, p) for p in paths}
        if level == 'idle':
            rows.append(
                ('idle: server CPU, % of a core', [cell([f.cpu_pct for f in by_path[p]], '{:.2f}') for p in paths])
            )
            rows.append(('idle: server RSS, MB', [cell([f.rss_mb for f in by_path[p]], '{:.0f}') for p in paths]))
            continue
        rows.append(
            (f'{level}: server CPU, % of a core', [cell([f.cpu_pct for f in by_path[p]], '{:.1f}') for p in paths])
        )
        rows.append(
            (f'{level}: µs per received packet', [cell([f.us_per_in for f in by_path[p]], '{:.0f}') for p in paths])
        )
        if level != 'publisher-only':
            rows.append(
                (
                    f'{level}: µs per forwarded packet, all-in',
                    [cell([f.window.us_per_packet for f in by_path[p]], '{:.1f}') for p in paths],
                )
            )
            rows.append(
                (
                    f'{level}: µs per forwarded packet, receive cost taken out',
                    [
                        cell(
                            [
                                (f.window.server_cpu_s * 1e6 - recv_cost[p] * f.window.packets_in) / f.window.forwarded
                                if f.window.forwarded
                                else math.nan
                                for f in by_path[p]
                            ],
                            '{:.1f}',
                        )
                        for p in paths
                    ],
                )
            )
            rows.append(
                (
                    f'{level}: forwarded packets/s',
                    [cell([f.window.fwd_per_s for f in by_path[p]], '{:.0f}') for p in paths],
                )
            )
        rows.append(
            (
                f'{level}: keyframe requests in the window',
                [cell([f.keyframe_requests for f in by_path[p]], '{:.0f}') for p in paths],
            )
        )
        rows.append((f'{level}: server RSS, MB', [cell([f.rss_mb for f in by_path[p]], '{:.0f}') for p in paths]))
        if level == 'fanout' and any(f.joins for f in results):
            rows.append(
                (
                    f'fanout: pull -> first decoded frame, {args_burst[0]} joining at once, ms',
                    [summary([j.first_frame for f in by_path[p] for j in f.joins]) for p in paths],
                )
            )
    width = max(len(r[0]) for r in rows)
    print()
    print('RESULTS (median over rounds, min-max in brackets)')
    print(f'| {"figure".ljust(width)} | ' + ' | '.join(paths) + ' |')
    print(f'|{"-" * (width + 2)}|' + '|'.join('---' for _ in paths) + '|')
    for name, cells in rows:
        print(f'| {name.ljust(width)} | ' + ' | '.join(cells) + ' |')


args_burst = [4]


async def run(args: argparse.Namespace) -> None:
    aiortc_glue.use_host_addresses(['127.0.0.1'])
    args_burst[0] = args.burst
    levels = [lv.strip() for lv in args.levels.split(',') if lv.strip()]
    paths = [p.strip() for p in args.paths.split(',') if p.strip()]
    for lv in levels:
        if lv not in LEVELS:
            raise SystemExit(f'unknown level {lv!r}; levels: {", ".join(LEVELS)}')
    print(f'network: {network_note()}; loadavg before: {loadavg()}; cores: {os.cpu_count()}')
    t = time.monotonic()
    video = encode_vp8(width=640, height=384, fps=30, seconds=4, kbps=args.video_kbps, gop_s=2)
    audio = None if args.no_audio else encode_opus(seconds=2)
    print(
        f'pre-encoded in {time.monotonic() - t:.1f} s: VP8 {len(video.frames)} frames {video.bitrate_kbps:.0f} kbit/s'
        + (f', Opus {len(audio.frames)} frames {audio.bitrate_kbps:.0f} kbit/s' if audio else ', no audio')
    )
    servers = {p: Server(os.path.join(args.workdir, f'sfu_server_{p}.log'), p) for p in paths}
    results: list[Figures] = []
    try:
        await asyncio.gather(*(s.wait_ready() for s in servers.values()))
        for p, s in servers.items():
            print(f'server {p}: pid {s.pid}, RSS {rss_mb(s.pid):.0f} MB at start')
        for level in levels:
            for r in range(args.rounds):
                order = paths if r % 2 == 0 else paths[::-1]  # interleaved: neither path always goes first
                for p in order:
                    figures = await run_level(level, servers[p], video, audio, args)
                    results.append(figures)
                    print(f'round {r + 1}: {figures.line()}', flush=True)
        if args.soak > 0:
            await soak(servers[paths[0]], video, audio, args)
        report(results, paths)
        print(
            f'  load: loadavg after {loadavg()}; rounds {args.rounds}; window {args.seconds:.0f} s after '
            f'{args.warmup:.0f} s warm-up; fanout {args.publishers} publishers x {args.subscribers} subscribers '
            f'(each pulls all); telehealth 4 video-only cameras x {"/".join(map(str, TELEHEALTH_SHAPE))} subscribers'
        )
    finally:
        await asyncio.gather(*(s.stop() for s in servers.values()))


async def soak(server: Server, video: Clip, audio: Clip | None, args: argparse.Namespace) -> None:
    """The fan-out load for ``--soak`` seconds on one path, RSS and CPU every ``--sample-every``, a burst each."""
    client = server.client()
    publishers = list(await asyncio.gather(*(publish(client, video, audio) for _ in range(args.publishers))))
    names = [(p.session_id, n) for p in publishers for n in (['a', 'v'] if audio else ['v'])]
    subscribers: list[Subscriber] = []
    try:
        for i in range(0, args.subscribers, 4):
            batch = min(4, args.subscribers - i)
            subscribers += await asyncio.gather(*(subscribe(client, names, decode=False) for _ in range(batch)))
        print(f'soak ({server.path}): {args.soak:.0f} s, sample every {args.sample_every:.0f} s, one burst each')
        started = time.monotonic()
        rss: list[float] = []
        while time.monotonic() - started < args.soak:
            w = await measure(server, subscribers, min(args.sample_every, args.soak - (time.monotonic() - started)))
            await burst(client, publishers, args.burst)
            rss.append(rss_mb(server.pid))
            print(f'  t={time.monotonic() - started:5.0f} s RSS {rss[-1]:6.1f} MB  {w.line()}', flush=True)
        print(f'  soak RSS first {rss[0]:.1f}, last {rss[-1]:.1f}, max {max(rss):.1f} MB; {failures[0]} joiners failed')
    finally:
        await close_all([*subscribers, *publishers])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--levels', default=','.join(LEVELS), help=f'comma separated, of: {", ".join(LEVELS)}')
    parser.add_argument('--paths', default='fast,legacy', help='forwarding paths (SFU_FORWARD_PATH), one server each')
    parser.add_argument('--rounds', type=int, default=3, help='windows per level and path, interleaved')
    parser.add_argument('--publishers', type=int, default=2, help='fanout level')
    parser.add_argument('--subscribers', type=int, default=18, help='fanout level: each pulls every publisher')
    parser.add_argument('--seconds', type=float, default=15, help='CPU measurement window')
    parser.add_argument('--warmup', type=float, default=4)
    parser.add_argument('--video-kbps', type=int, default=1000)
    parser.add_argument('--no-audio', action='store_true')
    parser.add_argument('--burst', type=int, default=4, help='subscribers joining at once (fanout level)')
    parser.add_argument('--bursts', type=int, default=2, help='bursts per fanout window')
    parser.add_argument('--soak', type=float, default=0, help='then seconds of fan-out load sampling RSS (e.g. 600)')
    parser.add_argument('--sample-every', type=float, default=30)
    parser.add_argument('--workdir', default='/tmp')
    args = parser.parse_args()
    reexec_in_loopback_netns('bench.sfu_load')
    budget = args.rounds * len(args.paths.split(',')) * len(args.levels.split(',')) * (args.seconds + args.warmup + 60)
    asyncio.run(asyncio.wait_for(run(args), timeout=args.soak + budget + 300))


if __name__ == '__main__':
    main()
