"""Browser benchmark through the app's embedded SFU: glass-to-glass latency and pull -> first decoded frame.

    .venv/bin/python -m bench.browser_latency [--subscribers 1,4 --rounds 3 --seconds 15]

Starts `app.py` on 127.0.0.1 (tests/e2e/harness.start_app) and one headless Debian Chromium. One page publishes
`canvas.captureStream()` of a canvas on which every animation frame draws `Date.now()` as 48 black/white cells
(40 bits of time + an 8-bit check). For each N in --subscribers and each round, N fresh pages join at once: this
script creates their sessions, then pulls the publisher's track over the app's Calls API
(`/sfu/v1/apps/{SFU_APP_ID}/...`, CallsClient), answers in the page and renegotiates — the push/pull flow of the app.
Each receiver decodes the cells in `requestVideoFrameCallback` (same host clock): glass-to-glass = Date.now() there
minus the drawn time. Pull -> first frame = the first `requestVideoFrameCallback` minus the time just before the
pull request. As root it runs in a loopback-only network namespace (`unshare -n`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, async_playwright

from bench.common import (
    cpu_seconds,
    loadavg,
    machine_cpu_busy,
    network_note,
    percentile,
    reexec_in_loopback_netns,
    summary,
)
from media.calls_api import SessionDescription, TrackObject, TracksRequest
from media.calls_client import CallsClient

# Imported at run time so that `mypy bench` does not type-check the e2e harness (which is not ours) with it.
harness: Any = importlib.import_module('tests.e2e.harness')
RunningApp = Any

APP_ID = 'bench'

COMMON_JS = """
() => {
    window.benchGathered = (pc) => new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        setTimeout(resolve, 3000);
    });
}
"""

PUBLISHER_JS = """
async ([W, H]) => {
    const COLS = 8, ROWS = 6, CW = W / COLS, CH = H / ROWS;
    const canvas = document.createElement('canvas');
    canvas.width = W; canvas.height = H;
    document.body.appendChild(canvas);
    const ctx = canvas.getContext('2d');
    let draws = 0;
    const draw = () => {
        const value = Date.now() % 2 ** 40, check = value % 251;
        ctx.fillStyle = '#000'; ctx.fillRect(0, 0, W, H); ctx.fillStyle = '#fff';
        for (let i = 0; i < 48; i++) {
            const bit = i < 40 ? Math.floor(value / 2 ** i) % 2 : (check >> (i - 40)) & 1;
            if (bit) ctx.fillRect((i % COLS) * CW, Math.floor(i / COLS) * CH, CW, CH);
        }
        draws++;
        requestAnimationFrame(draw);
    };
    draw();
    const stream = canvas.captureStream();
    const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
    const tr = pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly', streams: [stream]});
    tr.setCodecPreferences(RTCRtpSender.getCapabilities('video').codecs.filter((c) => /vp8|rtx/i.test(c.mimeType)));
    await pc.setLocalDescription();
    await window.benchGathered(pc);
    window.bench = {pc, tr, draws: () => draws};
    return {sdp: pc.localDescription.sdp, mid: tr.mid};
}
"""

SUBSCRIBER_JS = """
() => {
    const state = {firstFrameAt: null, samples: [], bad: 0, frames: 0, width: 0, height: 0};
    const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: 'max-bundle'});
    const video = document.createElement('video');
    video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.appendChild(video);
    const canvas = document.createElement('canvas');
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    pc.ontrack = (e) => {
        video.srcObject = e.streams[0] || new MediaStream([e.track]);
        video.play().catch(() => {});
    };
    const onFrame = () => {
        const t = Date.now();
        if (state.firstFrameAt === null) state.firstFrameAt = t;
        state.frames++;
        const w = video.videoWidth, h = video.videoHeight;
        if (w && h) {
            state.width = w; state.height = h;
            if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
            ctx.drawImage(video, 0, 0, w, h);
            const data = ctx.getImageData(0, 0, w, h).data;
            let value = 0, check = 0;
            for (let i = 0; i < 48; i++) {
                const x = Math.floor(((i % 8) + 0.5) * w / 8), y = Math.floor((Math.floor(i / 8) + 0.5) * h / 6);
                const bit = data[(y * w + x) * 4] > 127 ? 1 : 0;
                if (i < 40) value += bit * 2 ** i; else check |= bit << (i - 40);
            }
            if (value % 251 === check) {
                let sent = value + Math.floor(t / 2 ** 40) * 2 ** 40;
                if (sent > t + 2 ** 39) sent -= 2 ** 40;
                state.samples.push(t - sent);
            } else {
                state.bad++;
            }
        }
        video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    window.bench = {pc, state};
}
"""

ANSWER_JS = """
async (sdp) => {
    const pc = window.bench.pc;
    await pc.setRemoteDescription({type: 'offer', sdp});
    await pc.setLocalDescription();
    await window.benchGathered(pc);
    return pc.localDescription.sdp;
}
"""


async def wait_for(page: Page, expression: str, timeout: float) -> Any:
    """Poll `expression` in the page until truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise TimeoutError(f'{expression} still falsy after {timeout} s')


