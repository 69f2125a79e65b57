"""Hospital station with three cameras and technician stations: live labelled tiles, disable/enable, rename,
audio both ways, and the hospital leaving."""

import re
import time

from playwright.sync_api import Page, expect

from tests.e2e.conftest import save_screenshot
from tests.e2e.harness import wait_video_playing
from tests.e2e.media_probe import wait_media_flowing

TILE = '[data-testid=tile]'


def join(page: Page, room: str, name: str, station: str) -> None:
    """Enter the room the way a person does: home → lobby → the station's button."""
    page.goto('/')
    page.get_by_test_id('display-name').fill(name)
    page.get_by_test_id('room-name').fill(room)
    page.get_by_test_id('join-room').click()
    expect(page.get_by_test_id('room-title')).to_have_text(room)
    page.get_by_test_id(f'join-{station}').click()
    page.wait_for_url(f'**/{room}/{station}')


# Chromium's fake camera #1 ("fake_device_1") delivers Y16 (a depth format) that its WebRTC encoder never encodes
# (framesEncoded stays 0), so the test machine has four fake cameras and the hospital adds the three colour ones.
FAKE_CAMERAS = 4
COLOUR_CAMERAS = (0, 2, 3)


def add_cameras(hospital: Page, indexes: tuple[int, ...]) -> list[str]:
    """Click "Add" on the listed cameras; returns the labels shown to technicians."""
    devices = hospital.get_by_test_id('camera-device')
    expect(devices).to_have_count(FAKE_CAMERAS)
    for added, index in enumerate(indexes, start=1):
        button = devices.nth(index).get_by_test_id('camera-toggle')
        expect(button).to_have_text('addAdd')
        button.click()
        expect(hospital.get_by_test_id('camera-card')).to_have_count(added, timeout=10_000)
    labels = hospital.get_by_test_id('camera-label')
    expect(labels).to_have_count(len(indexes))
    return [labels.nth(i).input_value() for i in range(len(indexes))]


def camera_tile(page: Page, label: str):  # type: ignore[no-untyped-def]
    return page.locator(TILE, has=page.get_by_test_id('tile-label').filter(has_text=label))


