"""Cloudflare's own Calls client, partytracks (npm), against the embedded SFU: issue 12.

The real ``partytracks`` package is bundled with esbuild and runs in Chromium; its server proxy
``routePartyTracksRequest`` (``partytracks/server``) runs under node 20 (with the two shims of webrtc-notes) and points
at the app's ``/sfu/v1``. ``scripts/test`` installs the node packages (``npm ci`` in ``tests/e2e/partytracks``).
Every sequence asserts frames decoded (or audio packets received) by Chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import SFU_APP_ID, SFU_APP_SECRET
from tests.e2e.harness import ROOT, RunningApp, free_port

HARNESS = ROOT / 'tests' / 'e2e' / 'partytracks'
# Chromium's fake_device_1 is a 16-bit depth camera that never encodes a frame: the colour ones are 0, 2, 3, 4.
CAMERAS = (0, 2, 3, 4)
CAPTURE = os.environ.get('PARTYTRACKS_CAPTURE')  # a file to append every proxied exchange to (fixture capture)


@pytest.fixture(scope='module')
def proxy(app_server: RunningApp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = shutil.which('node')
    if node is None or not (HARNESS / 'node_modules' / 'partytracks').is_dir():
        pytest.fail('node 20 and tests/e2e/partytracks/node_modules are needed: run scripts/test (it runs npm ci)')
    port = free_port()
    log = tmp_path_factory.mktemp('partytracks') / 'proxy.log'
    env = {
        **os.environ,
        'PT_PORT': str(port),
        'SFU_BASE': f'{app_server.url}/sfu/v1',
        'SFU_APP_ID': SFU_APP_ID,
        'SFU_APP_SECRET': SFU_APP_SECRET,
        'NODE_ENV': 'test',
    }
    if CAPTURE:
        env['PT_LOG'] = CAPTURE
    with log.open('wb') as out:
        process = subprocess.Popen([node, 'server.mjs'], cwd=HARNESS, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(url + '/', timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError('partytracks harness did not start:\n' + log.read_text(errors='replace'))
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def open_page(launch: Callable[..., Browser], proxy: str) -> Callable[..., Page]:
    def _open(device_count: int = 1) -> Page:
        browser = launch(device_count)
        page = browser.new_context(base_url=proxy).new_page()
        page.set_default_timeout(20_000)
        logs: list[str] = []
        page.on('console', lambda message: logs.append(f'{message.type}: {message.text}'[:500]))
        page.on('pageerror', lambda error: logs.append(f'pageerror: {error}'[:500]))
        setattr(page, 'console_lines', logs)  # noqa: B010 - shown when a wait fails
        page.goto('/')
        page.wait_for_function('window.harness && window.harness.ready')
        return page

    return _open


def wait_for(page: Page, script: str, arg: Any, check: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    """Evaluate ``script`` (a function of ``arg``) until ``check`` holds on its result; return that result."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while time.monotonic() < deadline:
        value = page.evaluate(script, arg)
        if value is not None and check(value):
            return value
        time.sleep(0.25)
    logs = '\n'.join(getattr(page, 'console_lines', [])[-30:])
    raise AssertionError(f'{script} never satisfied the check within {timeout} s; last value: {value}\n{logs}')


def push(page: Page, **options: Any) -> tuple[int, dict[str, Any]]:
    """Push a track with partytracks; return its handle and the metadata partytracks emits once it sends."""
    handle = page.evaluate('(o) => harness.push(o)', options)
    meta = wait_for(page, '(id) => harness.pushed(id)', handle, lambda m: 'trackName' in m or 'error' in m)
    assert 'error' not in meta, meta
    return handle, meta


def pull(page: Page, meta: dict[str, Any], **options: Any) -> int:
    return int(page.evaluate('(o) => harness.pull(o)', {'metadata': meta, **options}))


def decoding(page: Page, handle: int, frames: int = 10, timeout: float = 20.0) -> dict[str, Any]:
    """Wait until the pulled video ``handle`` has decoded ``frames`` more frames than when this was called."""
    start = page.evaluate('(id) => harness.pulled(id)', handle)
    base = start.get('framesDecoded', 0) if isinstance(start, dict) else 0
    stats = wait_for(
        page,
        '(id) => harness.pulled(id)',
        handle,
        lambda s: 'error' in s or s['framesDecoded'] >= base + frames,
        timeout,
    )
    assert 'error' not in stats, stats
    return dict(stats)


