"""Add camera: from the hospital's "Add" click to the technician's first decoded frame of that camera.

    .venv/bin/python -m bench.add_camera [--runs 10] [--between reload|remove]

Starts `app.py` (embedded SFU, 127.0.0.1 only, tests/e2e/harness.start_app) and two headless Debian Chromiums with
fake devices: a hospital station and a technician station in one room, both entered the way a person does. Each run
clicks "Add" on the hospital's colour camera (fake_device_0) and stops the clock when the technician's tile of it
shows its first decoded frame (the tile's `requestVideoFrameCallback` sets `data-playing="true"`; a
MutationObserver stamps it). Between runs the camera goes away and the technician's tile with it: by default the
hospital page is closed and opened again (a fresh station each run); `--between remove` clicks "Remove" instead.

Both pages stamp with `performance.timeOrigin + performance.now()`, one clock for both on this host. The pages'
`MediaClient` methods are wrapped (no app change), and the app's log gives the time of each Calls request, so each
run also prints where the time went: capture, push offer (ICE gathering), push `tracks/new`, the answer, until
bytesSent > 0 is seen, announcing + the technician's pull `tracks/new`, the technician's answer, `renegotiate`,
and the first decoded frame. As root it runs in a loopback-only network namespace (`unshare -n`).
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from bench.common import loadavg, machine_cpu_busy, network_note, percentile, reexec_in_loopback_netns, summary
from bench.join_time import open_room

# Imported at run time so that `mypy bench` does not type-check the e2e harness with it (as bench.browser_latency).
harness: Any = importlib.import_module('tests.e2e.harness')

ROOM = 'bench-add-camera'
FEED_TILE = '[data-testid=feed-grid] [data-testid=tile]'

# Stamps on the hospital page: the click (capturing listener) and every push step of its MediaClient.
HOSPITAL_JS = """
() => {
    const marks = (globalThis.benchMarks = []);
    const now = () => performance.timeOrigin + performance.now();
    document.addEventListener('click', (event) => {
        if (event.target.closest('[data-testid=camera-toggle]')) marks.push(['click', now()]);
    }, true);
    const client = globalThis.orangeMedia;
    for (const name of ['openLocal', 'createPushOffer', 'applyPushAnswer', 'waitSending']) {
        const original = client[name].bind(client);
        client[name] = async (...args) => {
            marks.push([`${name}:start`, now()]);
            try { return await original(...args); } finally { marks.push([`${name}:end`, now()]); }
        };
    }
}
"""

# Stamps on the technician page: its pull answer, the track event and the first frame of a camera tile.
TECHNICIAN_JS = """
() => {
    const marks = (globalThis.benchMarks = []);
    const now = () => performance.timeOrigin + performance.now();
    const client = globalThis.orangeMedia;
    const original = client.answerPull.bind(client);
    client.answerPull = async (...args) => {
        marks.push(['answerPull:start', now()]);
        try { return await original(...args); } finally { marks.push(['answerPull:end', now()]); }
    };
    client.pcs.pull.addEventListener('track', (event) => {
        if (event.track.kind === 'video') marks.push(['track', now()]);
    });
    const grid = document.querySelector('[data-testid=feed-grid]');
    new MutationObserver(() => {
        const seen = marks.some(([name]) => name === 'first_frame');
        if (!seen && grid.querySelector('[data-playing=true]')) marks.push(['first_frame', now()]);
    }).observe(grid, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-playing'] });
}
"""

# (label, from mark, to mark): consecutive stages from the click to the first frame; they add up to the total.
STAGES = (
    ('click → capture asked', 'click', 'openLocal:start'),
    ('capture (getUserMedia)', 'openLocal:start', 'openLocal:end'),
    ('→ offer asked', 'openLocal:end', 'createPushOffer:start'),
    ('push offer + ICE gathering', 'createPushOffer:start', 'createPushOffer:end'),
    ('tracks/new (push) → answer', 'createPushOffer:end', 'applyPushAnswer:start'),
    ('apply answer', 'applyPushAnswer:start', 'applyPushAnswer:end'),
    ('→ bytesSent > 0 seen', 'applyPushAnswer:end', 'waitSending:end'),
    ('announce → pull tracks/new done', 'waitSending:end', 'sfu:pull'),
    ('→ technician asked to answer', 'sfu:pull', 'answerPull:start'),
    ('technician answer', 'answerPull:start', 'answerPull:end'),
    ('→ renegotiate done', 'answerPull:end', 'sfu:renegotiate'),
    ('→ first frame decoded', 'sfu:renegotiate', 'first_frame'),
)
# The app logs each Calls request when its response arrives (httpx, INFO, wall clock to the millisecond).
CALLS_LOG = re.compile(r'^(\S+ \S+),(\d{3}) INFO httpx: HTTP Request: \S+ \S+/(tracks/new|renegotiate) ')


def enter(page: Page, name: str, station: str) -> None:
    """Home → lobby → the station's page, as a person does."""
    open_room(page, ROOM, name)
    page.get_by_test_id(f'join-{station}').click()
    page.wait_for_url(f'**/{ROOM}/{station}')


def wait_ready(hospital: Page, technician: Page) -> None:
    """Both pages in the room and connected, the technician already receiving the hospital's microphone."""
    hospital.get_by_test_id('watching-count').filter(has_text='1 technician watching').wait_for(timeout=20_000)
    toggle(hospital).filter(has_text='Add').wait_for(timeout=20_000)
    hospital.wait_for_function(ACTIONABLE, timeout=20_000)
    hospital.wait_for_function("() => globalThis.orangeMedia.pcs.push?.connectionState === 'connected'", timeout=20_000)
    technician.locator('[data-testid=hospital-audio]').wait_for(state='attached', timeout=20_000)
    technician.wait_for_function(
        "() => globalThis.orangeMedia.pcs.pull?.connectionState === 'connected'"
        " && globalThis.orangeMedia.pcs.pull.signalingState === 'stable'",
        timeout=20_000,
    )
    time.sleep(1.0)  # let the microphone's pull settle: every run starts from the same quiet state


ACTIONABLE = "() => document.querySelector('[data-testid=camera-toggle]')?.classList.contains('q-btn--actionable')"
NO_CAMERA_TILE = f"() => !document.querySelector('{FEED_TILE}')"


def toggle(hospital: Page) -> Any:
    return hospital.get_by_test_id('camera-device').first.get_by_test_id('camera-toggle')


def measure(hospital: Page, technician: Page, app_log: Callable[[], str]) -> dict[str, float]:
    """Click "Add" and wait for the technician's first frame; returns every mark in ms after the click."""
    for page in (hospital, technician):
        page.evaluate('() => { globalThis.benchMarks.length = 0; }')
    toggle(hospital).click()
    technician.wait_for_function(
        "() => globalThis.benchMarks.some(([name]) => name === 'first_frame')", polling=50, timeout=20_000
    )
    marks: dict[str, float] = {}
    for page in (hospital, technician):
        for name, at in page.evaluate('() => globalThis.benchMarks'):
            marks.setdefault(name, at)
    add_sfu_marks(marks, app_log())
    click = marks['click']
    return {name: at - click for name, at in marks.items()}


def add_sfu_marks(marks: dict[str, float], log: str) -> None:
    """The technician's pull (`tracks/new` answered after the push was confirmed) and its `renegotiate`, from the
    app's log (same host clock as the pages, millisecond resolution)."""
    calls = []
    for line in log.splitlines():
        if found := CALLS_LOG.match(line):
            wall = time.mktime(time.strptime(found[1], '%Y-%m-%d %H:%M:%S')) * 1000 + int(found[2])
            calls.append((wall, found[3]))
    after = marks.get('waitSending:end', math.inf) - 1  # the log rounds down to the millisecond
    pull = next((at for at, what in calls if what == 'tracks/new' and at >= after), None)
    if pull is not None:
        marks['sfu:pull'] = pull
    after = marks.get('answerPull:end', math.inf) - 1
    renegotiate = next((at for at, what in calls if what == 'renegotiate' and at >= after), None)
    if renegotiate is not None:
        marks['sfu:renegotiate'] = renegotiate


def remove(hospital: Page, technician: Page, app_log: Callable[[], str]) -> None:
    """Remove the camera with its button; wait until the technician's tile is gone and the button is usable."""
    toggle(hospital).filter(has_text='Remove').wait_for(timeout=20_000)
    hospital.wait_for_function(ACTIONABLE, timeout=20_000)
    toggle(hospital).click()
    technician.wait_for_function(NO_CAMERA_TILE, timeout=20_000)
    toggle(hospital).filter(has_text='Add').wait_for(timeout=20_000)
    try:
        hospital.wait_for_function(ACTIONABLE, timeout=20_000)  # a click while it is busy would be ignored
    except PlaywrightTimeoutError:
        errors = [line for line in app_log().splitlines() if 'Error' in line][-3:]
        raise SystemExit(
            'removing the camera did not finish within 20 s (its "Add" button kept loading); use --between reload.'
            ' The app logged:\n' + '\n'.join(errors)
        ) from None
    time.sleep(0.5)


def leave_and_return(hospital: Page, technician: Page, app_log: Callable[[], str]) -> None:
    """Close the hospital page (the station leaves, its tiles go) and open it again: a fresh station each run."""
    hospital.goto('about:blank')
    technician.wait_for_function(NO_CAMERA_TILE, timeout=30_000)
    technician.locator('[data-testid=hospital-audio]').wait_for(state='detached', timeout=30_000)
    hospital.goto(f'/{ROOM}/hospital')
    wait_ready(hospital, technician)
    hospital.evaluate(HOSPITAL_JS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument(
        '--between',
        choices=('reload', 'remove'),
        default='reload',
        help='between runs: reopen the hospital page (default), or remove the camera with its button',
    )
    args = parser.parse_args()
    reexec_in_loopback_netns('bench.add_camera')
    print(f'network: {network_note()}; load average before: {loadavg()}; between runs: {args.between}')
    app = harness.start_app(Path(tempfile.mkdtemp(prefix='bench-add-camera-')))
    results: list[dict[str, float]] = []
    try:
        with sync_playwright() as p:
            browsers = [
                p.chromium.launch(executable_path=harness.chromium_path(), args=harness.chromium_args(1))
                for _ in range(2)
            ]
            hospital, technician = (browser.new_context(base_url=app.url).new_page() for browser in browsers)
            enter(hospital, 'MRI Suite', 'hospital')
            enter(technician, 'Tech Tom', 'technician')
            wait_ready(hospital, technician)
            hospital.evaluate(HOSPITAL_JS)
            technician.evaluate(TECHNICIAN_JS)
            busy_before = machine_cpu_busy()
            for run in range(1, args.runs + 1):
                if run > 1:
                    (remove if args.between == 'remove' else leave_and_return)(hospital, technician, app.log)
                marks = measure(hospital, technician, app.log)
                results.append(marks)
                steps = ' '.join(f'{marks.get(b, float("nan")) - marks.get(a, float("nan")):.0f}' for _, a, b in STAGES)
                print(f'run {run:2d}: click → first frame {marks["first_frame"]:5.0f} ms  (stages ms: {steps})')
            busy_after = machine_cpu_busy()
            for browser in browsers:
                browser.close()
    finally:
        app.stop()
    totals = [marks['first_frame'] for marks in results]
    busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    print(f'\nclick → first decoded frame on the technician: {summary(totals)} ms')
    print(f'machine busy during the runs: {busy:.0%}; load average after: {loadavg()}')
    print('\nwhere the time goes (ms, p50 / p95 over the runs):')
    for label, a, b in STAGES:
        spans = [marks[b] - marks[a] for marks in results if a in marks and b in marks]
        print(f'  {label:<30} {percentile(spans, 50):6.0f} / {percentile(spans, 95):6.0f}')


if __name__ == '__main__':
    main()
