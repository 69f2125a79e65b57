"""The running app and the browser, for end-to-end tests: start, wait, and read what the user sees."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
# Variables that must never leak from the developer's shell into the app under test.
SCRUBBED = (
    'PYTEST_CURRENT_TEST',
    'CALLS_APP_ID',
    'CALLS_APP_SECRET',
    'CALLS_API_URL',
    'TURN_SERVICE_ID',
    'TURN_SERVICE_TOKEN',
    'SFU_ICE_HOSTS',
    'SFU_SIMULATE_LOSS',
    'ICE_SERVERS',
    'HOST',
    'PORT',
    'TLS_CERTFILE',
    'TLS_KEYFILE',
)
CHROMIUM_FLAGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    # WebRTC may only use loopback: no LAN address is ever offered as a candidate.
    '--force-webrtc-ip-handling-policy=default_public_interface_only',
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


@dataclass(kw_only=True)
class RunningApp:
    """The app started as a subprocess on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_app(
    workdir: Path, extra_env: dict[str, str] | None = None, timeout: float = 40.0, *, port: int | None = None
) -> RunningApp:
    """Start `app.py` with a clean environment in `workdir` (so no `.env`/`.dev.vars` is read) and wait for /healthz.

    The app's storage (display names, remembered setups, the storage secret) lives in `workdir/.nicegui`."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith('NICEGUI_')}
    env.update(
        {
            'HOST': '127.0.0.1',
            'PORT': str(port),
            'SFU_ICE_HOSTS': '127.0.0.1',
            'ICE_SERVERS': '',
            'NICEGUI_STORAGE_PATH': str(workdir / '.nicegui'),
            'PYTHONUNBUFFERED': '1',
            # Pages opened directly, as the original allowed; tests of invites and the waiting room pass 'invite'.
            'ROOM_ACCESS': 'open',
        }
    )
    env.update(extra_env or {})
    log_path = workdir / 'app.log'
    with log_path.open('ab') as log_file:  # appended: a restarted app keeps the earlier run's lines
        process = subprocess.Popen(
            [sys.executable, str(ROOT / 'app.py')], cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    app = RunningApp(process=process, port=port, log_path=log_path, workdir=workdir, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'app exited with {process.returncode}:\n{app.log()}')
        try:
            if httpx.get(f'{app.url}/healthz', timeout=1).status_code == 200:
                return app
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    app.stop()
    raise RuntimeError(f'app did not answer /healthz within {timeout} s:\n{app.log()}')


def restart_app(app: RunningApp, timeout: float = 40.0) -> RunningApp:
    """Stop `app` (as an upgrade would) and start it again on the same port, storage and environment."""
    app.stop()
    return start_app(app.workdir, app.env, timeout, port=app.port)


def chromium_path() -> str:
    path = os.environ.get('CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
    if not path:
        raise RuntimeError("Chromium not found: install Debian's chromium (scripts/test does it when run as root)")
    return path


def chromium_args(device_count: int = 1, *, auto_accept: bool = True, fake_screen: bool = True) -> list[str]:
    """Flags for Chromium with `device_count` fake cameras (each a distinct image) and a fake microphone."""
    args = [f for f in CHROMIUM_FLAGS if f != '--use-fake-device-for-media-stream']
    args.append(f'--use-fake-device-for-media-stream=device-count={device_count}')
    if auto_accept:
        args.append('--use-fake-ui-for-media-stream')
    else:
        args.append('--deny-permission-prompts')
    if fake_screen:
        args += ['--auto-select-desktop-capture-source=Entire screen', '--enable-usermedia-screen-capturing']
    return args


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
