"""The embedded SFU alone under uvicorn, plus `GET /bench/stats`, as the server process of `bench.sfu_load`.

The app (`app.py`) mounts the same `EmbeddedSFU.asgi_app` at `/sfu/v1` but does not publish `EmbeddedSFU.stats()`
over HTTP; the load benchmark needs the forwarded-packet counter of the process it measures, hence this server.

    .venv/bin/python -m bench.sfu_server --port 8089 --app-id bench --app-secret secret
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from media.sfu import EmbeddedSFU, SfuConfig


def build(app_id: str, app_secret: str) -> Starlette:
    sfu = EmbeddedSFU(SfuConfig(app_id=app_id, app_secret=app_secret, ice_hosts=['127.0.0.1'], ice_servers=[]))

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse({'pid': os.getpid(), **sfu.stats()})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await sfu.close()

    return Starlette(routes=[Route('/bench/stats', stats), Mount('/sfu/v1', sfu.asgi_app)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--app-id', required=True)
    parser.add_argument('--app-secret', required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build(args.app_id, args.app_secret)
    uvicorn.run(app, host='127.0.0.1', port=args.port, log_level='warning', access_log=False)


if __name__ == '__main__':
    main()
