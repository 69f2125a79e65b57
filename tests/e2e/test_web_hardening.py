"""The running app: pages cannot be framed, the socket only talks to its own origin, the SFU API sets no cookie."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import SFU_APP_ID, SFU_APP_SECRET
from tests.e2e.harness import RunningApp

SOCKET = '/_nicegui_ws/socket.io/?EIO=4&transport=polling'


def test_pages_carry_anti_framing_headers(app_server: RunningApp) -> None:
    for path in ('/', '/some-room', '/some-room/technician', '/healthz'):
        response = httpx.get(app_server.url + path)
        assert response.headers['x-frame-options'] == 'DENY', path
        assert "frame-ancestors 'none'" in response.headers['content-security-policy'], path


def test_the_socket_refuses_other_origins(app_server: RunningApp) -> None:
    assert httpx.get(app_server.url + SOCKET, headers={'Origin': 'https://evil.example'}).status_code == 400
    assert httpx.get(app_server.url + SOCKET, headers={'Origin': app_server.url}).status_code == 200


def test_the_sfu_api_sets_no_cookie(app_server: RunningApp) -> None:
    response = httpx.post(
        f'{app_server.url}/sfu/v1/apps/{SFU_APP_ID}/sessions/new',
        headers={'authorization': f'Bearer {SFU_APP_SECRET}'},
    )
    assert response.status_code == 201
    assert 'set-cookie' not in response.headers
    assert 'cookie' not in response.headers.get('vary', '').lower()
