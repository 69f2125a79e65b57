"""Room access in Chromium (ROOM_ACCESS=invite): a stranger with only the address sees nothing while a hospital
streams two cameras; a technician with an invite waits, the hospital admits, every camera plays; a removed technician's
tiles stop and the SFU reports their tracks closed; an expired invite is refused. Waits are bounded, never timed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from components.invites import invite_path, mint
from tests.e2e.conftest import SFU_APP_ID, SFU_APP_SECRET
from tests.e2e.harness import RunningApp, start_app, wait_video_playing
from tests.e2e.media_probe import inbound, wait_media_flowing
from tests.e2e.test_stations import FAKE_CAMERAS, add_cameras, camera_tile

INVITE_SECRET = 'e2e-invite-secret-7c1f0a9d3b5e2468ace0'
TILE = '[data-testid=tile]'
HOSPITAL = 'MRI Suite'


@pytest.fixture(scope='module')
def invite_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        tmp_path_factory.mktemp('access'),
        {
            'SFU_APP_ID': SFU_APP_ID,
            'SFU_APP_SECRET': SFU_APP_SECRET,
            'ROOM_ACCESS': 'invite',
            'INVITE_SECRET': INVITE_SECRET,
        },
    )
    yield running
    running.stop()


@pytest.fixture
def open_page(launch: Callable[..., Browser], invite_app: RunningApp) -> Callable[..., Page]:
    def _open(device_count: int = 1) -> Page:
        browser = launch(device_count)
        context = browser.new_context(base_url=invite_app.url, viewport={'width': 1280, 'height': 800})
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    return _open


def host_with_two_cameras(open_page: Callable[..., Page]) -> tuple[Page, str, list[str]]:
    """A hospital creates a room (it is the host), joins as its station and streams two cameras."""
    hospital = open_page(FAKE_CAMERAS)
    hospital.goto('/')
    hospital.get_by_test_id('display-name').fill(HOSPITAL)
    hospital.get_by_test_id('new-room').click()
    hospital.wait_for_url(re.compile(r'/[a-z2-7]{24}$'))
    address = hospital.url.rsplit('/', 1)[1]
    hospital.get_by_test_id('join-hospital').click()
    hospital.wait_for_url(f'**/{address}/hospital')
    labels = add_cameras(hospital, (0, 2))
    expect(hospital.get_by_test_id('access-panel')).to_be_visible()
    return hospital, address, labels


def invite_from_ui(hospital: Page, role: str = 'Technician') -> str:
    """The host creates an invite link in the access panel and reads it (as the copy button would copy it)."""
    hospital.get_by_test_id('invite-open').click()
    hospital.get_by_test_id('invite-role').click()
    hospital.locator('.q-menu .q-item').filter(has_text=role).click()
    hospital.get_by_test_id('invite-create').click()
    link = hospital.get_by_test_id('invite-link')
    expect(link).to_have_value(re.compile(r'invite='))
    value = link.input_value()
    hospital.keyboard.press('Escape')
    return value


def test_a_stranger_with_the_address_sees_no_roster_and_no_video(open_page: Callable[..., Page]) -> None:
    hospital, address, labels = host_with_two_cameras(open_page)
    stranger = open_page()
    for path in (f'/{address}', f'/{address}/technician', f'/{address}/hospital', f'/{address}/room'):
        stranger.goto(path)
        expect(stranger.get_by_test_id('knock-title')).to_be_visible()
        expect(stranger.get_by_test_id('roster')).to_have_count(0)
        expect(stranger.locator(TILE)).to_have_count(0)
        body = stranger.locator('body').inner_text()
        # (the camera names themselves are the stranger's own fake devices too; the tiles would say "MRI Suite — …")
        assert HOSPITAL not in body and not any(f'{HOSPITAL} — {label}' in body for label in labels), body
    # Nothing is pulled: the stranger's page has no media client receiving anything.
    assert inbound(stranger) == {}
    expect(hospital.get_by_test_id('watching-count')).to_have_text('0 technicians watching')
    # Knocking shows the stranger's name and role to the hospital, and still nothing of the room to the stranger.
    stranger.goto(f'/{address}')
    stranger.get_by_test_id('display-name').fill('Eve')
    stranger.get_by_test_id('join-technician').click()
    expect(stranger.get_by_test_id('waiting')).to_be_visible()
    knock = hospital.get_by_test_id('knock')
    expect(knock).to_contain_text('Eve')
    expect(knock).to_contain_text('technician')
    assert HOSPITAL not in stranger.locator('body').inner_text()
    assert inbound(stranger) == {}
    knock.get_by_test_id('deny').click()
    expect(stranger.get_by_test_id('knock-denied')).to_be_visible()


def admitted_technician(open_page: Callable[..., Page]) -> tuple[Page, Page, str, list[str]]:
    hospital, address, labels = host_with_two_cameras(open_page)
    link = invite_from_ui(hospital)
    assert f'/{address}/technician?invite=' in link
    tech = open_page()
    tech.goto(link)
    tech.wait_for_url(re.compile(rf'/{address}\?next=technician$'))  # the token leaves the address bar
    tech.get_by_test_id('display-name').fill('Tech Tom')
    tech.get_by_test_id('join-technician').click()
    expect(tech.get_by_test_id('waiting')).to_be_visible()  # technicians wait for the station by default
    assert inbound(tech) == {} and HOSPITAL not in tech.locator('body').inner_text()
    knock = hospital.get_by_test_id('knock')
    expect(knock).to_contain_text('Tech Tom')
    knock.get_by_test_id('admit').click()
    tech.wait_for_url(f'**/{address}/technician')
    return hospital, tech, address, labels


def test_an_invited_technician_waits_is_admitted_and_every_camera_plays(open_page: Callable[..., Page]) -> None:
    hospital, tech, _address, labels = admitted_technician(open_page)
    for label in labels:
        tile = camera_tile(tech, f'{HOSPITAL} — {label}')
        expect(tile).to_have_attribute('data-playing', 'true', timeout=15_000)
        state = wait_video_playing(tech, f'{TILE}:has-text("{label}") video', timeout=15.0)
        assert state['width'] > 0
    wait_media_flowing(tech, video=2, timeout=15.0)  # framesDecoded keeps growing on both cameras
    expect(tech.locator(TILE)).to_have_count(2)
    expect(tech.get_by_test_id('stations')).to_have_text(HOSPITAL)
    expect(hospital.get_by_test_id('watching-count')).to_have_text('1 technician watching')


def test_a_removed_technicians_tiles_stop_and_the_sfu_closes_their_tracks(
    open_page: Callable[..., Page], invite_app: RunningApp
) -> None:
    hospital, tech, address, labels = admitted_technician(open_page)
    for label in labels:
        expect(camera_tile(tech, f'{HOSPITAL} — {label}')).to_have_attribute('data-playing', 'true', timeout=15_000)
    member = hospital.get_by_test_id('member').filter(has_text='Tech Tom')
    member.get_by_test_id('remove').click()
    # The removed page stops receiving at once and goes back to the door, which says so.
    expect(tech.locator(TILE)).to_have_count(0, timeout=5_000)
    expect(tech.get_by_test_id('removed-notice')).to_be_visible(timeout=5_000)
    expect(hospital.get_by_test_id('watching-count')).to_have_text('0 technicians watching', timeout=5_000)
    # The SFU (its Calls API) reports every track of the technician's sessions closed.
    pattern = re.compile(r'\(Tech Tom\) left; closed media sessions (\S+)')
    expect(tech.get_by_test_id('knock-title')).to_be_visible()
    deadline_log = ''
    for _ in range(50):
        deadline_log = invite_app.log()
        if pattern.search(deadline_log):
            break
        tech.wait_for_timeout(100)
    left = pattern.search(deadline_log)
    assert left, deadline_log[-2000:]
    for session_id in left.group(1).split(','):
        answer = httpx.get(
            f'{invite_app.url}/sfu/v1/apps/{SFU_APP_ID}/sessions/{session_id}',
            headers={'Authorization': f'Bearer {SFU_APP_SECRET}'},
        )
        assert answer.status_code in (200, 410), answer.text
        tracks = answer.json().get('tracks', []) if answer.status_code == 200 else []
        assert all(track['status'] == 'inactive' for track in tracks), tracks
    # The same invite does not let them straight back in: the technician page leads to the door.
    tech.goto(f'/{address}/technician')
    tech.wait_for_url(re.compile(rf'/{address}\?next=technician$'))
    expect(tech.locator(TILE)).to_have_count(0)


def test_an_expired_invite_is_refused(open_page: Callable[..., Page]) -> None:
    _hospital, address, _labels = host_with_two_cameras(open_page)
    token, grant = mint(INVITE_SECRET, room=address, role='technician', ttl=3600, now=1_000_000_000)
    visitor = open_page()
    visitor.goto(invite_path(grant, token))
    expect(visitor.get_by_test_id('access-refused')).to_have_text('This invite link has expired.')
    body = visitor.locator('body').inner_text()
    assert HOSPITAL not in body and address not in body
    expect(visitor.locator(TILE)).to_have_count(0)
