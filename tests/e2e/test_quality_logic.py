"""The pure connection-quality logic (components/js/quality.js: one scoring for the tile bars and the stats panel)
and the stats panel's rates (components/js/track_stats.js), run inside Chromium with injected timestamps."""

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
    ('value', 'level'),
    [
        (None, None),
        (100, 'excellent'),
        (80.01, 'excellent'),
        (80, 'good'),  # "> 80 excellent": 80 itself is good
        (40.01, 'good'),
        (40, 'poor'),
        (0, 'poor'),
    ],
)
def test_levels_of_a_score(js, value: float | None, level: str | None) -> None:  # type: ignore[no-untyped-def]
    assert js('return q.levelOf(arg);', value) == level


@pytest.mark.parametrize(
    ('loss', 'rtt_ms', 'jitter_ms', 'expected'),
    [
        (0.0, None, None, 100),  # nothing known but "no loss": perfect
        (0.01, None, None, 90),  # 10 points per % lost
        (0.02, 0, 0, 80),
        (0.06, 0, 0, 40),
        (0.12, 0, 0, 0),  # clamped at 0
        (0.0, 80, 0, 99),  # effective delay 40 ms: 40 / 40 = 1 point
        (0.0, 0, 40, 98),  # 2 · 40 ms of jitter = 80 ms: 2 points
        (0.0, 320, 0, 96),  # 160 ms, the knee: 160 / 40 = 4
        (0.0, 800, 0, 72),  # 400 ms: (400 - 120) / 10 = 28
        (0.03, 200, 30, 66),  # 100 + 60 = 160 ms: 4, and 30 for 3 % lost
        (None, 20, 5, None),  # no loss figure: no score
    ],
)
def test_score_is_a_simplified_e_model(js, loss, rtt_ms, jitter_ms, expected) -> None:  # type: ignore[no-untyped-def]
    result = js('return q.score({loss: arg[0], rttMs: arg[1], jitterMs: arg[2]});', [loss, rtt_ms, jitter_ms])
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_assess_rounds_for_display_and_agrees_with_the_level(js) -> None:  # type: ignore[no-untyped-def]
    result = js('return q.assess({loss: 0.0123, rttMs: 12.345, jitterMs: 3.21});')
    assert result == {'score': 87, 'level': 'excellent', 'loss': 0.0123, 'jitterMs': 3.2, 'rttMs': 12.3}
    assert js('return q.assess({loss: 0.05});')['level'] == 'good'
    assert js('return q.assess({loss: null});') is None


def test_the_stats_panel_figures_from_two_snapshots(js) -> None:  # type: ignore[no-untyped-def]
    """components/js/track_stats.js: rates between two cumulative snapshots, as the stats panel shows them."""
    result = js("""
        const t = await import('orange-media/track_stats.js');
        const a = {at: 1000, direction: 'in', bytes: 100000, packets: 1000, packetsLost: 10, frames: 100,
                   jitter: 0.004, rtt: 0.002, width: 640, height: 360, freezeCount: 1, freezeSeconds: 0.6,
                   codec: 'VP8'};
        const b = {...a, at: 3000, bytes: 350000, packets: 1196, packetsLost: 14, frames: 148};
        return [t.figures(null, a), t.figures(a, b), t.figures(b, {...a, at: 4000})];
    """)
    first, second, restarted = result
    assert first['kbps'] is None and first['lossPct'] is None  # one snapshot: no rate yet
    assert first['width'] == 640 and first['codec'] == 'VP8'
    assert second['kbps'] == 1000  # 250 000 bytes in 2 s
    assert second['fps'] == 24  # 48 frames in 2 s
    assert second['lossPct'] == 2.0  # 4 lost of 200 expected
    assert second['jitterMs'] == 4 and second['rttMs'] == 2
    assert second['freezes'] == 1 and second['freezeSeconds'] == 0.6
    assert restarted['kbps'] is None  # counters went back (a new connection): no rate, never a negative one


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
    # The tile: nothing until a second sample, poor while 10 % are lost, then better and better, then gone.
    assert result['levels'] == [None, 'poor', 'good', 'excellent', None]
    assert result['now'] is None


def test_outbound_loss_alone_degrades_the_page(js) -> None:  # type: ignore[no-untyped-def]
    samples = [(t * 1000, 0.0, 0.2, True) for t in range(10)]
    result = js(MONITOR_JS, samples)
    assert [(now, change['degraded']) for now, change in result['events']] == [(6000, True)]
    assert result['events'][0][1]['outboundLoss'] == pytest.approx(0.2, abs=0.005)
    assert result['levels'] == [None, 'excellent']  # a tile shows what it receives, not what this page sends


def test_monitor_scores_with_jitter_and_the_pages_round_trip(js) -> None:  # type: ignore[no-untyped-def]
    result = js("""
        const { createKeyedStore } = await import('orange-media/keyed_store.js');
        const store = createKeyedStore();
        const monitor = new q.QualityMonitor({ store });
        for (let t = 0; t <= 3; t++) {
          monitor.update(t * 1000, {
            inbound: { 'bob:camera': { packetsReceived: 100 * t, packetsLost: 0, jitter: 0.050 } },
            outbound: { 'OT01': { packetsSent: 100 * t, packetsLost: 0, rtt: 0.4 } },
          });
        }
        return store.get('remote:bob:camera');
    """)
    # No loss, jitter 50 ms, RTT 400 ms: effective delay 200 + 100 = 300 ms, penalty (300 - 120) / 10 = 18.
    assert result == {'score': 82, 'level': 'excellent', 'loss': 0, 'jitterMs': 50, 'rttMs': 400}
