"""Off is never forever (issue 9 item 2), in Chromium: a hospital camera switched off for longer than the SFU keeps an
idle track comes back live on the technician's tile when switched on, with no click there. The app runs with a short
idle timeout (SFU_MEDIA_TIMEOUT) so "longer than the idle timeout" takes seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import test_stations as stations
from tests.e2e.conftest import SFU_APP_ID, SFU_APP_SECRET
from tests.e2e.harness import RunningApp, start_app, wait_video_playing
from tests.e2e.media_probe import inbound, wait_media_flowing

IDLE_TIMEOUT = 3  # seconds without media before the embedded SFU drops a published track (30 in production)


@pytest.fixture(scope='module')
def idle_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        tmp_path_factory.mktemp('idle-app'),
        {'SFU_APP_ID': SFU_APP_ID, 'SFU_APP_SECRET': SFU_APP_SECRET, 'SFU_MEDIA_TIMEOUT': str(IDLE_TIMEOUT)},
    )
    yield running
    running.stop()


@pytest.fixture
def open_page(launch: Callable[..., Browser], idle_app: RunningApp) -> Callable[..., Page]:
    def _open(device_count: int = 1) -> Page:
        context = launch(device_count).new_context(base_url=idle_app.url, viewport={'width': 1280, 'height': 800})
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    return _open


def test_camera_off_longer_than_the_idle_timeout_comes_back_for_the_technician(
    open_page: Callable[..., Page], idle_app: RunningApp
) -> None:
    room = 'idle-camera'
    hospital, tech = open_page(), open_page()
    stations.join(hospital, room, 'MRI Suite', 'hospital')
    stations.join(tech, room, 'Tech Tom', 'technician')
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')
    toggle = hospital.get_by_test_id('camera-device').first.get_by_test_id('camera-toggle')
    expect(toggle).to_have_text('addAdd')
    toggle.click()
    card = hospital.get_by_test_id('camera-card')
    expect(card).to_have_count(1)
    label = card.get_by_test_id('camera-label')
    expect(label).not_to_have_value('')
    tile = stations.camera_tile(tech, label.input_value())
    expect(tile).to_have_attribute('data-playing', 'true', timeout=10_000)

    switch = card.get_by_test_id('camera-enabled')
    switch.click()  # "Sending" off: the tile leaves the technician at once
    expect(tile).to_have_count(0, timeout=5_000)
    time.sleep(IDLE_TIMEOUT * 2 + 1)  # off for longer than the SFU keeps a track that sends nothing
    switch.click()  # on again; nobody clicks anything on the technician's side

    expect(tile).to_have_attribute('data-playing', 'true', timeout=15_000)
    state = wait_video_playing(tech, f'{stations.TILE} video', timeout=15.0)
    assert state['width'] > 0, state
    flowing = wait_media_flowing(tech, video=1, timeout=15.0)
    assert flowing['decoding'], flowing
    first = sum(s['framesDecoded'] for s in inbound(tech).values() if s['kind'] == 'video')
    wait_media_flowing(tech, video=1, timeout=10.0)
    assert sum(s['framesDecoded'] for s in inbound(tech).values() if s['kind'] == 'video') > first
    assert 're-publishing cam-1' in idle_app.log()  # it came back under a new locator, not the dead one