async def open_page(browser: Browser, app: RunningApp) -> Page:
    page = await browser.new_page(viewport={'width': 800, 'height': 600})
    page.set_default_timeout(15_000)
    await page.goto(f'{app.url}/healthz')  # a secure (localhost) origin; the page is driven by evaluate()
    await page.evaluate(COMMON_JS)
    return page


async def publish(client: CallsClient, page: Page, width: int, height: int) -> str:
    offer = await page.evaluate(PUBLISHER_JS, [width, height])
    session_id = (await client.new_session()).session_id
    response = await client.new_tracks(
        session_id,
        TracksRequest(
            session_description=SessionDescription(type='offer', sdp=offer['sdp']),
            tracks=[TrackObject(location='local', mid=offer['mid'], track_name='canvas')],
        ),
    )
    if response.session_description is None or any(t.error_code for t in response.tracks or []):
        raise RuntimeError(f'push failed: {response}')
    await page.evaluate(
        '(sdp) => window.bench.pc.setRemoteDescription({type: "answer", sdp})', response.session_description.sdp
    )
    await wait_for(page, 'window.bench.pc.connectionState === "connected"', 15)
    return session_id


async def join(client: CallsClient, page: Page, session_id: str, publisher: str) -> float:
    """Pull the canvas track into `page`'s session; ms from the pull request to the first decoded frame."""
    start_ms = time.time() * 1000
    response = await client.new_tracks(
        session_id, TracksRequest(tracks=[TrackObject(location='remote', session_id=publisher, track_name='canvas')])
    )
    if response.session_description is None or any(t.error_code for t in response.tracks or []):
        raise RuntimeError(f'pull failed: {response}')
    answer = await page.evaluate(ANSWER_JS, response.session_description.sdp)
    await client.renegotiate(session_id, SessionDescription(type='answer', sdp=answer))
    first = await wait_for(page, 'window.bench.state.firstFrameAt', 15)
    return float(first) - start_ms


