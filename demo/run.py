"""`python -m demo [--headed] [--pace N] [--out demo-output]` (what `scripts/demo` runs): plays the hospital-technician
story in Chromium against the app on its embedded SFU, then writes into the output folder:

- `hospital.mp4`, `technician.mp4`: each role's page as it played (H.264, one common timeline);
- `demo.mp4`: both side by side (PyAV: the role videos decoded, tiled, encoded as H.264);
- `screenshots/NN-moment-role.png` and `frames/demo-NN-moment.png` (the composite at each key moment);
- `timing.txt` / `manifest.json`: each step, who took it, when, and how long until the other side saw it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from playwright.sync_api import sync_playwright

from demo.app import start_app
from demo.recording import composite, encode_role, frame_pngs
from demo.story import Story


def chromium_path() -> str:
    path = os.environ.get('CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
    if not path:
        raise SystemExit("Chromium not found: install Debian's chromium (scripts/demo does it when run as root)")
    return path


def timing_text(story: Story) -> str:
    lines = [f'{"t (s)":>7}  {"who":<11} {"step":<46} {"seen by":<11} {"after (s)":>9}  what they saw']
    for step in story.steps:
        after = f'{step.after_s:9.2f}' if step.after_s is not None else f'{"":9}'
        seen_by = step.seen_by or ''
        lines.append(f'{step.at:7.1f}  {step.by:<11} {step.name:<46} {seen_by:<11} {after}  {step.seen or ""}'.rstrip())
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='scripts/demo', description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument('--headed', action='store_true', help='play in visible Chromium windows (a live presentation)')
    parser.add_argument('--pace', type=float, default=1.0, help='scale the pauses between steps (2 = twice as slow)')
    parser.add_argument('--out', type=Path, default=Path('demo-output'), help='output folder (default: demo-output)')
    parser.add_argument('--fps', type=int, default=12, help='frame rate of the videos (default: 12)')
    parser.add_argument('--keep-frames', action='store_true', help='keep the raw screencast frames (out/raw)')
    args = parser.parse_args(argv)
    if args.pace <= 0 or not 1 <= args.fps <= 30:
        parser.error('--pace must be positive and --fps between 1 and 30')
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for stale in ('raw', 'screenshots', 'frames'):
        shutil.rmtree(out / stale, ignore_errors=True)

    workdir = Path(tempfile.mkdtemp(prefix='orange-demo-'))
    print(f'Starting the app (embedded SFU, invite-only rooms) in {workdir} ...', flush=True)
    app = start_app(workdir)
    story: Story | None = None
    failed: BaseException | None = None
    try:
        with sync_playwright() as playwright:
            story = Story(playwright=playwright, chromium=chromium_path(), url=app.url, out=out, pace=args.pace)
            story.headed = args.headed
            try:
                story.play()
            except BaseException as error:  # keep what was recorded: the videos show where it stopped
                failed = error
                for name, role in story.roles.items():
                    try:
                        role.page.screenshot(path=str(out / f'failed-{name}.png'))
                    except Exception:
                        pass
            finally:
                story.close()
    finally:
        app.stop()
        shutil.copy(app.log_path, out / 'app.log')
    assert story is not None
    end = time.time()

    print(f'Played in {end - story.start:.0f} s. Encoding the videos (PyAV) ...', flush=True)
    videos = []
    for name in story.roles:
        video = out / f'{name}.mp4'
        encode_role(out / 'raw' / name, video, start=story.start, end=end, fps=args.fps)
        videos.append(video)
    composite(videos, out / 'demo.mp4', fps=args.fps)
    print(f'Encoded in {time.time() - end:.0f} s.', flush=True)
    frames = out / 'frames'
    frames.mkdir(exist_ok=True)
    moments = [(m['at'], frames / f'demo-{n:02d}-{m["name"]}.png') for n, m in enumerate(story.moments, start=1)]
    frame_pngs(out / 'demo.mp4', moments)
    (out / 'timing.txt').write_text(timing_text(story))
    manifest = {
        'roles': list(story.roles),
        'videos': {name: f'{name}.mp4' for name in story.roles},
        'composite': 'demo.mp4',
        'fps': args.fps,
        'duration_s': round(end - story.start, 2),
        'pace': args.pace,
        'steps': [asdict(step) for step in story.steps],
        'moments': story.moments,
        'checks': story.checks,
        'completed': failed is None,
        'error': None if failed is None else repr(failed)[:2000],
    }
    (out / 'manifest.json').write_text(json.dumps(manifest, indent=2))
    if not args.keep_frames:
        shutil.rmtree(out / 'raw', ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)
    print('\n' + timing_text(story))
    print(f'Wrote {out}/demo.mp4, {", ".join(v.name for v in videos)}, screenshots/, frames/, timing.txt', flush=True)
    if failed is not None:
        print(f'The story stopped early: {failed!r}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
