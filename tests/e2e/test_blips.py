"""Blips and restarts heal themselves (issue #9 item 4): a hospital station that loses its network for 8 s (Wi-Fi
roaming) and an app restarted under open pages get every camera back to the technician with no click."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import SFU_APP_ID, SFU_APP_SECRET
from tests.e2e.harness import RunningApp, restart_app, start_app, wait_video_playing
from tests.e2e.media_probe import wait_media_flowing
from tests.e2e.test_stations import FAKE_CAMERAS, TILE, add_cameras, camera_tile, join

HEAL_WAIT = 60.0  # generous bound for an outcome, not a timing claim: the 2-core CI machine is shared


def wait_cameras_live(tech: Page, labels: list[str], timeout: float = HEAL_WAIT) -> None:
    """Every labelled camera is a playing tile with a picture, and that many video tracks decode new frames."""
    deadline = time.monotonic() + timeout
    for label in labels:
        tile = camera_tile(tech, label)
        expect(tile).to_have_attribute('data-playing', 'true', timeout=max(deadline - time.monotonic(), 1) * 1000)
        wait_video_playing(tech, f'{TILE}:has-text("{label}") video', timeout=max(deadline - time.monotonic(), 5))
    expect(tech.locator(TILE)).to_have_count(len(labels))
    wait_media_flowing(tech, video=len(labels), timeout=max(deadline - time.monotonic(), 10))


def test_a_hospital_offline_for_8_s_keeps_its_cameras(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'blips-offline'
    hospital: Page = new_page(device_count=FAKE_CAMERAS)
    tech: Page = new_page()
    join(hospital, room, 'MRI Suite', 'hospital')
    join(tech, room, 'Tech Tom', 'technician')
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')
    labels = add_cameras(hospital, (0, 2))
    wait_cameras_live(tech, labels)

    client_id = hospital.evaluate('window.clientId')
    hospital.context.set_offline(True)  # Wi-Fi roaming: no HTTP, no websocket
    time.sleep(8)
    hospital.context.set_offline(False)

    wait_cameras_live(tech, labels)
    # The page kept its NiceGUI client (no reload as a new participant) and shows its two cameras with their labels.
    assert hospital.evaluate('window.clientId') == client_id
    expect(hospital.get_by_test_id('camera-card')).to_have_count(2, timeout=HEAL_WAIT * 1000)
    for index, label in enumerate(labels):
        expect(hospital.get_by_test_id('camera-label').nth(index)).to_have_value(label)
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')


@pytest.fixture
def own_app(tmp_path: Path) -> Iterator[list[RunningApp]]:
    """An app of this test's own (it is restarted); the list holds the current process."""
    running = [start_app(tmp_path, {'SFU_APP_ID': SFU_APP_ID, 'SFU_APP_SECRET': SFU_APP_SECRET})]
    yield running
    running[-1].stop()


def test_an_app_restart_under_open_pages_restores_the_cameras(
    launch: Callable[..., Browser], own_app: list[RunningApp]
) -> None:
    room = 'blips-restart'
    url = own_app[0].url

    def page(device_count: int) -> Page:
        context = launch(device_count).new_context(base_url=url, viewport={'width': 1280, 'height': 800})
        opened = context.new_page()
        opened.set_default_timeout(15_000)
        return opened

    hospital, tech = page(FAKE_CAMERAS), page(1)
    join(hospital, room, 'CT Room', 'hospital')
    join(tech, room, 'Tech Ida', 'technician')
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')
    add_cameras(hospital, (0, 2))
    cards = hospital.get_by_test_id('camera-card')
    # The person's setup: the first camera renamed, both sending.
    field = cards.nth(0).get_by_test_id('camera-label')
    field.fill('Gantry left')
    field.press('Enter')
    field = cards.nth(1).get_by_test_id('camera-label')
    field.fill('Patient face')
    field.press('Enter')
    labels = ['CT Room — Gantry left', 'CT Room — Patient face']
    wait_cameras_live(tech, labels)

    before = {opened: opened.evaluate('window.clientId') for opened in (hospital, tech)}
    own_app.append(restart_app(own_app[0]))  # an upgrade: stop, start again on the same port and storage

    # The new process does not know the pages' NiceGUI clients: NiceGUI reloads each page, which joins again.
    for opened, client_id in before.items():
        opened.wait_for_function(
            '(old) => window.clientId && window.clientId !== old', arg=client_id, timeout=HEAL_WAIT * 1000
        )
    # No click anywhere: both pages come back by themselves and media flows again with the same labels.
    wait_cameras_live(tech, labels)
    expect(hospital.get_by_test_id('camera-card')).to_have_count(2, timeout=HEAL_WAIT * 1000)
    expect(hospital.get_by_test_id('camera-label').nth(0)).to_have_value('Gantry left')
    expect(hospital.get_by_test_id('camera-label').nth(1)).to_have_value('Patient face')
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')


def test_a_reloaded_hospital_page_restores_its_setup(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'blips-reload'
    hospital: Page = new_page(device_count=FAKE_CAMERAS)
    tech: Page = new_page()
    join(hospital, room, 'X-ray', 'hospital')
    join(tech, room, 'Tech Una', 'technician')
    labels = add_cameras(hospital, (0, 2))
    hospital.get_by_test_id('camera-card').nth(1).get_by_test_id('camera-enabled').click()  # second camera off
    expect(camera_tile(tech, labels[1])).to_have_count(0, timeout=HEAL_WAIT * 1000)
    wait_cameras_live(tech, [labels[0]])

    hospital.reload()

    # The old page left at once (one station, not two); the new one is back as it was, with no click.
    expect(tech.get_by_test_id('stations')).to_have_text('X-ray', timeout=HEAL_WAIT * 1000)
    expect(hospital.get_by_test_id('camera-card')).to_have_count(2, timeout=HEAL_WAIT * 1000)
    switches = hospital.get_by_test_id('camera-enabled')
    expect(switches.nth(0)).to_have_attribute('aria-checked', 'true')
    expect(switches.nth(1)).to_have_attribute('aria-checked', 'false')
    wait_cameras_live(tech, [labels[0]])
    # Switched on again, the restored second camera reaches the technician.
    switches.nth(1).click()
    wait_cameras_live(tech, labels)
