"""Per-tile connection quality and the "Unstable connection" toast, with real packet loss from the embedded SFU."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.harness import RunningApp, start_app

LOSS = '0.12'  # well above the 6 % where the score turns "poor", so the level and the toast never hover at a threshold


@pytest.fixture(scope='module')
def lossy_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app with SFU_SIMULATE_LOSS: every viewer loses 12 % of what the SFU forwards."""
    running = start_app(tmp_path_factory.mktemp('lossy'), {'SFU_SIMULATE_LOSS': LOSS})
    yield running
    running.stop()


def two_in_a_room(launch: Callable[..., Browser], app: RunningApp, room: str) -> tuple[Page, Page]:
    """Alice and Bob (two browser profiles of one Chromium) in meeting room `room`."""
    browser = launch()
    pages = []
    for name in ('Alice', 'Bob'):
        context = browser.new_context(base_url=app.url, viewport={'width': 1280, 'height': 800})
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto('/')
        page.get_by_test_id('display-name').fill(name)
        page.get_by_test_id('room-name').fill(room)
        page.get_by_test_id('join-room').click()
        page.get_by_test_id('join-meeting').click()
        page.wait_for_url(f'**/{room}/room')
        pages.append(page)
    return pages[0], pages[1]


def test_loss_shows_on_the_remote_tile_and_as_a_toast(launch, lossy_app) -> None:  # type: ignore[no-untyped-def]
    alice, bob = two_in_a_room(launch, lossy_app, 'quality-lossy')
    for page, other in ((alice, 'Bob'), (bob, 'Alice')):
        indicator = page.locator('[data-testid=tile]', has_text=other).get_by_test_id('tile-quality')
        expect(indicator).to_have_attribute('data-level', re.compile('^(good|poor)$'), timeout=20_000)
        title = re.compile(r'^Connection: (good|poor) \(score \d+\), loss \d+\.\d %$')
        expect(indicator).to_have_attribute('title', title)
    # Each page's own inbound loss stays above 5 % for 5 s: the toast, with nothing technical in it.
    toast = alice.get_by_text('Unstable connection — call quality may be affected.')
    expect(toast).to_be_visible(timeout=20_000)
    # Nobody measures loss on what they send themselves: the self tile has no indicator.
    expect(alice.locator('[data-testid=tile]', has_text='Alice (you)').get_by_test_id('tile-quality')).to_have_count(0)
    assert 'connection degraded' in lossy_app.log()
    ARTIFACTS.mkdir(exist_ok=True)
    alice.wait_for_timeout(500)  # the toast's entry animation
    alice.screenshot(path=str(ARTIFACTS / 'connection-quality-lossy.png'))  # what SFU_SIMULATE_LOSS looks like


def test_without_loss_the_indicator_is_excellent_and_there_is_no_toast(launch, app_server) -> None:  # type: ignore[no-untyped-def]
    alice, _ = two_in_a_room(launch, app_server, 'quality-clean')
    tile = alice.locator('[data-testid=tile]', has_text='Bob')
    expect(tile).to_have_attribute('data-playing', 'true', timeout=15_000)
    indicator = tile.get_by_test_id('tile-quality')
    expect(indicator).to_have_attribute('data-level', 'excellent', timeout=10_000)
    expect(indicator).to_have_attribute('title', re.compile(r'^Connection: excellent \(score \d+\), loss [01]\.\d %$'))
    alice.wait_for_timeout(6_000)  # longer than the toast's 5 s hold
    expect(indicator).to_have_attribute('data-level', 'excellent')
    expect(alice.get_by_text('Unstable connection')).to_have_count(0)
