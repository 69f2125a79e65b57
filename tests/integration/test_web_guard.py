"""Security headers on every response; the SFU's Calls API without cookies and only for whom SFU_API allows."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from pages.web_guard import WebGuard


def page(request: Request) -> PlainTextResponse:
    request.session['id'] = 'browser'  # as NiceGUI's request tracking does for every request
    return PlainTextResponse('page')


def sfu_route(request: Request) -> JSONResponse:
    return JSONResponse({'path': request.url.path, 'route': request.scope['route'].path})


SFU = Starlette(routes=[Route('/apps/{app_id}/sessions/new', sfu_route, methods=['POST'])])


def guarded(access: str) -> Starlette:
    return Starlette(
        routes=[Route('/{room}/hospital', page)],
        middleware=[
            Middleware(WebGuard, sfu_app=SFU, sfu_access=access),
            Middleware(SessionMiddleware, secret_key='k' * 32),
        ],
    )


def client(app: Starlette, address: str = '127.0.0.1') -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 50000)), base_url='http://app')


async def test_pages_cannot_be_framed_and_keep_their_session_cookie() -> None:
    async with client(guarded('loopback')) as http:
        response = await http.get('/ward-11/hospital')
    assert response.headers['x-frame-options'] == 'DENY'
    assert "frame-ancestors 'none'" in response.headers['content-security-policy']
    assert response.headers['x-content-type-options'] == 'nosniff'
    assert response.headers['referrer-policy'] == 'no-referrer'
    assert 'set-cookie' in response.headers  # the page's own session still works


async def test_the_sfu_api_answers_without_a_cookie_on_loopback() -> None:
    async with client(guarded('loopback')) as http:
        response = await http.post('/sfu/v1/apps/abc/sessions/new')
    assert response.status_code == 200
    assert response.json()['route'] == '/apps/{app_id}/sessions/new'
    assert 'set-cookie' not in response.headers
    assert 'cookie' not in response.headers.get('vary', '').lower()


@pytest.mark.parametrize(
    ('access', 'address', 'status'),
    [
        ('loopback', '10.1.2.3', 403),
        ('loopback', '::1', 200),
        ('public', '10.1.2.3', 200),
        ('off', '127.0.0.1', 404),
    ],
)
async def test_sfu_api_access(access: str, address: str, status: int) -> None:
    async with client(guarded(access), address) as http:
        response = await http.post('/sfu/v1/apps/abc/sessions/new')
    assert response.status_code == status
    if status != 200:
        assert response.json()['errorCode'] in {'forbidden', 'not_found'}


def unauthorised(request: Request) -> JSONResponse:
    return JSONResponse({'errorCode': 'unauthorized'}, status_code=401)


async def test_wrong_secrets_and_floods_are_throttled_per_address() -> None:
    sfu = Starlette(routes=[Route('/apps/{app_id}/sessions/new', unauthorised, methods=['POST'])])
    app = Starlette(middleware=[Middleware(WebGuard, sfu_app=sfu, sfu_access='public')])
    async with client(app, '10.9.9.9') as attacker, client(app, '10.1.1.1') as other:
        statuses = [(await attacker.post('/sfu/v1/apps/a/sessions/new')).status_code for _ in range(30)]
        assert statuses[:10] == [401] * 10
        assert set(statuses[12:]) == {429}
        assert (await other.post('/sfu/v1/apps/a/sessions/new')).status_code == 401  # others are not affected
    async with client(guarded('public'), '10.2.2.2') as flooder:
        statuses = [(await flooder.post('/sfu/v1/apps/a/sessions/new')).status_code for _ in range(150)]
    assert statuses.count(200) >= 100 and statuses[-1] == 429