def receiving_audio(page: Page, handle: int, timeout: float = 20.0) -> dict[str, Any]:
    start = page.evaluate('(id) => harness.pulled(id)', handle)
    base = start.get('packetsReceived', 0) if isinstance(start, dict) else 0
    stats = wait_for(
        page,
        '(id) => harness.pulled(id)',
        handle,
        lambda s: 'error' in s or s['packetsReceived'] >= base + 25,
        timeout,
    )
    assert 'error' not in stats, stats
    return dict(stats)


def session(page: Page, client: int = 0) -> dict[str, Any]:
    return dict(page.evaluate('(c) => harness.session(c)', client))


def test_push_camera_and_mic_then_pull_them_on_the_same_session(open_page: Callable[..., Page]) -> None:
    """partytracks' normal case (one session per tab): the SFU's re-offer keeps the numbering Chromium chose."""
    page = open_page()
    _mic, mic_meta = push(page, kind='audio')
    _cam, cam_meta = push(page, kind='video')
    assert mic_meta['sessionId'] == cam_meta['sessionId']
    video = pull(page, cam_meta)
    audio = pull(page, mic_meta, kind='audio')
    decoding(page, video)
    receiving_audio(page, audio)
    state = session(page)
    assert state['connectionState'] == 'connected'
    assert state['sessionId'] == cam_meta['sessionId']  # pulled on the pushing session itself
    # nothing of the app reaches a Calls client: the only cookies are partytracks' own session locks (item 6)
    assert all(c['name'].startswith('partytracks-session-') for c in page.context.cookies()), page.context.cookies()
    # a later change on the same session still negotiates: another camera, pulled too
    _cam2, cam2_meta = push(page, kind='video')
    decoding(page, pull(page, cam2_meta))
    decoding(page, video)


def test_three_cameras_then_remove_one_and_add_another(open_page: Callable[..., Page]) -> None:
    """A hospital station: three cameras seen by a technician; one removed and another added while watched
    (Chromium recycles the stopped m-line under a new mid)."""
    station = open_page(device_count=5)
    cams = [push(station, kind='video', camera=i) for i in CAMERAS[:3]]
    technician = open_page()
    views = [pull(technician, meta) for _, meta in cams]
    for view in views:
        decoding(technician, view)
    station.evaluate('(id) => harness.unpush(id)', cams[1][0])
    technician.evaluate('(id) => harness.unpull(id)', views[1])
    before = {t['mid'] for t in session(station)['transceivers']}
    _added, added_meta = push(station, kind='video', camera=CAMERAS[3])
    after = session(station)
    assert len(after['transceivers']) == len(before), 'Chromium reused the stopped m-line for the new camera'
    view = pull(technician, added_meta)
    decoding(technician, view)
    for other in (views[0], views[2]):
        decoding(technician, other)
    decoding(station, pull(station, added_meta))  # the station pulls it back on its own session too


def media_sections(sdp: str | None) -> int:
    return (sdp or '').count('\nm=')


def sending_mids(page: Page) -> set[str]:
    return {t['mid'] for t in session(page)['transceivers'] if t['currentDirection'] in ('sendonly', 'sendrecv')}


def test_batched_closes_stop_every_camera_and_the_sessions_stay_small(open_page: Callable[..., Page]) -> None:
    """Orange's hospital re-pushes every camera on each camera change and its technician re-pulls them all, so
    partytracks closes them in batches; 0.0.54 stops only the first transceiver of a batch. The SFU rejects the
    others in its answer, so the browser stops encoding them, and it recycles the rejected m-lines for the next
    pulls, so neither session grows however often the cameras change (Orange's technician reached the SDP bound
    after 5 changes before this)."""
    station = open_page(device_count=5)
    technician = open_page()
    cams = [push(station, kind='video', camera=i) for i in CAMERAS[:3]]
    views = [pull(technician, meta) for _, meta in cams]
    for view in views:
        decoding(technician, view)
    sizes: list[tuple[int, int]] = []
    for round_ in range(4):
        station.evaluate('(ids) => harness.unpushMany(ids)', [handle for handle, _ in cams])
        technician.evaluate('(ids) => harness.unpullMany(ids)', views)
        cams = [push(station, kind='video', camera=i) for i in CAMERAS[:3]]
        live = {meta['trackName'] for _, meta in cams}
        views = [pull(technician, meta) for _, meta in cams]
        for view in views:
            decoding(technician, view)
        # only the three live cameras are sent: every closed one stopped, the batch's first and the others alike
        wait_for(
            station,
            '() => harness.session(0)',
            None,
            lambda s: sum(t['currentDirection'] in ('sendonly', 'sendrecv') for t in s['transceivers']) == 3,
        )
        sizes.append((media_sections(session(station)['localSdp']), media_sections(session(technician)['localSdp'])))
        assert len(live) == 3, round_
    # the first round may add m-lines while earlier ones are being rejected; after that neither side grows
    assert sizes[-1] == sizes[1], sizes
    assert max(max(s) for s in sizes) <= 9, sizes


