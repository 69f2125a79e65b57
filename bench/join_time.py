"""Join time: from opening the meeting-room page to each side's first decoded frame of the other.

Usage: .venv/bin/python -m bench.join_time [--runs 10]

Starts the app (embedded SFU, loopback only) and two Chromium browsers with fake devices. For each run, page A is
already in the room; the clock starts when page B is asked to open `/{room}/room` and stops when B's tile of A,
and A's tile of B, show their first decoded frame (`requestVideoFrameCallback`, `data-playing=true`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from tests.e2e.harness import chromium_args, chromium_path, start_app

OTHER_PLAYING = (
    "() => [...document.querySelectorAll('[data-testid=tile][data-playing=true]')]"
    ".some((tile) => !tile.textContent.includes('(you)'))"
)


def open_room(page: Page, room: str, name: str) -> None:
    page.goto('/')
    page.get_by_test_id('display-name').fill(name)
    page.get_by_test_id('room-name').fill(room)
    page.get_by_test_id('join-room').click()
    page.get_by_test_id('room-title').wait_for()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--runs', type=int, default=10)
    args = parser.parse_args()
    app = start_app(Path(tempfile.mkdtemp(prefix='bench-join-')))
    b_sees_a: list[float] = []
    a_sees_b: list[float] = []
    try:
        with sync_playwright() as p:
            browsers = [p.chromium.launch(executable_path=chromium_path(), args=chromium_args(1)) for _ in range(2)]
            for run in range(args.runs):
                room = f'bench-join-{run}'
                a, b = (br.new_context(base_url=app.url).new_page() for br in browsers)
                open_room(a, room, 'Alice')
                open_room(b, room, 'Bob')
                a.goto(f'/{room}/room')
                a.wait_for_selector('[data-testid=tile]:has-text("Alice (you)")[data-playing=true]', timeout=20_000)
                started = time.monotonic()
                b.goto(f'/{room}/room')
                b.wait_for_function(OTHER_PLAYING, polling='raf', timeout=20_000)
                b_sees_a.append((time.monotonic() - started) * 1000)
                a.wait_for_function(OTHER_PLAYING, polling='raf', timeout=20_000)
                a_sees_b.append((time.monotonic() - started) * 1000)
                a.context.close()
                b.context.close()
                time.sleep(0.5)
            for browser in browsers:
                browser.close()
    finally:
        app.stop()
    for label, values in (('joiner sees the one already there', b_sees_a), ('the one there sees the joiner', a_sees_b)):
        print(
            f'{label}: p50 {statistics.median(values):.0f} ms, p95 {percentile(values, 95):.0f} ms, '
            f'min {min(values):.0f} ms, max {max(values):.0f} ms over {len(values)} runs'
        )


if __name__ == '__main__':
    main()
