"""No secret ever reaches a browser, and the Calls path (CALLS_API_URL) works against another instance's SFU."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

from tests.e2e.harness import RunningApp, start_app
from tests.e2e.media_probe import wait_media_flowing

SFU_SECRET = 'dummy-sfu-secret-41be20'  # A's SFU_APP_SECRET, and B's CALLS_APP_SECRET
OTHER_SFU_SECRET = 'dummy-unused-sfu-secret-9d0c'  # B's own (unused) embedded SFU secret
SECRETS = (SFU_SECRET, OTHER_SFU_SECRET)


@pytest.fixture(scope='module')
def two_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, RunningApp]]:
    """App A serves its embedded SFU; app B uses it as "Cloudflare" through CALLS_API_URL."""
    sfu_host = start_app(tmp_path_factory.mktemp('sfu-host'), {'SFU_APP_ID': 'sharedapp', 'SFU_APP_SECRET': SFU_SECRET})
    try:
        calls_user = start_app(
            tmp_path_factory.mktemp('calls-user'),
            {
                'CALLS_APP_ID': 'sharedapp',
                'CALLS_APP_SECRET': SFU_SECRET,
                'CALLS_API_URL': f'{sfu_host.url}/sfu/v1',
                'SFU_APP_SECRET': OTHER_SFU_SECRET,
            },
        )
    except Exception:
        sfu_host.stop()
        raise
    yield sfu_host, calls_user
    calls_user.stop()
    sfu_host.stop()


def capture(page: Page, seen: list[str]) -> None:
    def on_response(response) -> None:  # type: ignore[no-untyped-def]
        try:
            seen.append(response.text())
        except Exception:  # redirects and aborted requests have no body
            pass

    def on_websocket(ws) -> None:  # type: ignore[no-untyped-def]
        ws.on('framereceived', lambda payload: seen.append(str(payload)))
        ws.on('framesent', lambda payload: seen.append(str(payload)))

    page.on('response', on_response)
    page.on('websocket', on_websocket)


def test_no_secret_reaches_the_browser(launch, two_apps) -> None:  # type: ignore[no-untyped-def]
    _, app = two_apps
    assert httpx.get(f'{app.url}/healthz').json()['media'] == 'cloudflare'
    seen: list[str] = []
    pages = []
    for name in ('Ann', 'Ben'):
        page = launch(1).new_context(base_url=app.url).new_page()
        capture(page, seen)
        page.goto('/')
        page.get_by_test_id('display-name').fill(name)
        page.get_by_test_id('room-name').fill('secret-check')
        page.get_by_test_id('join-room').click()
        page.get_by_test_id('room-title').wait_for()
        page.goto('/secret-check/room')
        pages.append(page)
    # Media really flows through the other instance's SFU, negotiated by app B with the Calls secret.
    wait_media_flowing(pages[0], video=1, audio=1, timeout=15)
    wait_media_flowing(pages[1], video=1, audio=1, timeout=15)
    assert len(seen) > 20, 'capture saw too little traffic to mean anything'
    for text in seen:
        for secret in SECRETS:
            assert secret not in text
    # Nor in either app's log (configured secrets are never printed; only a random per-run SFU secret is).
    for running in two_apps:
        log = Path(running.log_path).read_text()
        for secret in SECRETS:
            assert secret not in log
