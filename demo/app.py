"""The app for the demo: `app.py` as a subprocess on a free loopback port, with the embedded SFU, invite-only rooms
and its own storage, audit trail and secrets in a temporary folder (nothing of the developer's setup is read)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# The developer's shell must not turn the demo into something else (Cloudflare, another port, TLS, loss).
SCRUBBED_PREFIXES = ('CALLS_', 'TURN_', 'SFU_', 'NICEGUI_', 'TLS_', 'AUDIT_', 'INVITE_', 'ROOM_')
SCRUBBED = {'PYTEST_CURRENT_TEST', 'ICE_SERVERS', 'HOST', 'PORT', 'STORAGE_SECRET'}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


@dataclass(kw_only=True)
class DemoApp:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_app(workdir: Path, timeout: float = 60.0) -> DemoApp:
    """Start the app in `workdir` (ROOM_ACCESS=invite, embedded SFU on 127.0.0.1) and wait for /healthz."""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in SCRUBBED and not any(k.startswith(p) for p in SCRUBBED_PREFIXES)
    }
    env.update(
        {
            'HOST': '127.0.0.1',
            'PORT': str(port),
            'SFU_ICE_HOSTS': '127.0.0.1',
            'ICE_SERVERS': '',
            'ROOM_ACCESS': 'invite',
            'INVITE_SECRET': secrets.token_urlsafe(32),
            'NICEGUI_STORAGE_PATH': str(workdir / '.nicegui'),
            'AUDIT_DB': str(workdir / 'audit.db'),
            'PYTHONUNBUFFERED': '1',
        }
    )
    log_path = workdir / 'app.log'
    with log_path.open('ab') as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / 'app.py')], cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    app = DemoApp(process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'the app exited with {process.returncode}:\n{log_path.read_text(errors="replace")}')
        try:
            if httpx.get(f'{app.url}/healthz', timeout=1).status_code == 200:
                return app
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    app.stop()
    raise RuntimeError(f'the app did not answer within {timeout} s:\n{log_path.read_text(errors="replace")}')
