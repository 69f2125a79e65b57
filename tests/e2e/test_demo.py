"""`scripts/demo` end to end: the story plays headless (fast pace, low frame rate) and leaves videos that move.

Checks what a newcomer would: every output exists, the story completed with each step seen by the other side, the
composite changes over time, and in each role's video every tile region recorded by the demo shows a picture (not a
flat colour) that changes between two moments. Never a wall-clock figure."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from demo.recording import HEIGHT, WIDTH, frames_at, luma
from tests.e2e.harness import ROOT, chromium_path

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope='module')
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp('demo-output')
    env = {k: v for k, v in os.environ.items() if k != 'PYTEST_CURRENT_TEST'}
    env['CHROMIUM'] = chromium_path()
    result = subprocess.run(
        [sys.executable, '-m', 'demo', '--pace', '0.2', '--fps', '6', '--out', str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    print(result.stdout[-4000:])
    assert result.returncode == 0, f'{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return out, json.loads((out / 'manifest.json').read_text())


def mean_difference(a: list[int], b: list[int]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / max(1, len(a))


def test_the_demo_leaves_every_output(demo_output: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = demo_output
    assert manifest['completed'], manifest['error']
    for name in ('demo.mp4', 'hospital.mp4', 'technician.mp4', 'timing.txt', 'manifest.json', 'app.log'):
        assert (out / name).stat().st_size > 0, name
    screenshots = sorted(p.name for p in (out / 'screenshots').glob('*.png'))
    frames = sorted(p.name for p in (out / 'frames').glob('demo-*.png'))
    assert len(frames) == len(manifest['moments']) >= 8, frames
    assert any('stats-panel' in name for name in screenshots) and any('door' in name for name in screenshots)
    # The story as told: each step taken, and the other side saw what it should.
    steps = {(s['by'], s['name']): s for s in manifest['steps']}
    seen = {key: s['seen_by'] for key, s in steps.items() if s['seen_by']}
    assert seen[('technician', 'asks to join (technicians wait for approval)')] == 'hospital'
    assert seen[('hospital', 'admits Tech Tom')] == 'technician'
    assert seen[('technician', 'unmutes his microphone and talks')] == 'hospital'
    assert seen[('hospital', 'switches "Patient table" off')] == 'technician'
    assert seen[('hospital', 'shares its screen')] == 'technician'
    assert seen[('technician', 'leaves')] == 'hospital'
    timing = (out / 'timing.txt').read_text()
    assert 'three live camera tiles' in timing and 'the Patient table tile is gone' in timing


def test_the_composite_shows_both_roles_and_moves(demo_output: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = demo_output
    tiles_at = next(c['from'] for c in manifest['checks'] if c['role'] == 'technician' and 'tiles' in c)
    first, later = frames_at(out / 'demo.mp4', [tiles_at, tiles_at + 3])
    assert first is not None and later is not None
    assert (first.width, first.height) == (2 * WIDTH, HEIGHT)  # the roles side by side
    for half in ((0, 0, WIDTH, HEIGHT), (WIDTH, 0, WIDTH, HEIGHT)):
        assert statistics.pvariance(luma(first, half)) > 100  # a page, not a black frame
    assert mean_difference(luma(first, (0, 0, 2 * WIDTH, HEIGHT)), luma(later, (0, 0, 2 * WIDTH, HEIGHT))) > 1


def test_each_roles_video_shows_live_tiles(demo_output: tuple[Path, dict[str, Any]]) -> None:
    out, manifest = demo_output
    checked = set()
    for check in manifest['checks']:
        if not check.get('tiles'):
            continue
        start, end = check['from'] + 0.1, check['to'] - 0.1
        assert end - start >= 0.3, check
        first, last = frames_at(out / f'{check["role"]}.mp4', [start, end])
        assert first is not None and last is not None
        for tile in check['tiles']:
            box = tuple(tile['box'])
            before, after = luma(first, box), luma(last, box)  # type: ignore[arg-type]
            # A scene (colours, a name, a clock), not a flat "Connecting…" tile; and it moves.
            assert statistics.pvariance(before) > 150, (check['role'], tile)
            assert mean_difference(before, after) > 0.3, (check['role'], tile)
            checked.add((check['role'], tile['label']))
    assert {label for role, label in checked if role == 'technician'} == {
        'MRI Suite 2 — Bore',
        'MRI Suite 2 — Console',
        'MRI Suite 2 — Patient table',
    }
    assert {label for role, label in checked if role == 'hospital'} == {'Bore', 'Console', 'Patient table'}
