"""The app as a subprocess on a loopback port, for end-to-end tests, benchmarks and the demo: start, wait, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
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
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 40.0,
    *,
    port: int | None = None,
    scrubbed_prefixes: tuple[str, ...] = (),
) -> RunningApp:
    """Start `app.py` with a clean environment in `workdir` (so no `.env`/`.dev.vars` is read) and wait for /healthz.

    The app's storage (display names, remembered setups, the storage secret) lives in `workdir/.nicegui`. Variables
    starting with one of `scrubbed_prefixes` are not passed on from this process either (the demo drops every
    setting of the developer's shell)."""
    port = port or free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith(('NICEGUI_', *scrubbed_prefixes))
    }
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
