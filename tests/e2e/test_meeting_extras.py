"""Three people in a meeting: active speaker, raised hand, screen share (auto-pinned), pin, mute request, and the
narrow-window stage limit, each seen the way the others see it."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import save_screenshot
from tests.e2e.harness import wait_video_playing
from tests.e2e.test_meeting_room import join

ROOM = 'meet-three'


def tile(page: Page, text: str) -> Locator:
    return page.locator('[data-testid=tile]', has_text=text)


def participant(page: Page, name: str) -> Locator:
    return page.get_by_test_id('participant').filter(has=page.get_by_test_id('participant-name').get_by_text(name))


def test_three_people_meeting(launch: Callable[..., Browser], app_server) -> None:  # type: ignore[no-untyped-def]
    browser = launch(1)  # one Chromium, three profiles: lighter on 2 cores than three browsers
    pages: dict[str, Page] = {}
    for name in ('Alice', 'Bob', 'Carol'):
        context = browser.new_context(base_url=app_server.url, viewport={'width': 1280, 'height': 800})
        page = context.new_page()
        page.set_default_timeout(15_000)
        join(page, ROOM, name)
        pages[name] = page
    alice, bob, carol = pages['Alice'], pages['Bob'], pages['Carol']
    for name, page in pages.items():
        for other in pages:
            if other != name:
                expect(tile(page, other)).to_have_attribute('data-playing', 'true', timeout=20_000)

    # Active speaker: Bob and Carol mute; Alice's (fake, beeping) microphone makes her the speaker for the others.
    for page in (bob, carol):
        page.get_by_test_id('toggle-mic').click()
    for page in (bob, carol):
        expect(tile(page, 'Alice')).to_have_attribute('data-speaking', 'true')
        page.get_by_test_id('toggle-participants').click()
        expect(participant(page, 'Alice')).to_have_attribute('data-speaking', 'true')
        expect(tile(page, 'Bob' if page is carol else 'Carol')).to_have_attribute('data-speaking', 'false')
    expect(tile(alice, 'Bob').get_by_test_id('tile-muted')).to_be_visible()

    # Raise hand: Carol's hand is seen by Alice and Bob (tile badge, list, toast).
    carol.get_by_test_id('toggle-hand').click()
    for page in (alice, bob):
        expect(tile(page, 'Carol').get_by_test_id('tile-hand')).to_be_visible()
        expect(page.get_by_text('Carol raised their hand')).to_be_visible()
    expect(participant(bob, 'Carol').get_by_test_id('participant-hand')).to_be_visible()
    carol.get_by_test_id('toggle-hand').click()
    expect(tile(alice, 'Carol').get_by_test_id('tile-hand')).to_have_count(0)

    # Screen share: Bob shares; Alice and Carol get a live, auto-pinned screen tile; it goes when he stops.
    bob.get_by_test_id('toggle-screen').click()
    for page in (alice, carol):
        screen = page.get_by_test_id('pinned-grid').locator('[data-testid=tile]', has_text='Bob — Screen')
        expect(screen).to_have_attribute('data-playing', 'true', timeout=15_000)
        wait_video_playing(page, '[data-testid=tile]:has-text("Bob — Screen") video')
    save_screenshot(alice, 'meeting-room')
    bob.get_by_test_id('toggle-screen').click()
    for page in (alice, carol):
        expect(tile(page, 'Bob — Screen')).to_have_count(0, timeout=5_000)

    # Pin: Alice pins Carol; the tile moves to the pinned area and back when unpinned, still playing.
    tile(alice, 'Carol').get_by_test_id('tile-pin').click()
    pinned = alice.get_by_test_id('pinned-grid').locator('[data-testid=tile]', has_text='Carol')
    expect(pinned).to_have_attribute('data-playing', 'true')
    pinned.get_by_test_id('tile-pin').click()
    expect(alice.get_by_test_id('pinned-grid').locator('[data-testid=tile]')).to_have_count(0)
    expect(alice.get_by_test_id('tile-grid').locator('[data-testid=tile]', has_text='Carol')).to_have_count(1)

    # Mute request: Carol mutes Alice; Alice is told who did it and her mic is off for everyone.
    participant(carol, 'Alice').get_by_test_id('participant-mute').click()
    carol.get_by_test_id('confirm-mute').click()
    expect(alice.get_by_text('Carol muted your microphone')).to_be_visible()
    expect(alice.get_by_test_id('toggle-mic')).to_contain_text('mic_off')
    for page in (bob, carol):
        expect(tile(page, 'Alice').get_by_test_id('tile-muted')).to_be_visible()
        expect(tile(page, 'Alice')).to_have_attribute('data-speaking', 'false', timeout=5_000)
    expect(participant(bob, 'Alice').get_by_test_id('participant-mute')).to_have_count(0)

    # A narrow window shows two tiles (oneself and the most recently active); widening brings everyone back.
    carol.set_viewport_size({'width': 480, 'height': 800})
    expect(carol.locator('[data-testid=tile]')).to_have_count(2)
    expect(carol.get_by_test_id('off-stage')).to_contain_text('1 more')
    carol.set_viewport_size({'width': 1280, 'height': 800})
    expect(carol.locator('[data-testid=tile]')).to_have_count(3)
    for other in ('Alice', 'Bob'):
        expect(tile(carol, other)).to_have_attribute('data-playing', 'true', timeout=10_000)
