"""The figures behind a tile: resolution, frame rate, bitrate, packet loss, jitter, round-trip time, freezes, codec and
the connection score (the very value the tile's bars show, components/js/quality.js), with plots of the last minute
(bitrate, frame rate, loss) drawn by ECharts.

Every tile with video has a button that opens it (`VideoTile`); a page has one panel, created when first opened.
The browser reads the figures (components/js/track_stats.js) once a second only while the panel is open: closed,
it costs nothing (no timer, no getStats(), no messages)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nicegui import Client, ui

from components.testid import testid

JS_MODULES = {'orange-media': 'js'}
HISTORY_S = 60.0  # the plots show the last minute
FIGURES = (
    ('quality', 'Connection'),
    ('resolution', 'Resolution'),
    ('fps', 'Frame rate'),
    ('bitrate', 'Bitrate'),
    ('loss', 'Packet loss'),
    ('jitter', 'Jitter'),
    ('rtt', 'Round trip'),
    ('freezes', 'Freezes'),
    ('codec', 'Codec'),
)
LEVEL_COLOURS = {'excellent': 'text-green-700', 'good': 'text-yellow-700', 'poor': 'text-red-700'}
PLOTS = (
    ('kbps', 'Bitrate (kbit/s)', '#ea580c'),
    ('fps', 'Frame rate (fps)', '#2563eb'),
    ('loss', 'Loss (%)', '#dc2626'),
)


def bounded(value: Any, high: float) -> float | None:
    """A finite number in 0..high from the browser, or None (anything else is ignored, never trusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(min(max(value, 0.0), high))


def short_text(value: Any, limit: int = 24) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """One second of figures, as checked on arrival."""

    sending: bool
    width: int
    height: int
    fps: float | None
    kbps: float | None
    loss_pct: float | None
    jitter_ms: float | None
    rtt_ms: float | None
    freezes: int | None
    freeze_s: float | None
    codec: str | None
    limitation: str | None
    score: int | None
    level: str | None

    @classmethod
    def parse(cls, args: dict[str, Any]) -> Sample:
        level = args.get('level')
        score = bounded(args.get('score'), 100)
        freezes = bounded(args.get('freezes'), 1e9)
        return cls(
            sending=args.get('direction') == 'out',
            width=int(bounded(args.get('width'), 16384) or 0),
            height=int(bounded(args.get('height'), 16384) or 0),
            fps=bounded(args.get('fps'), 1000),
            kbps=bounded(args.get('kbps'), 1e7),
            loss_pct=bounded(args.get('lossPct'), 100),
            jitter_ms=bounded(args.get('jitterMs'), 1e6),
            rtt_ms=bounded(args.get('rttMs'), 1e6),
            freezes=None if freezes is None else int(freezes),
            freeze_s=bounded(args.get('freezeSeconds'), 1e9),
            codec=short_text(args.get('codec')),
            limitation=short_text(args.get('limitation')),
            score=None if score is None else round(score),
            level=level if level in LEVEL_COLOURS else None,
        )

    def shown(self) -> dict[str, str]:
        """The figures as the panel writes them."""

        def num(value: float | None, unit: str, digits: int = 0) -> str:
            return '—' if value is None else f'{value:.{digits}f} {unit}'

        quality = f'{self.level} · score {self.score}' if self.level and self.score is not None else '—'
        if self.sending:
            freezes = '— (sent video)'
        elif self.freezes is None:
            freezes = '—'
        else:
            freezes = f'{self.freezes} ({self.freeze_s or 0:.1f} s)'
        limited = f' · limited by {self.limitation}' if self.limitation and self.limitation != 'none' else ''
        return {
            'quality': quality,
            'resolution': f'{self.width} x {self.height}' if self.width and self.height else '—',
            'fps': num(self.fps, 'fps', 1),
            'bitrate': num(self.kbps, 'kbit/s') + limited,
            'loss': num(self.loss_pct, '%', 1),
            'jitter': num(self.jitter_ms, 'ms', 1),
            'rtt': num(self.rtt_ms, 'ms', 1),
            'freezes': freezes,
            'codec': self.codec or '—',
        }


class StatsProbe(ui.element, component='stats_panel.js', esm=JS_MODULES):
    """Reads the figures of `videoKey` once a second while `active` (and only then)."""

    def __init__(self) -> None:
        super().__init__()
        self._props['videoKey'] = None
        self._props['active'] = False

    def watch(self, video_key: str | None) -> None:
        self._props['videoKey'] = video_key
        self._props['active'] = video_key is not None
        self.update()


def chart_options() -> dict[str, Any]:
    """Three stacked plots over the last minute (x: seconds ago)."""
    grids, x_axes, y_axes, series, titles = [], [], [], [], []
    for index, (_field, title, colour) in enumerate(PLOTS):
        top = 6 + index * 33
        grids.append({'left': 48, 'right': 12, 'top': f'{top + 4}%', 'height': '20%'})
        titles.append({'text': title, 'top': f'{top - 2}%', 'left': 4, 'textStyle': {'fontSize': 12}})
        x_axes.append(
            {
                'type': 'value',
                'gridIndex': index,
                'min': -HISTORY_S,
                'max': 0,
                'axisLabel': {'show': index == len(PLOTS) - 1, 'formatter': '{value} s'},
            }
        )
        y_axes.append({'type': 'value', 'gridIndex': index, 'min': 0, 'splitNumber': 2})
        series.append(
            {
                'type': 'line',
                'xAxisIndex': index,
                'yAxisIndex': index,
                'showSymbol': False,
                'data': [],
                'lineStyle': {'color': colour},
                'itemStyle': {'color': colour},
                'areaStyle': {'opacity': 0.15},
            }
        )
    return {
        'animation': False,
        'title': titles,
        'grid': grids,
        'xAxis': x_axes,
        'yAxis': y_axes,
        'series': series,
        'tooltip': {'trigger': 'axis'},
    }


class StatsPanel:
    """The page's stats panel (a side sheet that leaves the tiles usable). Use `StatsPanel.of(client).open(...)`."""

    _panels: dict[str, StatsPanel] = {}

    @classmethod
    def of(cls, client: Client) -> StatsPanel:
        """This page's panel, created (hidden) on first use."""
        panel = cls._panels.get(client.id)
        if panel is None:
            with client.content:
                panel = cls()
            cls._panels[client.id] = panel
            client.on_delete(lambda: cls._panels.pop(client.id, None))
        return panel

    def __init__(self) -> None:
        self.video_key: str | None = None
        self.history: deque[tuple[float, Sample]] = deque()
        self.values: dict[str, ui.label] = {}
        with ui.dialog().props('seamless position=right') as self.dialog:
            with testid(ui.card(), 'stats-panel').classes('w-[26rem] max-w-full gap-2'):
                with ui.row().classes('w-full items-center no-wrap'):
                    ui.icon('query_stats', color='orange-8').classes('text-xl')
                    self.title = testid(ui.label().classes('font-semibold truncate'), 'stats-title')
                    ui.space()
                    close = ui.button(icon='close', on_click=self.close).props('flat round dense')
                    testid(close, 'stats-close')
                self.direction = ui.label().classes('text-sm text-gray-600 -mt-2')
                with ui.grid(columns=2).classes('w-full gap-x-4 gap-y-0 text-sm'):
                    for key, name in FIGURES:
                        ui.label(name).classes('text-gray-600')
                        self.values[key] = testid(ui.label('—').classes('font-medium tabular-nums'), f'stats-{key}')
                self.chart = testid(ui.echart(chart_options()), 'stats-chart').classes('w-full h-80')
                self.probe = StatsProbe()
        self.probe.on('sample', self._sample, throttle=0.5)
        self.dialog.on_value_change(lambda event: None if event.value else self._stop())

    def open(self, video_key: str, label: str) -> None:
        """Show the figures of the tile whose video is `video_key` ("remote:<tile>" or "local:<key>")."""
        if video_key != self.video_key:
            self.history.clear()
            for value in self.values.values():
                value.text = '—'
            self._plot()
        self.video_key = video_key
        self.title.text = label
        self.direction.text = 'What this page sends' if video_key.startswith('local:') else 'What this page receives'
        self.probe.watch(video_key)
        self.dialog.open()

    def close(self) -> None:
        self.dialog.close()
        self._stop()

    def _stop(self) -> None:
        if self.probe.props.get('active'):
            self.probe.watch(None)
        self.video_key = None

    def _sample(self, event: Any) -> None:
        args = event.args if isinstance(event.args, dict) else {}
        if self.video_key is None or args.get('key') != self.video_key or args.get('missing'):
            return
        sample = Sample.parse(args)
        now = time.monotonic()
        self.history.append((now, sample))
        while self.history and self.history[0][0] < now - HISTORY_S:
            self.history.popleft()
        for key, text in sample.shown().items():
            if self.values[key].text != text:
                self.values[key].text = text
        level = sample.level or ''
        self.values['quality'].classes(replace=f'font-medium tabular-nums {LEVEL_COLOURS.get(level, "")}')
        self._plot(now)

    def _plot(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        fields: dict[str, Callable[[Sample], float | None]] = {
            'kbps': lambda s: s.kbps,
            'fps': lambda s: s.fps,
            'loss': lambda s: s.loss_pct,
        }
        for series, (field, _title, _colour) in zip(self.chart.options['series'], PLOTS, strict=True):
            pick = fields[field]
            series['data'] = [[round(at - now, 1), pick(s)] for at, s in self.history if pick(s) is not None]
        self.chart.update()
