"""The pure connection-quality logic (components/js/quality.js), run inside Chromium with injected timestamps."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.harness import chromium_args, chromium_path

IMPORT = "const q = await import('orange-media/quality.js');"


@pytest.fixture(scope='module')
def js(playwright, app_server):  # type: ignore[no-untyped-def]
    """`js(body)` runs `body` (with `q` = the quality module) in a page of the app and returns its result."""
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=chromium_args())
    page: Page = browser.new_page()
    page.goto(f'{app_server.url}/')

    def run(body: str, arg: Any = None) -> Any:
        return page.evaluate(f'async (arg) => {{ {IMPORT} {body} }}', arg)

    yield run
    browser.close()


@pytest.mark.parametrize(
    ('loss', 'level'),
    [
        (None, None),
        (0.0, 'good'),
        (0.01, 'good'),
        (0.0101, 'tolerable'),
        (0.03, 'tolerable'),
        (0.0301, 'unhealthy'),
        (0.05, 'unhealthy'),
        (0.0501, 'bad'),
        (0.5, 'bad'),
    ],
)
def test_levels_follow_the_originals_thresholds(js, loss: float | None, level: str | None) -> None:  # type: ignore[no-untyped-def]
    assert js('return q.classify(arg);', loss) == level


@pytest.mark.parametrize(
    ('previous', 'current', 'loss'),
    [
        ((100, 0), (199, 1), 0.01),  # 1 of 100 new packets lost
        ((100, 5), (190, 15), 0.1),
        ((0, 0), (0, 0), None),  # nothing new: no data, not "no loss"
        ((500, 10), (20, 0), None),  # counters restarted (a new peer connection)
        ((100, 10), (200, 8), 0.0),  # late packets lowered the cumulative loss
        (None, (100, 0), None),  # the first sample
    ],
)
def test_loss_fraction_from_successive_counters(js, previous, current, loss) -> None:  # type: ignore[no-untyped-def]
    body = """
        const sample = (c) => c && { packetsReceived: c[0], packetsLost: c[1] };
        return q.lossFraction(sample(arg[0]), sample(arg[1]));
    """
    result = js(body, [previous, current])
    assert result == (pytest.approx(loss) if loss is not None else None)


def test_ewma_weighs_by_elapsed_time(js) -> None:  # type: ignore[no-untyped-def]
    values = js("""
        const e = new q.Ewma(5000);
        return [e.update(0, 0.1), e.update(5000, 0), e.update(5000, 1)];
    """)
    assert values[0] == 0.1  # the first sample is taken as is
    assert values[1] == pytest.approx(0.1 / 2.718281828, rel=1e-6)  # one time constant later: 1/e of the old value
    assert values[2] == values[1]  # no time elapsed: a sample has no weight


def run_detector(js, samples: list[tuple[int, float | None]]) -> list[tuple[int, bool]]:  # type: ignore[no-untyped-def]
    """Feed (ms, loss) samples; return (ms, degraded) at every flip."""
    flips = js(
        """
        const d = new q.DegradeDetector();
        const flips = [];
        for (const [now, loss] of arg) if (d.update(now, loss)) flips.push([now, d.degraded]);
        return flips;
        """,
        samples,
    )
    return [(int(now), bool(degraded)) for now, degraded in flips]


def test_degraded_only_after_5_s_above_5_percent_and_recovered_after_5_s_below(js) -> None:  # type: ignore[no-untyped-def]
    high = [(t, 0.08) for t in range(0, 8000, 1000)]
    low = [(t, 0.01) for t in range(8000, 16000, 1000)]
    assert run_detector(js, high + low) == [(5000, True), (13000, False)]


def test_exactly_5_percent_is_not_degraded(js) -> None:  # type: ignore[no-untyped-def]
    assert run_detector(js, [(t, 0.05) for t in range(0, 20000, 1000)]) == []


def test_a_short_dip_restarts_the_5_s(js) -> None:  # type: ignore[no-untyped-def]
    samples = [(0, 0.2), (1000, 0.2), (2000, 0.2), (3000, 0.2), (4000, 0.01), (4500, 0.2)]
    samples += [(t, 0.2) for t in range(5000, 10000, 500)]
    assert run_detector(js, samples) == [(9500, True)]  # 5 s after the loss rose again at 4.5 s


def test_no_data_counts_as_healthy(js) -> None:  # type: ignore[no-untyped-def]
    samples = [(t, 0.3) for t in range(0, 6000, 1000)] + [(t, None) for t in range(6000, 12000, 1000)]
    assert run_detector(js, samples) == [(5000, True), (11000, False)]


MONITOR_JS = """
    const { createKeyedStore } = await import('orange-media/keyed_store.js');
    const store = createKeyedStore();
    const monitor = new q.QualityMonitor({ store });
    const seen = [];
    store.subscribe('remote:bob:camera', (value) => seen.push(value && value.level));
    const events = [];
    let received = 0, lost = 0, sent = 0, sentLost = 0;
    for (const [now, inLoss, outLoss, present] of arg) {
      received += Math.round(100 * (1 - inLoss)); lost += Math.round(100 * inLoss);
      sent += 100; sentLost += Math.round(100 * outLoss);
      const inbound = present ? { 'bob:camera': { packetsReceived: received, packetsLost: lost } } : {};
      const outbound = { 'OT01': { packetsSent: sent, packetsLost: sentLost } };
      const change = monitor.update(now, { inbound, outbound });
      if (change) events.push([now, change]);
    }
    return { events, levels: seen.filter((level, i) => level !== seen[i - 1]), now: store.get('remote:bob:camera') };
"""


def test_monitor_reports_tile_levels_and_only_the_flips_of_the_page_state(js) -> None:  # type: ignore[no-untyped-def]
    # One sample a second: 10 % inbound loss for 12 s, then none for 20 s, then the tile's track goes away.
    samples = [(t * 1000, 0.1, 0.0, True) for t in range(12)]
    samples += [(t * 1000, 0.0, 0.0, True) for t in range(12, 32)]
    samples += [(32000, 0.0, 0.0, False)]
    result = js(MONITOR_JS, samples)
    events = result['events']
    # The page's 2 s average exceeds 5 % from the first diff at 1 s, and falls below it at 13 s (0.1·e^-1 ≈ 3.7 %).
    assert [(now, change['degraded']) for now, change in events] == [(6000, True), (18000, False)]
    assert events[0][1]['inboundLoss'] == pytest.approx(0.1, abs=0.005)
    assert events[0][1]['outboundLoss'] == 0
    # The tile: nothing until a second sample, bad while 10 % are lost, then better and better, then gone.
    assert result['levels'] == [None, 'bad', 'unhealthy', 'tolerable', 'good', None]
    assert result['now'] is None


def test_outbound_loss_alone_degrades_the_page(js) -> None:  # type: ignore[no-untyped-def]
    samples = [(t * 1000, 0.0, 0.2, True) for t in range(10)]
    result = js(MONITOR_JS, samples)
    assert [(now, change['degraded']) for now, change in result['events']] == [(6000, True)]
    assert result['events'][0][1]['outboundLoss'] == pytest.approx(0.2, abs=0.005)
    assert result['levels'] == [None, 'good']  # a tile shows what it receives, not what this page sends
