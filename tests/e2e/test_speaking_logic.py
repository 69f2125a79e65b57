"""The pure voice-activity detector (components/js/speaking.js), run inside Chromium with injected timestamps."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.harness import chromium_args, chromium_path


@pytest.fixture(scope='module')
def detect(playwright, app_server):  # type: ignore[no-untyped-def]
    """`detect([(ms, level), ...])` feeds a fresh SpeakingDetector and returns `speaking` after each sample."""
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=chromium_args())
    page: Page = browser.new_page()
    page.goto(f'{app_server.url}/')

    def run(samples: list[tuple[float, float]]) -> Any:
        return page.evaluate(
            """async (samples) => {
                const { SpeakingDetector } = await import('orange-media/speaking.js');
                const detector = new SpeakingDetector();
                return samples.map(([ms, level]) => (detector.update(level, ms), detector.speaking));
            }""",
            samples,
        )

    yield run
    browser.close()


@pytest.mark.parametrize(
    ('samples', 'expected'),
    [
        pytest.param([(0, 0.0), (100, 0.05), (200, 0.099)], [False] * 3, id='quiet and murmur never start'),
        pytest.param([(0, 0.1)], [True], id='0.1 starts'),
        pytest.param([(0, 0.5), (100, 0.03), (200, 0.021)], [True] * 3, id='above 0.02 keeps speaking'),
        pytest.param([(0, 0.5), (500, 0.0), (999, 0.0), (1000, 0.0)], [True, True, True, False], id='1 s hang time'),
        pytest.param(
            [(0, 0.5), (900, 0.0), (950, 0.05), (1900, 0.0), (2000, 0.01)],
            [True, True, True, True, False],
            id='a quiet word within the hang time restarts it',
        ),
        pytest.param([(0, 0.5), (1500, 0.0), (1600, 0.05)], [True, False, False], id='after stopping, 0.1 again'),
        pytest.param([(0, 1.0), (500, 0.25), (1000, 0.0625), (1500, 1.0)], [True] * 4, id='Chromium fake beeps'),
    ],
)
def test_detector_thresholds_and_hang_time(detect, samples, expected) -> None:  # type: ignore[no-untyped-def]
    assert detect(samples) == expected
