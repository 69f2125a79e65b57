"""The app with the embedded SFU inline (one process, one event loop) versus in its own process (``SFU_PROCESS``).

    .venv/bin/python -m bench.sfu_process [--rounds 2 --seconds 15 --levels idle,telehealth,fanout]

For each mode the real app (`app.py`, started as the e2e harness starts it) runs on 127.0.0.1; aiortc publishers and
counting subscribers (``bench.sfu_load``'s pre-encoded media) go through its Calls API: the app's ``/sfu/v1`` inline,
the child's loopback port when separate. During each window a probe asks the app for ``/healthz`` every 50 ms:
its latency is how long a page's request waits behind media work on the app's loop (no probe at idle). Reported:
probe latency p50/p95/max, CPU of the app and of the SFU child (% of a core), µs per delivered packet, RSS of each.
Modes
alternate their order every round (same minutes, same machine); the machine load is printed with every line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import cpu_seconds, loadavg, machine_cpu_busy, percentile, reexec_in_loopback_netns, rss_mb
from bench.media import encode_opus, encode_vp8
from bench.sfu_load import TELEHEALTH_SHAPE, Publisher, Subscriber, close_all, publish, subscribe, wait_connected
from media.calls_client import CallsClient
from media.sfu import aiortc_glue

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import start_app  # noqa: E402

CHILD_PORT = re.compile(r'Calls API on 127\.0\.0\.1:(\d+)')
CHILD_PID = re.compile(r'its own process \(pid (\d+)\)')


async def probe(url: str, stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            t = time.perf_counter()
            await http.get(url)
            latencies.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)
    return latencies


async def one(mode: str, level: str, args: argparse.Namespace, video: object, audio: object) -> str:
    secret = secrets.token_urlsafe(32)
    workdir = Path(tempfile.mkdtemp(prefix=f'sfu_process_{mode}_'))
    env = {'SFU_PROCESS': mode, 'SFU_APP_ID': 'bench', 'SFU_APP_SECRET': secret, 'LOG_LEVEL': 'INFO'}
    app = await asyncio.get_running_loop().run_in_executor(None, lambda: start_app(workdir, env))
    publishers: list[Publisher] = []
    subscribers: list[Subscriber] = []
    try:
        child_pid = None
        base = f'{app.url}/sfu/v1'
        if mode == 'separate':
            log = app.log()
            port, pid = CHILD_PORT.search(log), CHILD_PID.search(log)
            assert port and pid, 'the app did not report its SFU process'
            base, child_pid = f'http://127.0.0.1:{port.group(1)}/sfu/v1', int(pid.group(1))
        http = httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(keepalive_expiry=2.0))
        client = CallsClient(http, 'bench', secret)
        if level == 'telehealth':
            publishers = list(await asyncio.gather(*(publish(client, video, None) for _ in TELEHEALTH_SHAPE)))  # type: ignore[arg-type]
            for pub, count in zip(publishers, TELEHEALTH_SHAPE, strict=True):
                subscribers += await asyncio.gather(
                    *(subscribe(client, [(pub.session_id, 'v')], decode=False) for _ in range(count))
                )
        elif level == 'fanout':
            publishers = list(await asyncio.gather(*(publish(client, video, audio) for _ in range(2))))  # type: ignore[arg-type]
            names = [(p.session_id, n) for p in publishers for n in ('a', 'v')]
            for i in range(0, args.subscribers, 4):
                subscribers += await asyncio.gather(
                    *(subscribe(client, names, decode=False) for _ in range(min(4, args.subscribers - i)))
                )
        else:
            await client.new_session()
        await asyncio.gather(*(wait_connected(s.pc) for s in subscribers))
        await asyncio.sleep(args.warmup)
        pids = [app.process.pid] + ([child_pid] if child_pid else [])
        c0 = [cpu_seconds(p) for p in pids]
        m0, r0, t0 = machine_cpu_busy(), sum(s.counter.packets for s in subscribers), time.monotonic()
        stop = asyncio.Event()
        if level == 'idle':  # no probe: its own requests would be the app's load
            stop.set()
        task = asyncio.ensure_future(probe(f'{app.url}/healthz', stop))
        await asyncio.sleep(args.seconds)
        stop.set()
        latencies = (await task) or [float('nan')]
        c1 = [cpu_seconds(p) for p in pids]
        m1, r1, t1 = machine_cpu_busy(), sum(s.counter.packets for s in subscribers), time.monotonic()
        seconds = t1 - t0
        cpu = [(b - a) / seconds * 100 for a, b in zip(c0, c1, strict=True)]
        delivered = r1 - r0
        us = (sum(c1) - sum(c0)) * 1e6 / delivered if delivered else float('nan')
        rss = [rss_mb(p) for p in pids]
        busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1]) * 100
        return (
            f'{level:10s} {mode:8s} probe ms p50 {percentile(latencies, 50):5.1f} p95 {percentile(latencies, 95):6.1f} '
            f'max {max(latencies):6.1f} (n={len(latencies)})  CPU app {cpu[0]:5.1f} %'
            + (f' + SFU {cpu[1]:5.1f} %' if len(cpu) > 1 else '             ')
            + f'  {delivered / seconds:6.0f} pkt/s delivered, {us:5.1f} µs each  RSS app {rss[0]:4.0f} MB'
            + (f' SFU {rss[1]:4.0f} MB' if len(rss) > 1 else '')
            + f'  machine busy {busy:3.0f} %  load {loadavg()}'
        )
    finally:
        await close_all([*subscribers, *publishers])
        await asyncio.get_running_loop().run_in_executor(None, app.stop)


async def run(args: argparse.Namespace) -> None:
    aiortc_glue.use_host_addresses(['127.0.0.1'])
    video = encode_vp8(width=640, height=384, fps=30, seconds=4, kbps=1000, gop_s=2)
    audio = encode_opus(seconds=2)
    modes = ['inline', 'separate']
    print(f'loadavg before: {loadavg()}; cores: {os.cpu_count()}')
    for level in args.levels.split(','):
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                print(f'round {r + 1}: ' + await one(mode, level, args, video, audio), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--levels', default='idle,telehealth,fanout')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--seconds', type=float, default=15)
    parser.add_argument('--warmup', type=float, default=4)
    parser.add_argument('--subscribers', type=int, default=18, help='fanout level: 2 publishers x this many')
    args = parser.parse_args()
    reexec_in_loopback_netns('bench.sfu_process')
    asyncio.run(asyncio.wait_for(run(args), timeout=3600))


if __name__ == '__main__':
    main()
