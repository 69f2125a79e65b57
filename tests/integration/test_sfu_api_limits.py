"""The SFU's Calls API refuses oversized and pathological bodies with a Calls error, never a 500 (issue #10)."""

from __future__ import annotations

import json

import httpx
import pytest

from media.sfu import api
from tests.integration.conftest import APP_ID, APP_SECRET

AUTH = {'authorization': f'Bearer {APP_SECRET}'}
BASE = f'/apps/{APP_ID}/sessions'


async def new_session(http: httpx.AsyncClient) -> str:
    response = await http.post(f'{BASE}/new', headers=AUTH)
    assert response.status_code == 201
    return str(response.json()['sessionId'])


async def test_deeply_nested_json_is_a_decoding_error(http: httpx.AsyncClient) -> None:
    sid = await new_session(http)
    response = await http.post(f'{BASE}/{sid}/tracks/new', headers=AUTH, content=b'[' * 50_000)
    assert response.status_code == 400
    assert response.json()['errorCode'] == 'decoding_error'


async def test_an_oversized_body_is_413_payload_too_large(http: httpx.AsyncClient) -> None:
    sid = await new_session(http)
    body = json.dumps({'sessionDescription': {'type': 'offer', 'sdp': 'v=0\r\n' + 'x' * 10_000_000}})
    response = await http.post(f'{BASE}/{sid}/tracks/new', headers=AUTH, content=body)
    assert response.status_code == 413
    assert response.json()['errorCode'] == 'payload_too_large'
    big_id = json.dumps({'tracks': [{'location': 'remote', 'sessionId': 'a' * 10_000_000, 'trackName': 'v'}]})
    response = await http.post(f'{BASE}/{sid}/tracks/new', headers=AUTH, content=big_id)
    assert response.status_code == 413


async def test_item_lists_are_capped(http: httpx.AsyncClient) -> None:
    sid = await new_session(http)
    close = {'tracks': [{'mid': str(i)} for i in range(1_000)], 'force': True}
    response = await http.put(f'{BASE}/{sid}/tracks/close', headers=AUTH, json=close)
    assert response.status_code == 400
    assert response.json()['errorCode'] == 'invalid_params'
    update = {'tracks': [{'location': 'remote', 'mid': str(i), 'trackName': 'v'} for i in range(1_000)]}
    response = await http.put(f'{BASE}/{sid}/tracks/update', headers=AUTH, json=update)
    assert response.status_code == 400
    # the session is still there and answers
    assert (await http.get(f'{BASE}/{sid}', headers=AUTH)).status_code == 200


async def test_a_body_is_not_read_before_the_credentials_are_checked(http: httpx.AsyncClient) -> None:
    response = await http.post(f'{BASE}/new', headers={'authorization': 'Bearer wrong'}, content=b'[' * 300_000)
    assert response.status_code == 401


async def test_sessions_are_capped_with_429(http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, 'MAX_SESSIONS', 3)
    ids = [await new_session(http) for _ in range(3)]
    response = await http.post(f'{BASE}/new', headers=AUTH)
    assert response.status_code == 429
    assert response.json()['errorDescription'].startswith('This SFU holds its maximum')
    assert (await http.get(f'{BASE}/{ids[0]}', headers=AUTH)).status_code == 200  # existing sessions unaffected


async def test_an_unknown_address_or_method_gets_a_calls_error(http: httpx.AsyncClient) -> None:
    for method, path in (('GET', f'{BASE}/./tracks/new'), ('GET', '/nothing/here'), ('DELETE', f'{BASE}/new')):
        response = await http.request(method, path, headers=AUTH)
        assert response.status_code in (404, 405), (method, path)
        assert response.json()['errorCode'], (method, path)