def test_hospital_cameras_reach_technicians(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'stations-three'
    hospital: Page = new_page(device_count=FAKE_CAMERAS, audio=True)
    tech: Page = new_page(audio=True)
    join(hospital, room, 'MRI Suite', 'hospital')
    join(tech, room, 'Tech Tom', 'technician')
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')

    started = time.monotonic()
    labels = add_cameras(hospital, COLOUR_CAMERAS)
    assert len(set(labels)) == 3, labels
    for label in labels:
        tile = camera_tile(tech, f'MRI Suite — {label}')
        expect(tile).to_have_attribute('data-playing', 'true', timeout=10_000)
    print(f'three camera tiles playing on the technician {time.monotonic() - started:.2f} s after the first add')
    for index in range(3):
        wait_video_playing(tech, f'{TILE}:has-text("{labels[index]}") video')
    expect(tech.locator(TILE)).to_have_count(3)
    expect(tech.get_by_test_id('technician-empty')).to_be_hidden()
    # Only what the user added is captured and published: the microphone and the three cameras, no default camera.
    assert sorted(hospital.evaluate('() => [...globalThis.orangeMedia.local.keys()]')) == [
        'cam-1',
        'cam-2',
        'cam-3',
        'mic',
    ]
    # Maximise a tile within the page: it spans the grid; again: back in the grid.
    first = camera_tile(tech, labels[0])
    first.get_by_test_id('tile-maximise').click()
    expect(first).to_have_class(re.compile('col-span-full'))
    first.get_by_test_id('tile-maximise').click()
    expect(first).not_to_have_class(re.compile('col-span-full'))

    # A second technician sees the same three live tiles; the hospital counts two watchers.
    tech2: Page = new_page()
    join(tech2, room, 'Tech Una', 'technician')
    for label in labels:
        expect(camera_tile(tech2, f'MRI Suite — {label}')).to_have_attribute('data-playing', 'true', timeout=10_000)
    expect(hospital.get_by_test_id('watching-count')).to_have_text('2 technicians watching')
    expect(hospital.locator(TILE, has_text='Tech Una')).to_have_count(1)

    # Audio both ways: the technician hears the hospital, the hospital hears (and sees) the technicians.
    wait_media_flowing(tech, video=3, audio=1)
    wait_media_flowing(hospital, video=2, audio=2)

    # Disable camera 2: gone on both technicians within ~1 s (3 s tolerated for CI); enable: live again.
    cards = hospital.get_by_test_id('camera-card')
    clicked = time.monotonic()
    cards.nth(1).get_by_test_id('camera-enabled').click()
    for page in (tech, tech2):
        expect(camera_tile(page, labels[1])).to_have_count(0, timeout=3_000)
    print(f'disabled camera gone on both technicians after {time.monotonic() - clicked:.2f} s')
    expect(tech.locator(TILE)).to_have_count(2)
    cards.nth(1).get_by_test_id('camera-enabled').click()
    for page in (tech, tech2):
        expect(camera_tile(page, labels[1])).to_have_attribute('data-playing', 'true', timeout=10_000)

    # Rename camera 3: the technicians' label follows.
    field = cards.nth(2).get_by_test_id('camera-label')
    field.fill('MRI bore')
    field.press('Enter')
    for page in (tech, tech2):
        expect(camera_tile(page, 'MRI Suite — MRI bore')).to_have_count(1, timeout=3_000)
        expect(camera_tile(page, labels[2])).to_have_count(0)
    expect(camera_tile(tech, 'MRI bore')).to_have_attribute('data-playing', 'true')
    save_screenshot(hospital, 'hospital')
    save_screenshot(tech, 'technician')

    # The hospital closes its page: its tiles leave the technicians within 15 s, the empty state returns.
    hospital.context.close()
    for page in (tech, tech2):
        expect(page.locator(TILE)).to_have_count(0, timeout=15_000)
    expect(tech.get_by_test_id('technician-empty')).to_have_text('Waiting for a hospital station to join…')


def test_screen_tile_only_while_shared(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'stations-screen'
    hospital: Page = new_page()
    tech: Page = new_page()
    join(hospital, room, 'CT Room', 'hospital')
    join(tech, room, 'Tech Ida', 'technician')
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')
    # No phantom screen tile: nothing is shown until the hospital really shares.
    expect(tech.get_by_test_id('technician-empty')).to_have_text('CT Room has no camera switched on yet.')
    expect(tech.locator(TILE)).to_have_count(0)
    hospital.get_by_test_id('toggle-screen').click()
    screen = camera_tile(tech, 'CT Room — Screen')
    expect(screen).to_have_attribute('data-playing', 'true', timeout=10_000)
    hospital.get_by_test_id('toggle-screen').click()
    expect(screen).to_have_count(0, timeout=3_000)
    expect(tech.locator(TILE)).to_have_count(0)
    # Sharing again shows it again.
    hospital.get_by_test_id('toggle-screen').click()
    expect(screen).to_have_attribute('data-playing', 'true', timeout=10_000)


def test_a_camera_that_sends_nothing_is_explained(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'stations-depth'
    hospital: Page = new_page(device_count=FAKE_CAMERAS)
    tech: Page = new_page()
    join(hospital, room, 'CT Room', 'hospital')
    join(tech, room, 'Tech Ida', 'technician')
    devices = hospital.get_by_test_id('camera-device')
    expect(devices).to_have_count(FAKE_CAMERAS)
    devices.nth(1).get_by_test_id('camera-toggle').click()  # fake_device_1, the depth camera
    depth = hospital.get_by_test_id('camera-card').nth(0)
    message = depth.get_by_test_id('camera-not-sending')
    expect(message).to_be_visible(timeout=15_000)  # after the 6 s that a camera gets to start sending
    expect(message).to_contain_text('technicians cannot see it')
    devices.nth(0).get_by_test_id('camera-toggle').click()
    colour = hospital.get_by_test_id('camera-card').nth(1)
    label = colour.get_by_test_id('camera-label')
    expect(label).not_to_have_value('')
    expect(camera_tile(tech, label.input_value())).to_have_attribute('data-playing', 'true', timeout=10_000)
    expect(colour.get_by_test_id('camera-not-sending')).to_be_hidden()
    expect(tech.locator(TILE)).to_have_count(1)  # the depth camera never became a tile


def test_a_removed_camera_can_be_added_again(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'stations-remove'
    hospital: Page = new_page()
    tech: Page = new_page()
    join(hospital, room, 'X-ray', 'hospital')
    join(tech, room, 'Tech Una', 'technician')
    toggle = hospital.get_by_test_id('camera-device').first.get_by_test_id('camera-toggle')
    usable = re.compile('q-btn--actionable')  # Quasar's class for a button that is neither loading nor disabled
    for _ in range(2):
        expect(toggle).to_have_text('addAdd')
        expect(toggle).to_have_class(usable, timeout=5_000)
        toggle.click()
        expect(tech.locator(TILE)).to_have_attribute('data-playing', 'true', timeout=10_000)
        expect(toggle).to_have_class(usable, timeout=5_000)
        toggle.click()  # Remove
        expect(tech.locator(TILE)).to_have_count(0, timeout=5_000)
