"""The embedded SFU in its own process (``SFU_PROCESS=separate``): the app talks to it over loopback HTTP with the
same ``CallsClient``, and media never touches the app's event loop.

    python -m media.sfu.process --port 8091      # configuration from the environment (see ``config_from_env``)

The child serves ``/sfu/v1`` (the Calls API) and ``/healthz`` on 127.0.0.1 only, and exits when its parent closes
the pipe on its stdin (the parent exiting, however it exits): no polling, nothing wakes an idle SFU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

ENV_PREFIX = 'SFU_CHILD_'
SERVER_KEEPALIVE_S = 60  # the child keeps an idle HTTP connection this long
KEEPALIVE_EXPIRY_S = 20  # the app drops it well before


def child_env(
    *,
    app_id: str,
    app_secret: str,
    ice_hosts: list[str],
    ice_servers: list[dict[str, Any]],
    media_timeout_s: float,
    simulate_loss: float,
) -> dict[str, str]:
    """The child's configuration as environment variables (never on its command line: the secret stays private)."""
    return {
        ENV_PREFIX + 'APP_ID': app_id,
        ENV_PREFIX + 'APP_SECRET': app_secret,
        ENV_PREFIX + 'ICE_HOSTS': json.dumps(ice_hosts),
        ENV_PREFIX + 'ICE_SERVERS': json.dumps(ice_servers),
        ENV_PREFIX + 'MEDIA_TIMEOUT': str(media_timeout_s),
        ENV_PREFIX + 'SIMULATE_LOSS': str(simulate_loss),
    }


def config_from_env(env: dict[str, str]) -> Any:
    from aiortc import RTCIceServer

    from media.sfu import SfuConfig

    servers = json.loads(env.get(ENV_PREFIX + 'ICE_SERVERS', '[]'))
    return SfuConfig(
        app_id=env[ENV_PREFIX + 'APP_ID'],
        app_secret=env[ENV_PREFIX + 'APP_SECRET'],
        ice_hosts=json.loads(env.get(ENV_PREFIX + 'ICE_HOSTS', '["127.0.0.1"]')),
        ice_servers=[
            RTCIceServer(urls=s['urls'], username=s.get('username'), credential=s.get('credential')) for s in servers
        ],
        media_timeout_s=float(env.get(ENV_PREFIX + 'MEDIA_TIMEOUT', '30')),
        simulate_loss=float(env.get(ENV_PREFIX + 'SIMULATE_LOSS', '0')),
    )


@dataclass
class SfuProcess:
    """A running child SFU and the loopback HTTP client that reaches its Calls API."""

    process: subprocess.Popen[bytes]
    port: int
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        # idle connections are dropped by the client well before the child's keep-alive timeout: a request on a
        # connection the server is closing at that moment fails with ReadError
        self.http = httpx.AsyncClient(
            base_url=f'http://127.0.0.1:{self.port}/sfu/v1',
            timeout=30,
            limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'the SFU process exited with {self.process.returncode}')
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f'http://127.0.0.1:{self.port}/healthz', timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f'the SFU process did not answer within {timeout} s')

    async def close(self) -> None:
        await self.http.aclose()
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()  # the child's signal to close its peer connections and exit
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(env: dict[str, str], port: int | None = None) -> SfuProcess:
    """Start the child on ``port`` (a free one by default) and wait until it answers."""
    if port is None:
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, '-m', 'media.sfu.process', '--port', str(port)],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
    )
    child = SfuProcess(process, port)
    child.wait_ready()
    return child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=os.environ.get('LOG_LEVEL', 'INFO'), format='%(levelname)s sfu: %(message)s')
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from media.sfu import EmbeddedSFU

    sfu = EmbeddedSFU(config_from_env(dict(os.environ)))
    server: uvicorn.Server | None = None

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({'ok': True, 'pid': os.getpid()})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def parent_gone() -> None:
            loop.remove_reader(sys.stdin.fileno())
            if server is not None:
                server.should_exit = True

        if not sys.stdin.closed and not sys.stdin.isatty():
            loop.add_reader(sys.stdin.fileno(), lambda: None if os.read(sys.stdin.fileno(), 512) else parent_gone())
        yield
        await sfu.close()

    app = Starlette(routes=[Route('/healthz', healthz), Mount('/sfu/v1', sfu.asgi_app)], lifespan=lifespan)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host='127.0.0.1',
            port=args.port,
            log_level='warning',
            access_log=False,
            timeout_keep_alive=SERVER_KEEPALIVE_S,
        )
    )
    server.run()


if __name__ == '__main__':
    main()
