"""Home → lobby in a real Chromium with fake devices: the preview plays, devices switch, errors are explained, the
roster follows who is in the room, and a direct link asks for a name and then continues."""

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import save_screenshot
from tests.e2e.harness import wait_video_playing

PREVIEW = '[data-testid=self-preview]'
PREVIEW_DEVICE_JS = '(v) => v.srcObject ? v.srcObject.getVideoTracks()[0].getSettings().deviceId : null'


def test_name_then_new_room_leads_to_the_lobby(new_page) -> None:  # type: ignore[no-untyped-def]
    page: Page = new_page()
    page.goto('/')
    page.get_by_test_id('display-name').fill('Dr. Ada Lovelace')
    page.get_by_test_id('new-room').click()
    page.wait_for_url(re.compile(r'/[a-z]+-[a-z]+-\d{4}$'))
    room = page.url.rsplit('/', 1)[1]
    expect(page.get_by_test_id('room-title')).to_have_text(room)
    expect(page.get_by_test_id('display-name')).to_have_value('Dr. Ada Lovelace')
    expect(page.get_by_test_id('header-name')).to_have_text('Dr. Ada Lovelace')


def test_lobby_preview_decodes_frames(new_page) -> None:  # type: ignore[no-untyped-def]
    page: Page = new_page()
    page.goto('/lobby-preview-test')
    state = wait_video_playing(page, PREVIEW)
    assert state['width'] > 0 and state['frames'] > 0
    # Mirrored, as people expect of a self view.
    assert 'matrix(-1' in page.locator(PREVIEW).evaluate('(v) => getComputedStyle(v).transform')
    # The microphone meter moves with the fake microphone's beeps.
    page.wait_for_function(
        "() => parseFloat(document.querySelector('[data-testid=mic-level]').style.width) > 0", timeout=10_000
    )
    expect(page.get_by_test_id('media-error')).to_be_hidden()
    page.get_by_test_id('display-name').fill('Nurse Kim')
    page.get_by_test_id('display-name').press('Enter')
    expect(page.get_by_test_id('header-name')).to_have_text('Nurse Kim')


def test_switching_camera_changes_the_preview_device(new_page) -> None:  # type: ignore[no-untyped-def]
    page: Page = new_page(device_count=2)
    page.goto('/lobby-two-cameras')
    wait_video_playing(page, PREVIEW)
    first = page.locator(PREVIEW).evaluate(PREVIEW_DEVICE_JS)
    select = page.get_by_test_id('camera-select')
    expect(select).to_contain_text('fake_device_0')
    select.click()
    options = page.locator('.q-menu .q-item')
    expect(options).to_have_count(2)
    options.filter(has_text='fake_device_1').click()
    page.wait_for_function(
        f'(first) => {{ const v = document.querySelector("{PREVIEW}"); '
        f'return v.srcObject && v.srcObject.getVideoTracks()[0].getSettings().deviceId !== first; }}',
        arg=first,
    )
    wait_video_playing(page, PREVIEW)
    expect(select).to_contain_text('fake_device_1')
    assert page.locator(PREVIEW).evaluate(PREVIEW_DEVICE_JS) != first


def test_denied_camera_permission_shows_the_message(new_page) -> None:  # type: ignore[no-untyped-def]
    page: Page = new_page(auto_accept=False)
    page.goto('/lobby-denied')
    error = page.get_by_test_id('media-error')
    expect(error).to_be_visible()
    expect(error).to_contain_text('permission was denied')
    assert page.locator(PREVIEW).evaluate('(v) => v.srcObject') is None


def test_lobby_roster_and_direct_links(new_page) -> None:  # type: ignore[no-untyped-def]
    room = 'lobby-roster'
    viewer: Page = new_page()
    viewer.goto(f'/{room}')
    expect(viewer.get_by_test_id('roster-empty')).to_be_visible()
    # A fresh browser follows a direct link: named in the lobby, then on to the page the link was for.
    hospital: Page = new_page()
    hospital.goto(f'/{room}/hospital')
    hospital.wait_for_url(f'**/{room}?next=hospital')
    expect(hospital.get_by_test_id('next-hint')).to_have_text('Enter your name to join as hospital station.')
    hospital.get_by_test_id('display-name').fill('MRI Suite')
    hospital.get_by_test_id('display-name').press('Enter')
    hospital.wait_for_url(f'**/{room}/hospital')
    station = viewer.get_by_test_id('roster-station')
    expect(station).to_contain_text('MRI Suite')
    expect(station).to_contain_text('no camera sending yet')
    hospital.get_by_test_id('camera-device').first.get_by_test_id('camera-toggle').click()
    expect(station).to_contain_text('1 camera', timeout=10_000)
    tech: Page = new_page()
    tech.goto(f'/{room}/technician')
    tech.get_by_test_id('display-name').fill('Tech Tom')
    tech.get_by_test_id('display-name').press('Enter')
    tech.wait_for_url(f'**/{room}/technician')
    expect(viewer.get_by_test_id('roster-technician')).to_contain_text('Tech Tom')
    viewer.get_by_test_id('display-name').fill('Nurse Kim')
    viewer.get_by_test_id('display-name').press('Enter')
    wait_video_playing(viewer, PREVIEW)
    save_screenshot(viewer, 'lobby')
    tech.get_by_test_id('leave').click()
    expect(viewer.get_by_test_id('roster-technician')).to_have_count(0, timeout=5_000)