async def run_round(
    browser: Browser, app: RunningApp, client: CallsClient, publisher: str, n: int, seconds: float
) -> tuple[list[float], list[float], list[dict[str, Any]], float]:
    """N pages join at once; returns (join ms, glass-to-glass ms samples, per-page state, server CPU %)."""
    pages = [await open_page(browser, app) for _ in range(n)]
    try:
        for page in pages:
            await page.evaluate(SUBSCRIBER_JS)
        sessions = [(await client.new_session()).session_id for _ in range(n)]
        joins = list(
            await asyncio.gather(*(join(client, p, s, publisher) for p, s in zip(pages, sessions, strict=True)))
        )
        await asyncio.sleep(2)  # settle: bandwidth estimation, jitter buffers
        for page in pages:
            await page.evaluate(
                'window.bench.state.samples = []; window.bench.state.bad = 0; window.bench.state.frames = 0'
            )
        cpu0, t0 = cpu_seconds(app.process.pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu_pct = (cpu_seconds(app.process.pid) - cpu0) / (time.monotonic() - t0) * 100
        states = [await page.evaluate('window.bench.state') for page in pages]
        samples = [float(v) for s in states for v in s['samples']]
        return joins, samples, states, cpu_pct
    finally:
        for page in pages:
            await page.close()


async def run(args: argparse.Namespace) -> None:
    counts = [int(v) for v in args.subscribers.split(',')]
    print(f'network: {network_note()}; loadavg before: {loadavg()}')
    secret = secrets.token_urlsafe(24)
    workdir = Path(tempfile.mkdtemp(prefix='bench-browser-'))
    app = harness.start_app(workdir, {'SFU_APP_ID': APP_ID, 'SFU_APP_SECRET': secret})
    print(f'app pid {app.process.pid} on {app.url}; Calls API {app.url}/sfu/v1/apps/{APP_ID}/...')
    results: dict[int, tuple[list[float], list[float], list[str], float]] = {}
    http = httpx.AsyncClient(base_url=f'{app.url}/sfu/v1', timeout=30)
    client = CallsClient(http, APP_ID, secret)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=harness.chromium_path(), args=harness.chromium_args(), headless=True
            )
            try:
                pub_page = await open_page(browser, app)
                publisher = await publish(client, pub_page, args.width, args.height)
                await asyncio.sleep(2)
                print(f'publisher connected: {args.width}x{args.height} canvas, VP8')
                for n in counts:
                    joins: list[float] = []
                    g2g: list[float] = []
                    notes: list[str] = []
                    cpus: list[float] = []
                    for r in range(args.rounds):
                        busy0 = machine_cpu_busy()
                        j, s, states, cpu = await run_round(browser, app, client, publisher, n, args.seconds)
                        busy1 = machine_cpu_busy()
                        busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * 100
                        joins += j
                        g2g += s
                        cpus.append(cpu)
                        fps = [st['frames'] / args.seconds for st in states]
                        note = (
                            f'{n} sub round {r + 1}: join ms {" ".join(f"{v:.0f}" for v in j)}; g2g {summary(s)} ms; '
                            f'fps {" ".join(f"{v:.0f}" for v in fps)}; decoded size {states[0]["width"]}x'
                            f'{states[0]["height"]}; undecodable {sum(st["bad"] for st in states)}; '
                            f'app CPU {cpu:.0f} %; machine busy {busy:.0f} % of 2 cores'
                        )
                        print(note)
                        notes.append(note)
                        await asyncio.sleep(1)
                    results[n] = (joins, g2g, notes, sum(cpus) / len(cpus))
            finally:
                await browser.close()
    finally:
        await http.aclose()
        app.stop()
    print()
    print('RESULTS (ms)')
    for n, (joins, g2g, _, cpu) in results.items():
        print(
            f'  {n} subscriber(s): glass-to-glass p50 {percentile(g2g, 50):.0f} p95 {percentile(g2g, 95):.0f} '
            f'(n={len(g2g)}); pull -> first frame p50 {percentile(joins, 50):.0f} p95 {percentile(joins, 95):.0f} '
            f'max {max(joins):.0f} (n={len(joins)}, {n} joining at once); app CPU {cpu:.0f} % of a core'
        )
    print('  targets: glass-to-glass p95 <= 50 at 4 subscribers; pull -> first frame p95 <= 200 for every joiner')
    print(f'  loadavg after: {loadavg()}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--subscribers', default='1,4', help='comma-separated subscriber counts')
    parser.add_argument('--rounds', type=int, default=3, help='join rounds per subscriber count')
    parser.add_argument('--seconds', type=float, default=15, help='glass-to-glass window per round')
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    args = parser.parse_args()
    reexec_in_loopback_netns('bench.browser_latency')
    budget = 120 + len(args.subscribers.split(',')) * args.rounds * (args.seconds + 60)
    asyncio.run(asyncio.wait_for(run(args), timeout=budget))


if __name__ == '__main__':
    main()
