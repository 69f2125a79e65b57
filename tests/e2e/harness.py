"""The running app and the browser, for end-to-end tests: start, wait, and read what the user sees.

Starting the app and Chromium lives in `localrun` (shared with bench/ and demo/); it is re-exported here."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Page

from localrun.app import ROOT, SCRUBBED, RunningApp, free_port, restart_app, start_app
from localrun.chromium import CHROMIUM_FLAGS, chromium_args, chromium_path

__all__ = [
    'CHROMIUM_FLAGS',
    'ROOT',
    'SCRUBBED',
    'RunningApp',
    'chromium_args',
    'chromium_path',
    'free_port',
    'restart_app',
    'start_app',
    'video_state',
    'wait_video_playing',
]


# ---- what the user sees: JavaScript probes run in the page -----------------------------------------------------

VIDEO_FRAMES_JS = """
(el) => new Promise((resolve) => {
    const q = () => (el.getVideoPlaybackQuality ? el.getVideoPlaybackQuality().totalVideoFrames : 0);
    const start = q();
    setTimeout(() => resolve({width: el.videoWidth, height: el.videoHeight, frames: q() - start,
                              paused: el.paused, readyState: el.readyState}), 600);
})
"""


def video_state(page: Page, selector: str) -> dict[str, Any]:
    """Width, height and frames rendered during 0.6 s by the first `<video>` matching `selector`."""
    return dict(page.locator(selector).first.evaluate(VIDEO_FRAMES_JS))


def wait_video_playing(page: Page, selector: str, timeout: float = 10.0) -> dict[str, Any]:
    """Wait until the video has a size and new frames keep arriving; returns the last state."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            state = video_state(page, selector)
        except Exception as error:  # element not there yet
            state = {'error': str(error)}
        if state.get('width', 0) > 0 and state.get('frames', 0) > 0:
            return state
        time.sleep(0.2)
    raise AssertionError(f'video {selector} is not playing after {timeout} s: {state}')
