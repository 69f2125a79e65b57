"""The stats panel behind a tile, in Chromium: a technician opens a camera tile's figures (bitrate, frame rate, loss,
jitter, round trip, codec, the tile's own score) and the last minute's plots (an ECharts canvas); the hospital opens
its local preview's (what it sends); closed, the panel reads no stats at all."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.e2e.test_stations import COLOUR_CAMERAS, FAKE_CAMERAS, add_cameras, camera_tile, join

# Counts the receivers' own getStats() calls, which on a technician's page only the stats panel makes (the quality
# monitor reads the whole peer connection's stats; the speaking indicator reads the microphone's sender).
COUNT_TRACK_STATS = """
() => {
    globalThis.trackStatsCalls = 0;
    const original = RTCRtpReceiver.prototype.getStats;
    RTCRtpReceiver.prototype.getStats = function (...args) {
        globalThis.trackStatsCalls += 1;
        return original.apply(this, args);
    };
}
"""
NUMBER = r'\d+(\.\d+)?'


def test_a_tiles_stats_panel_shows_live_figures_and_plots(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'stats-panel'
    hospital: Page = new_page(device_count=FAKE_CAMERAS)
    tech: Page = new_page()
    join(hospital, room, 'MRI Suite', 'hospital')
    join(tech, room, 'Tech Tom', 'technician')
    [label] = add_cameras(hospital, COLOUR_CAMERAS[:1])
    tile = camera_tile(tech, f'MRI Suite — {label}')
    expect(tile).to_have_attribute('data-playing', 'true', timeout=15_000)
    tech.evaluate(COUNT_TRACK_STATS)

    tile.get_by_test_id('tile-stats').click()
    panel = tech.get_by_test_id('stats-panel')
    expect(panel).to_be_visible()
    expect(panel.get_by_test_id('stats-title')).to_have_text(f'MRI Suite — {label}')
    expect(panel.get_by_test_id('stats-bitrate')).to_have_text(re.compile(rf'^{NUMBER} kbit/s'), timeout=10_000)
    expect(panel.get_by_test_id('stats-fps')).to_have_text(re.compile(rf'^{NUMBER} fps$'))
    expect(panel.get_by_test_id('stats-resolution')).to_have_text(re.compile(r'^\d+ x \d+$'))
    expect(panel.get_by_test_id('stats-loss')).to_have_text(re.compile(rf'^{NUMBER} %$'))
    expect(panel.get_by_test_id('stats-jitter')).to_have_text(re.compile(rf'^{NUMBER} ms$'))
    expect(panel.get_by_test_id('stats-codec')).to_have_text('VP8')
    expect(panel.get_by_test_id('stats-freezes')).to_have_text(re.compile(r'^\d+ \(\d+\.\d s\)$'))
    kbps = float(panel.get_by_test_id('stats-bitrate').inner_text().split()[0])
    assert kbps > 0
    # One scoring: the panel shows the very level and score the tile's bars show.
    indicator = tile.get_by_test_id('tile-quality')
    expect(indicator).to_have_attribute('data-level', re.compile('^(excellent|good|poor)$'), timeout=10_000)
    level, score = indicator.get_attribute('data-level'), indicator.get_attribute('data-score')
    expect(panel.get_by_test_id('stats-quality')).to_contain_text(re.compile(r'^(excellent|good|poor) · score \d+$'))
    shown = panel.get_by_test_id('stats-quality').inner_text()
    now_level, now_score = indicator.get_attribute('data-level'), indicator.get_attribute('data-score')
    assert shown in {f'{level} · score {score}', f'{now_level} · score {now_score}'}, (shown, level, score)

    # The plots: an ECharts canvas whose bitrate series fills up second by second.
    chart = panel.get_by_test_id('stats-chart')
    expect(chart.locator('canvas')).to_have_count(1)
    tech.wait_for_function(
        """(id) => { const c = getElement(id)?.chart; if (!c) return false;
                     const data = c.getOption().series[0].data; return data.length >= 3 && data.at(-1)[1] > 0; }""",
        arg=int(chart.get_attribute('id').removeprefix('c')),  # type: ignore[union-attr]
        timeout=10_000,
    )
    assert tech.evaluate('() => globalThis.trackStatsCalls') > 0

    # Closed, it reads nothing.
    panel.get_by_test_id('stats-close').click()
    expect(panel).to_be_hidden()
    time.sleep(0.5)  # a sample already in flight may land
    calls = tech.evaluate('() => globalThis.trackStatsCalls')
    time.sleep(2.5)
    assert tech.evaluate('() => globalThis.trackStatsCalls') == calls

    # The hospital's local preview: what the station sends, scored the same way from the SFU's receiver report.
    preview = hospital.get_by_test_id('camera-card').first.get_by_test_id('tile')
    preview.get_by_test_id('tile-stats').click()
    sent = hospital.get_by_test_id('stats-panel')
    expect(sent).to_be_visible()
    expect(sent).to_contain_text('What this page sends')
    expect(sent.get_by_test_id('stats-bitrate')).to_have_text(re.compile(rf'^{NUMBER} kbit/s'), timeout=10_000)
    expect(sent.get_by_test_id('stats-fps')).to_have_text(re.compile(rf'^{NUMBER} fps$'))
    expect(sent.get_by_test_id('stats-freezes')).to_have_text('— (sent video)')