def test_closing_mid_0_keeps_media_flowing(open_page: Callable[..., Page]) -> None:
    """Closing the m-line that carries the BUNDLE tag moves Chromium's BUNDLE to a new transport: the camera pushed
    on the other m-line keeps reaching subscribers, and the tab keeps receiving what it pulls."""
    publisher = open_page()
    mic, _mic_meta = push(publisher, kind='audio')
    cam, cam_meta = push(publisher, kind='video')
    watcher = open_page()
    _other_cam, other_meta = push(watcher, kind='video')
    view = pull(watcher, cam_meta)
    decoding(watcher, view)
    assert session(publisher)['transceivers'][0]['mid'] == '0'
    publisher.evaluate('(id) => harness.unpush(id)', mic)  # a tab that only pushed so far
    wait_for(publisher, '() => harness.session(0).transceivers.map((t) => t.mid)', None, lambda mids: '0' not in mids)
    assert 'a=group:BUNDLE 1' in session(publisher)['localSdp']  # Chromium moved the group off mid 0
    decoding(watcher, view, frames=40)
    back = pull(publisher, other_meta)  # and the moved transport carries media to the tab too
    decoding(publisher, back, frames=40)
    decoding(watcher, view)
    assert session(publisher)['connectionState'] == 'connected'
    # closing the new tag (mid 1) moves the group once more
    publisher.evaluate('(id) => harness.unpush(id)', cam)
    wait_for(publisher, '() => harness.session(0).transceivers.map((t) => t.mid)', None, lambda mids: '1' not in mids)
    decoding(publisher, back, frames=40)


SIMULCAST = [
    {'rid': 'a', 'maxBitrate': 1_500_000},
    {'rid': 'b', 'scaleResolutionDownBy': 2.0, 'maxBitrate': 500_000},
    {'rid': 'c', 'scaleResolutionDownBy': 4.0, 'maxBitrate': 150_000},
]


def width_reaches(page: Page, handle: int, width: int, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the pulled video decodes frames ``width`` pixels wide (one simulcast layer, never a transcode)."""
    stats = wait_for(
        page, '(id) => harness.pulled(id)', handle, lambda s: 'error' in s or s['frameWidth'] == width, timeout
    )
    assert 'error' not in stats, stats
    return dict(stats)


def test_simulcast_push_then_a_layer_switch(open_page: Callable[..., Page]) -> None:
    """Orange with EXPERIMENTAL_SIMULCAST_ENABLED: three RIDs pushed; a subscriber asks for the smallest layer, then
    switches to the largest with tracks/update (partytracks' preferredRid$); the session keeps negotiating."""
    publisher = open_page()
    _, meta = push(publisher, kind='video', width=1280, height=720, encodings=SIMULCAST)
    answer = session(publisher)['remoteSdp']
    assert 'a=simulcast:recv a;b;c' in answer
    assert 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id' in answer
    watcher = open_page()
    view = pull(watcher, meta, rid='c')
    stats = decoding(watcher, view)
    assert width_reaches(watcher, view, 320)['frameWidth'] == 320, stats
    watcher.evaluate('([id, rid]) => harness.setRid(id, rid)', [view, 'a'])
    width_reaches(watcher, view, 1280)
    decoding(watcher, view)
    # the publishing session still negotiates (Chromium refused every later offer when the RID extensions were dropped)
    _, mic_meta = push(publisher, kind='audio')
    receiving_audio(watcher, pull(watcher, mic_meta, kind='audio'))
