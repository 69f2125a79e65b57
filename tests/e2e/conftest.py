"""Fixtures for browser tests: the app as a subprocess and Debian's Chromium with fake devices."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.e2e.harness import ROOT, RunningApp, chromium_args, chromium_path, start_app

SFU_APP_ID = 'e2eapp'
SFU_APP_SECRET = 'e2e-sfu-secret-3f9c1a7b2d4e6'
ARTIFACTS = ROOT / 'test-results'
SCREENSHOTS = ROOT / 'docs' / 'screenshots'


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f'rep_{report.when}', report)


@pytest.fixture(scope='session')
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """One app for the whole session (tests use their own room names)."""
    running = start_app(tmp_path_factory.mktemp('app'), {'SFU_APP_ID': SFU_APP_ID, 'SFU_APP_SECRET': SFU_APP_SECRET})
    yield running
    running.stop()


@pytest.fixture(scope='module')
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture
def launch(playwright: Playwright, request: pytest.FixtureRequest) -> Iterator[Callable[..., Browser]]:
    """`launch(device_count=N, auto_accept=True)` starts a Chromium; every page of it is screenshotted on failure."""
    browsers: list[Browser] = []

    def _launch(device_count: int = 1, *, auto_accept: bool = True, audio: bool = False) -> Browser:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            args=chromium_args(device_count, auto_accept=auto_accept),
            ignore_default_args=['--mute-audio'] if audio else None,
        )
        browsers.append(browser)
        return browser

    yield _launch
    failed = getattr(request.node, 'rep_call', None) is not None and request.node.rep_call.failed
    for index, browser in enumerate(browsers):
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for context in browser.contexts:
                for number, page in enumerate(context.pages):
                    path = ARTIFACTS / f'{request.node.name}-{index}-{number}.png'
                    try:
                        page.screenshot(path=str(path), full_page=True)
                    except Exception:  # a crashed page cannot be captured; the test report has the error
                        pass
        browser.close()


@pytest.fixture
def new_page(launch: Callable[..., Browser], app_server: RunningApp) -> Callable[..., Page]:
    """`new_page(device_count=1, auto_accept=True)`: a fresh browser profile on the running app."""

    def _new_page(device_count: int = 1, *, auto_accept: bool = True, audio: bool = False) -> Page:
        browser = launch(device_count, auto_accept=auto_accept, audio=audio)
        context = browser.new_context(base_url=app_server.url, viewport={'width': 1280, 'height': 800})
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    return _new_page


def save_screenshot(page: Page, name: str) -> Path:
    """Keep a screenshot for the README (docs/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f'{name}.png'
    page.screenshot(path=str(path))
    return path
