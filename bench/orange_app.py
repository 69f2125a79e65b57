"""The original Orange Telehealth app (TypeScript, Workers) against the embedded SFU: what its technician sees.

    .venv/bin/python -m bench.orange_app --orange-dir DIR [--rounds 10] [--room NAME]

DIR is a built checkout of the original (`Gryczka/orange` at 8cdd88e; how to build it offline:
docs/benchmarks.md §7). This starts `app.py` (embedded SFU, 127.0.0.1 only), then the original with
`npx wrangler dev ./build/index.js` in DIR, its `routePartyTracksRequest` proxy pointed at the app's `/sfu/v1`
(`CALLS_API_URL`, written with a per-run app id and secret into DIR/.dev.vars, mode 0600). Headless Debian Chromium
with five fake cameras plays a hospital (cameras 0, 2 and 3; Chromium's camera 1 is a depth camera that never
encodes) and a technician. Then, each round, the hospital adds camera 4 while the technician watches, and removes it.

Printed, one JSON line per step: seconds until the technician plays every camera tile (frames rendered in 1 s), the
tiles, the hospital's video senders actually sending and both sides' m-line counts (they must not grow), and the
load. As root it runs in a loopback-only network namespace. Nothing of the original is in this repository.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, sync_playwright

from bench.common import free_port, loadavg, network_note, reexec_in_loopback_netns

harness: Any = importlib.import_module('tests.e2e.harness')  # at run time: `mypy bench` skips the e2e harness

MARKER = '# written by bench/orange_app.py\n'
CAMERAS = (0, 2, 3)  # fake_device_1 is a 16-bit depth camera: it never encodes a frame
ADDED = 4

# The namespace has only loopback, so Chromium reports offline and Orange shows "You are offline"; and every peer
# connection is recorded so its transceivers can be read.
INIT_JS = """
Object.defineProperty(Navigator.prototype, 'onLine', {get: () => true});
(() => { const O = window.RTCPeerConnection; window.__pcs = [];
  window.RTCPeerConnection = function (...a) { const pc = new O(...a); window.__pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = O.prototype; })();
"""
TILES_JS = """() => Promise.all([...document.querySelectorAll('video')].map(v => new Promise(r => {
  let el = v, label = '';
  for (let i = 0; i < 6 && el; i++) {
    el = el.parentElement;
    if (el && /hospital -/.test(el.innerText)) { label = el.innerText.trim().split('\\n').pop(); break; }
  }
  const q = () => v.getVideoPlaybackQuality().totalVideoFrames; const s = q();
  setTimeout(() => r([label, v.videoWidth, q() - s]), 1000); })))"""
PCS_JS = """async () => { let sending = 0, mlines = 0;
  for (const pc of window.__pcs) { if (pc.connectionState === 'closed') continue;
    mlines = Math.max(mlines, pc.localDescription ? pc.localDescription.sdp.split('\\nm=').length - 1 : 0);
    for (const t of pc.getTransceivers()) {
      if (t.currentDirection === 'sendonly' && t.sender.track && t.sender.track.kind === 'video') sending++;
    } }
  return {sending, mlines}; }"""


def write_dev_vars(orange: Path, app_id: str, secret: str, sfu_url: str) -> Path:
    path = orange / '.dev.vars'
    if path.exists() and not path.read_text(errors='replace').startswith(MARKER):
        raise SystemExit(f'{path} exists and was not written by this script: move it away first')
    path.write_text(f'{MARKER}CALLS_APP_ID={app_id}\nCALLS_APP_SECRET={secret}\nCALLS_API_URL={sfu_url}\n')
    path.chmod(0o600)
    return path


def start_wrangler(orange: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    npx = shutil.which('npx')
    if npx is None or not (orange / 'build' / 'index.js').exists():
        raise SystemExit(f'npx and a built original in {orange} are needed (docs/benchmarks.md §7)')
    env = {**os.environ, 'WRANGLER_SEND_METRICS': 'false', 'NO_COLOR': '1'}
    with log.open('wb') as out:
        process = subprocess.Popen(
            [npx, 'wrangler', 'dev', './build/index.js', '--ip', '127.0.0.1', '--port', str(port)],
            cwd=orange,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit('wrangler dev exited:\n' + log.read_text(errors='replace')[-3000:])
        try:
            httpx.get(f'http://127.0.0.1:{port}/', timeout=2)
            return process
        except httpx.HTTPError:
            time.sleep(0.5)
    os.killpg(process.pid, 15)
    process.wait(timeout=20)
    raise SystemExit('wrangler dev did not answer within 90 s')


def enter(context: BrowserContext, base: str, room: str, name: str, role: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f'{base}/set-username?return-url=/{room}')
    page.fill('input[name=username]', name)
    page.click('button[type=submit]')
    page.wait_for_url(f'**/{room}')
    page.get_by_role('button', name=f'Join as {role}').click()
    page.wait_for_url(f'**/{role.lower()}')
    return page


def camera_tiles(page: Page) -> list[list[Any]]:
    return [t for t in page.evaluate(TILES_JS) if 'Camera' in t[0]]


def wait_playing(page: Page, count: int, timeout: float = 30.0) -> tuple[float | None, list[list[Any]]]:
    start = time.monotonic()
    tiles: list[list[Any]] = []
    while time.monotonic() - start < timeout:
        tiles = camera_tiles(page)
        if sum(1 for _, width, frames in tiles if width > 0 and frames > 0) >= count:
            return round(time.monotonic() - start, 2), tiles
        time.sleep(0.25)
    return None, tiles


def run(orange: Path, rounds: int, room: str) -> None:
    work = Path(tempfile.mkdtemp(prefix='bench-orange-'))
    app_id, secret = 'orangebench', secrets.token_urlsafe(32)
    app = harness.start_app(work, {'SFU_APP_ID': app_id, 'SFU_APP_SECRET': secret})
    wrangler: subprocess.Popen[bytes] | None = None
    dev_vars: Path | None = None
    try:  # whatever fails (a .dev.vars not ours, wrangler not starting, a page step), nothing is left running
        dev_vars = write_dev_vars(orange, app_id, secret, f'{app.url}/sfu/v1')
        port = free_port()
        wrangler = start_wrangler(orange, port, work / 'wrangler.log')
        drive(f'http://127.0.0.1:{port}', room, rounds, app.log_path, work)
    finally:
        if wrangler is not None:
            os.killpg(wrangler.pid, 15)
            wrangler.wait(timeout=20)
        if dev_vars is not None:
            dev_vars.unlink(missing_ok=True)
        app.stop()


def drive(base: str, room: str, rounds: int, app_log: Path, work: Path) -> None:
    print(json.dumps({'network': network_note(), 'app_log': str(app_log), 'wrangler_log': str(work)}))
    ok = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path='/usr/bin/chromium', args=harness.chromium_args(5, fake_screen=False)
        )
        contexts = [browser.new_context(permissions=['camera', 'microphone']) for _ in range(2)]
        for context in contexts:
            context.add_init_script(INIT_JS)
        hospital = enter(contexts[0], base, room, 'hospital', 'Hospital')
        for camera in CAMERAS:
            hospital.get_by_role('button', name=f'+ fake_device_{camera}').click()
            time.sleep(0.5)
        technician = enter(contexts[1], base, room, 'technician', 'Technician')
        seconds, tiles = wait_playing(technician, len(CAMERAS))
        print(json.dumps({'step': 'three cameras', 'seconds_until_all_play': seconds, 'tiles': tiles}))
        for round_ in range(rounds):
            hospital.get_by_role('button', name=f'+ fake_device_{ADDED}').click()
            seconds, tiles = wait_playing(technician, len(CAMERAS) + 1)
            ok += seconds is not None
            hospital_pcs, technician_pcs = hospital.evaluate(PCS_JS), technician.evaluate(PCS_JS)
            print(
                json.dumps(
                    {
                        'step': f'round {round_}: camera added while watched',
                        'seconds_until_all_play': seconds,
                        'tiles': tiles,
                        'hospital_video_senders_sending': hospital_pcs['sending'],
                        'hospital_mlines': hospital_pcs['mlines'],
                        'technician_mlines': technician_pcs['mlines'],
                        'load': loadavg(),
                    }
                )
            )
            hospital.get_by_role('button', name=f'✓ fake_device_{ADDED}').click()
            seconds, tiles = wait_playing(technician, len(CAMERAS))
            print(json.dumps({'step': f'round {round_}: removed', 'seconds_until_all_play': seconds}))
        print(json.dumps({'added_while_watched_and_seen': ok, 'rounds': rounds}))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--orange-dir', type=Path, required=True)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--room', default='orange-bench')
    args = parser.parse_args()
    reexec_in_loopback_netns('bench.orange_app')
    run(args.orange_dir.resolve(), args.rounds, args.room)


if __name__ == '__main__':
    main()
