"""The outermost layer of every HTTP response: security headers, and the embedded SFU's Calls API kept apart.

- Every page and file gets headers that stop another site from framing it (clickjacking a camera page),
  sniffing content types or reading room addresses from the Referer; the CSP allows what NiceGUI needs (inline
  scripts, Vue's runtime template compiler, its websocket, media from blob:/mediastream:) and nothing from other
  origins.
- Requests to ``/sfu/v1`` go straight to the SFU's ASGI app, outside NiceGUI's session middleware: a Calls API
  response carries no cookie (Cloudflare sets none) and an API client never creates per-browser storage.
  ``SFU_API`` decides who may call it: ``off`` (404), ``loopback`` (default; 403 for any other address; the app
  itself reaches the SFU in-process either way), ``public``. Each client address gets a token bucket (429 past
  it), and one that keeps presenting a wrong secret is throttled (429) before its credentials are even looked at.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any, Literal

from nicegui import core
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rooms.limits import BucketMap

SfuAccess = Literal['off', 'loopback', 'public']
SFU_PREFIX = '/sfu/v1'
# Per client address: a Calls client makes a handful of requests per track change; 401s allow a few typos.
SFU_REQUESTS_PER_S, SFU_REQUEST_BURST = 20.0, 100.0
SFU_AUTH_FAILURES_PER_S, SFU_AUTH_FAILURE_BURST = 0.2, 10.0

CSP = '; '.join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",  # NiceGUI: inline bootstrap, Vue template compiler
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "font-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b'x-frame-options', b'DENY'),
    (b'content-security-policy', CSP.encode()),
    (b'x-content-type-options', b'nosniff'),
    (b'referrer-policy', b'no-referrer'),  # a room's address never leaks to another site
]


class WebGuard:
    """ASGI middleware; add it last so that it wraps everything, NiceGUI's session middleware included."""

    def __init__(self, app: ASGIApp, *, sfu_app: ASGIApp | None = None, sfu_access: SfuAccess = 'loopback') -> None:
        self.app = app
        self.sfu_app = sfu_app
        self.sfu_access = sfu_access
        self.requests = BucketMap(rate=SFU_REQUESTS_PER_S, burst=SFU_REQUEST_BURST)
        self.auth_failures = BucketMap(rate=SFU_AUTH_FAILURES_PER_S, burst=SFU_AUTH_FAILURE_BURST)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        path: str = scope.get('path', '')
        if path == SFU_PREFIX or path.startswith(SFU_PREFIX + '/'):
            await self._sfu(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message['type'] == 'http.response.start':
                names = {name.lower() for name, _ in message.get('headers', [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in names]
                message = {**message, 'headers': [*message.get('headers', []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _sfu(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.sfu_app is None or self.sfu_access == 'off':
            await _error(send, 404, 'not_found', 'Not found')
            return
        if self.sfu_access == 'loopback' and not _is_loopback(scope.get('client')):
            await _error(send, 403, 'forbidden', 'The SFU API only answers on this machine (SFU_API=loopback)')
            return
        address = str((scope.get('client') or ('?',))[0])
        now = time.monotonic()
        if not self.auth_failures.available(address, now):
            await _error(send, 429, 'too_many_requests', 'Too many failed authentications; try again later')
            return
        if not self.requests.take(address, now):
            await _error(send, 429, 'too_many_requests', 'Too many requests; slow down')
            return

        async def watch_auth(message: Message) -> None:
            if message['type'] == 'http.response.start' and message['status'] == 401:
                self.auth_failures.take(address, time.monotonic())
            await send(message)

        child = {**scope, 'root_path': scope.get('root_path', '') + SFU_PREFIX}
        await self.sfu_app(child, receive, watch_auth)


def restrict_socket_origin() -> None:
    """NiceGUI's socket.io server accepts any Origin ('*'): a page on another site could open a socket as a visitor's
    browser. With None, engine.io accepts only the app's own origin (scheme and Host, or X-Forwarded-* behind a
    proxy); requests without an Origin (not from a browser) are unaffected."""
    core.sio.eio.cors_allowed_origins = None


def _is_loopback(client: Any) -> bool:
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False


async def _error(send: Send, status: int, code: str, description: str) -> None:
    body = json.dumps({'errorCode': code, 'errorDescription': description}).encode()
    headers = [(b'content-type', b'application/json'), (b'content-length', str(len(body)).encode())]
    await send({'type': 'http.response.start', 'status': status, 'headers': headers})
    await send({'type': 'http.response.body', 'body': body})
