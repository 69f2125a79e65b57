"""The scripted story, played in Chromium through the app's real pages and access flow (ROOM_ACCESS=invite).

MRI Suite 2 creates a room (it is the host), joins as the hospital station, adds three cameras and labels them
"Bore", "Console", "Patient table", and invites a technician from its Access panel. Tech Tom opens the link, waits at
the door, is admitted and sees three live tiles; he maximises "Console" and talks; the station switches "Patient table"
off for privacy; it shares its screen; Tech Tom opens a tile's stats; everyone leaves.

Every step is timed: when the action was taken, and how long until the other side saw it (waits are bounded; the
figures are a log for people, never a pass/fail criterion)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, expect

from demo.overlay import overlay_script, set_caption
from demo.recording import HEIGHT, WIDTH, Recorder
from demo.scenes import HOSPITAL_CAMERAS, SCANNER_SCREEN, TECHNICIAN_WEBCAM, devices_script
from localrun.chromium import chromium_args

STATION = 'MRI Suite 2'
TECHNICIAN = 'Tech Tom'
LABELS = ('Bore', 'Console', 'Patient table')
TILE = '[data-testid=tile]'
VIEWPORT = {'width': 1280, 'height': 720}
SCALE = WIDTH / VIEWPORT['width']  # viewport pixels -> video pixels
# Chromium's fake microphone (it beeps); the cameras are the demo's canvases, so one fake camera is plenty.
CHROMIUM_FLAGS = chromium_args(1, fake_screen=False)


@dataclass(kw_only=True)
class Step:
    """One line of the timing log (times in seconds from the start of the demo)."""

    name: str
    by: str
    at: float
    seen_by: str | None = None
    seen: str | None = None
    after_s: float | None = None


@dataclass(kw_only=True)
class Role:
    name: str
    page: Page
    recorder: Recorder


@dataclass(kw_only=True)
class Story:
    playwright: Playwright
    chromium: str
    url: str
    out: Path
    pace: float = 1.0
    headed: bool = False
    start: float = field(default_factory=time.time)
    steps: list[Step] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)  # tile regions of the videos, for tests
    moments: list[dict[str, Any]] = field(default_factory=list)  # key moments (for README frames)
    roles: dict[str, Role] = field(default_factory=dict)
    browser: Browser | None = None

    # ---- plumbing ---------------------------------------------------------------------------------------------

    def now(self) -> float:
        return round(time.time() - self.start, 2)

    def launch(self) -> None:
        self.browser = self.playwright.chromium.launch(
            executable_path=self.chromium,
            args=CHROMIUM_FLAGS,
            headless=not self.headed,
            ignore_default_args=['--mute-audio'] if self.headed else None,
        )

    def open(self, role: str, badge: str, colour: str, script: str) -> Page:
        assert self.browser is not None
        context = self.browser.new_context(base_url=self.url, viewport=VIEWPORT)  # type: ignore[arg-type]
        context.add_init_script(script)
        context.add_init_script(overlay_script(badge, colour))
        page = context.new_page()
        page.set_default_timeout(30_000)
        recorder = Recorder(page=page, folder=self.out / 'raw' / role)
        recorder.start()
        self.roles[role] = Role(name=role, page=page, recorder=recorder)
        return page

    def pause(self, seconds: float) -> None:
        """Let the audience look (`--pace` scales it). Waits inside Playwright, so the recorders keep receiving."""
        page = next(iter(self.roles.values())).page
        page.wait_for_timeout(max(0.6, seconds * self.pace) * 1000)

    def caption(self, text: str, *roles: str) -> None:
        for role in roles or tuple(self.roles):
            set_caption(self.roles[role].page, text)

    def shot(self, name: str, *roles: str) -> None:
        folder = self.out / 'screenshots'
        folder.mkdir(parents=True, exist_ok=True)
        number = len(self.moments) + 1
        for role in roles or tuple(self.roles):
            self.roles[role].page.screenshot(path=str(folder / f'{number:02d}-{name}-{role}.png'))
        self.moments.append({'name': name, 'at': self.now()})

    def step(self, name: str, by: str, act: Callable[[], None]) -> Step:
        at = self.now()
        act()
        self.roles[by].page.mouse.move(640, 4)  # no tooltip left hanging over the picture
        step = Step(name=name, by=by, at=at)
        self.steps.append(step)
        print(f'[{at:6.1f} s] {by}: {name}', flush=True)
        return step

    def seen(self, step: Step, seen_by: str, what: str, wait: Callable[[], None]) -> None:
        """Wait (bounded) until `seen_by` sees the step's effect; log how long after the action that was."""
        wait()
        step.seen_by, step.seen, step.after_s = seen_by, what, round(self.now() - step.at, 2)
        print(f'           {seen_by} saw it after {step.after_s:.2f} s: {what}', flush=True)

    def regions(self, role: str, locator: Any, labels: list[str], until: float | None = None) -> dict[str, Any]:
        """Record where `locator`'s elements are in `role`'s video now (for the checks of tests)."""
        boxes = []
        for index in range(locator.count()):
            box = locator.nth(index).bounding_box()
            if box and box['width'] > 20 and box['y'] >= 0 and box['y'] + box['height'] <= VIEWPORT['height']:
                scaled = [round(box[k] * SCALE) for k in ('x', 'y', 'width', 'height')]
                boxes.append({'label': labels[index] if index < len(labels) else str(index), 'box': scaled})
        check = {'role': role, 'from': self.now(), 'to': until, 'tiles': boxes}
        self.checks.append(check)
        return check

    def close(self) -> None:
        for role in self.roles.values():
            role.recorder.stop()
        for role in self.roles.values():
            try:
                role.page.context.close()
            except Exception:  # already gone
                pass
        if self.browser is not None:
            self.browser.close()

    # ---- the story ----------------------------------------------------------------------------------------------

    def play(self) -> None:
        self.launch()
        station_devices = devices_script(HOSPITAL_CAMERAS, screen=SCANNER_SCREEN)
        hospital = self.open('hospital', f'Hospital station · {STATION}', '#ea580c', station_devices)
        tech = self.open('technician', f'Technician · {TECHNICIAN}', '#7c3aed', devices_script((TECHNICIAN_WEBCAM,)))
        tech.goto('/')
        self.caption('The technician is at home, waiting for an invite.', 'technician')

        # 1. The station creates the room (it is the host) and joins it.
        hospital.goto('/')
        self.caption(f'{STATION}, the station beside the scanner, creates a room.', 'hospital')
        self.pause(2)

        def create() -> None:
            hospital.get_by_test_id('display-name').fill(STATION)
            hospital.get_by_test_id('new-room').click()
            hospital.wait_for_url(re.compile(r'/[a-z2-7]{24}$'))

        self.step('creates a room (its host)', 'hospital', create)
        self.caption('It joins its new room as the hospital station.', 'hospital')
        self.pause(1.5)
        self.step('joins as the hospital station', 'hospital', lambda: enter_station(hospital))
        collapse_access(hospital)

        # 2. Three cameras, labelled.
        self.caption('It adds its three cameras and labels them: Bore, Console, Patient table.', 'hospital')
        self.pause(1.5)
        for index, label in enumerate(LABELS):
            self.step(f'adds camera "{label}"', 'hospital', partial(add_camera, hospital, index, label))
        previews = hospital.get_by_test_id('camera-previews')
        previews.scroll_into_view_if_needed()
        self.pause(1)
        check = self.regions('hospital', previews.locator(TILE), list(LABELS))
        self.pause(2.5)
        self.shot('station-three-cameras', 'hospital')
        check['to'] = self.now()

        # 3. An invite, the door, the waiting room.
        self.caption('It invites a technician: Access → Invite → Technician, a link valid for 8 hours.', 'hospital')
        hospital.evaluate('() => window.scrollTo(0, 0)')
        open_access(hospital)
        self.pause(1)
        links: list[str] = []
        self.step('creates an invite link for Tech Tom', 'hospital', lambda: links.append(invite_technician(hospital)))
        invite = links[0]
        self.pause(1.5)
        hospital.keyboard.press('Escape')
        self.caption(f'{TECHNICIAN} opens the invite link he was sent…', 'technician')
        self.pause(1)
        open_invite(tech, invite)
        self.pause(1.5)
        asked = self.step('asks to join (technicians wait for approval)', 'technician', lambda: knock(tech))
        self.caption(f'…and waits at the door: he sees nothing of the room until {STATION} lets him in.', 'technician')
        open_access(hospital)
        self.seen(asked, 'hospital', 'the knock, with Admit and Deny', lambda: expect_knock(hospital))
        self.caption(f'{TECHNICIAN} is knocking. The station admits him.', 'hospital')
        self.pause(2)
        self.shot('door', 'hospital', 'technician')

        # 4. Admitted: three live tiles.
        admit = self.step(f'admits {TECHNICIAN}', 'hospital', lambda: hospital.get_by_test_id('admit').first.click())
        self.seen(admit, 'technician', 'three live camera tiles', lambda: three_tiles(tech))
        collapse_access(hospital)
        self.caption(f'{TECHNICIAN} sees each camera as its own live tile.', 'technician')
        self.caption(f'{TECHNICIAN} is watching: "1 technician watching".', 'hospital')
        grid = tech.get_by_test_id('feed-grid').locator(TILE)
        check = self.regions('technician', grid, [tile_label(grid.nth(i)) for i in range(grid.count())])
        quiet_microphone(tech, hospital)
        self.pause(3)
        self.shot('three-live-tiles', 'technician', 'hospital')
        check['to'] = self.now()

        # 5. Maximise Console.
        self.caption(f'{TECHNICIAN} maximises the Console camera.', 'technician')
        self.caption(f'{TECHNICIAN} maximises the Console camera on his side.', 'hospital')
        console = camera_tile(tech, 'Console')
        maximise = self.step('maximises "Console"', 'technician', console.get_by_test_id('tile-maximise').click)
        self.seen(maximise, 'technician', 'Console spans the grid', lambda: expect_maximised(console, True))
        self.pause(3)
        self.shot('console-maximised', 'technician')

        # 6. Talk.
        self.caption(f'{TECHNICIAN} unmutes and talks; the meter (top right) shows what {STATION} hears.')
        talk = self.step('unmutes his microphone and talks', 'technician', tech.get_by_test_id('toggle-mic').click)
        self.seen(talk, 'hospital', "his tile's muted mark goes", lambda: expect_unmuted(hospital))
        hospital.get_by_test_id('technician-grid').evaluate("(e) => e.scrollIntoView({block: 'center'})")
        self.pause(4)
        self.shot('talking', 'hospital', 'technician')
        self.caption(f'{TECHNICIAN} goes back to all cameras.', 'technician')
        self.step('goes back to the grid', 'technician', console.get_by_test_id('tile-maximise').click)
        expect_maximised(console, False)
        self.pause(1.5)

        # 7. Privacy: Patient table off.
        hospital.get_by_test_id('camera-previews').scroll_into_view_if_needed()
        self.caption('For privacy, the station switches the Patient table camera off…', 'hospital')
        self.caption('For privacy, the station switches the Patient table camera off…', 'technician')
        self.pause(1.5)
        card = hospital.get_by_test_id('camera-card').nth(2)
        off = self.step('switches "Patient table" off', 'hospital', card.get_by_test_id('camera-enabled').click)
        self.seen(off, 'technician', 'the Patient table tile is gone', lambda: expect_gone(tech, 'Patient table'))
        self.caption('…and its tile is gone for the technician: not frozen, gone.')
        self.pause(3)
        self.shot('privacy-off', 'hospital', 'technician')

        # 8. Screen share.
        hospital.evaluate('() => window.scrollTo(0, 0)')
        self.caption(f'{STATION} shares the scanner console screen.')
        self.pause(1)
        share = self.step('shares its screen', 'hospital', hospital.get_by_test_id('toggle-screen').click)
        self.seen(share, 'technician', 'the screen tile plays', lambda: expect_playing(tech, f'{STATION} — Screen'))
        self.pause(3.5)
        self.shot('screen-shared', 'technician', 'hospital')

        # 9. The figures behind a tile.
        self.caption(f"{TECHNICIAN} opens the Console tile's figures: bitrate, frame rate, loss, and the last minute.")
        panel = tech.get_by_test_id('stats-panel')
        stats = self.step('opens the stats of "Console"', 'technician', console.get_by_test_id('tile-stats').click)
        self.seen(stats, 'technician', 'live figures in the panel', lambda: expect_figures(panel))
        wait_plot(tech, panel, points=max(4, int(8 * self.pace)))
        self.caption("The Console tile's figures.", 'technician')  # short: clear of the panel's plots
        self.pause(6)
        self.shot('stats-panel', 'technician')
        self.checks.append({'role': 'technician', 'from': self.now(), 'to': None, 'stats_panel': box_of(panel)})

        # 10. Everyone leaves.
        self.caption(f'{TECHNICIAN} leaves.')
        tech.get_by_test_id('stats-close').click()
        self.checks[-1]['to'] = self.now()
        leave = self.step('leaves', 'technician', lambda: tech.get_by_test_id('leave').click())
        self.seen(
            leave,
            'hospital',
            '"0 technicians watching"',
            lambda: expect(hospital.get_by_test_id('watching-count')).to_have_text('0 technicians watching'),
        )
        self.pause(1.5)
        self.caption(f'{STATION} stops sharing and leaves. End of the demo.')
        self.step('leaves', 'hospital', lambda: leave_station(hospital))
        self.pause(2)


# ---- what the people do, through the pages' own controls ----------------------------------------------------------


def enter_station(page: Page) -> None:
    page.get_by_test_id('join-hospital').click()
    page.wait_for_url('**/hospital')
    expect(page.get_by_test_id('camera-device')).to_have_count(len(HOSPITAL_CAMERAS))


def access_open(page: Page) -> bool:
    return 'q-expansion-item--expanded' in (page.get_by_test_id('access-panel').get_attribute('class') or '')


def toggle_access(page: Page) -> None:
    page.get_by_test_id('access-panel').locator('.q-expansion-item__container > .q-item').first.click()


def collapse_access(page: Page) -> None:
    """Fold the host's Access panel (it opens by itself when someone knocks)."""
    if access_open(page):
        toggle_access(page)


def open_access(page: Page) -> None:
    if not access_open(page):
        toggle_access(page)


def add_camera(page: Page, index: int, label: str) -> None:
    button = page.get_by_test_id('camera-device').nth(index).get_by_test_id('camera-toggle')
    expect(button).to_have_class(re.compile('q-btn--actionable'))
    button.click()
    cards = page.get_by_test_id('camera-card')
    expect(cards).to_have_count(index + 1, timeout=20_000)
    field = cards.nth(index).get_by_test_id('camera-label')
    field.fill(label)
    field.press('Enter')
    expect(cards.nth(index).get_by_test_id('tile')).to_have_attribute('data-playing', 'true', timeout=20_000)


def invite_technician(page: Page) -> str:
    page.get_by_test_id('invite-open').click()
    page.get_by_test_id('invite-role').click()
    page.locator('.q-menu .q-item').filter(has_text='Technician').click()
    page.get_by_test_id('invite-name').fill(TECHNICIAN)
    page.get_by_test_id('invite-create').click()
    link = page.get_by_test_id('invite-link')
    expect(link).to_have_value(re.compile(r'invite='))
    return link.input_value()


def open_invite(page: Page, link: str) -> None:
    """The invite link leads to the room's door (the lobby), which knows him by the invite's name."""
    page.goto(link)
    page.wait_for_url(re.compile(r'\?next=technician$'))
    expect(page.get_by_test_id('join-technician')).to_be_visible()


def knock(page: Page) -> None:
    page.get_by_test_id('join-technician').click()
    expect(page.get_by_test_id('waiting')).to_be_visible()


def expect_knock(page: Page) -> None:
    expect(page.get_by_test_id('knock').filter(has_text=TECHNICIAN)).to_be_visible(timeout=20_000)


def camera_tile(page: Page, label: str) -> Any:
    return page.locator(TILE, has=page.get_by_test_id('tile-label').filter(has_text=label))


def tile_label(tile: Any) -> str:
    return str(tile.get_by_test_id('tile-label').inner_text()).strip()


def three_tiles(page: Page) -> None:
    page.wait_for_url('**/technician')
    for label in LABELS:
        expect(camera_tile(page, f'{STATION} — {label}')).to_have_attribute('data-playing', 'true', timeout=30_000)
    expect(page.get_by_test_id('feed-grid').locator(TILE)).to_have_count(3)


def quiet_microphone(tech: Page, hospital: Page) -> None:
    """The technician's microphone starts muted (so that unmuting is a moment the station can see)."""
    tile = hospital.locator(TILE, has_text=TECHNICIAN)
    expect(tile).to_have_count(1, timeout=20_000)
    expect(tile.get_by_test_id('tile-muted')).to_have_count(0, timeout=20_000)  # his microphone is published
    tech.get_by_test_id('toggle-mic').click()
    tech.mouse.move(640, 4)
    expect(tile.get_by_test_id('tile-muted')).to_have_count(1, timeout=20_000)


def expect_unmuted(page: Page) -> None:
    expect(page.locator(TILE, has_text=TECHNICIAN).get_by_test_id('tile-muted')).to_have_count(0, timeout=20_000)


def expect_maximised(tile: Any, maximised: bool) -> None:
    if maximised:
        expect(tile).to_have_class(re.compile('col-span-full'))
    else:
        expect(tile).not_to_have_class(re.compile('col-span-full'))


def expect_gone(page: Page, label: str) -> None:
    expect(camera_tile(page, label)).to_have_count(0, timeout=20_000)


def expect_playing(page: Page, label: str) -> None:
    expect(camera_tile(page, label)).to_have_attribute('data-playing', 'true', timeout=30_000)


def expect_figures(panel: Any) -> None:
    expect(panel).to_be_visible()
    expect(panel.get_by_test_id('stats-bitrate')).to_have_text(re.compile(r'^\d+ kbit/s'), timeout=20_000)


def wait_plot(page: Page, panel: Any, points: int) -> None:
    chart_id = int(str(panel.get_by_test_id('stats-chart').get_attribute('id')).removeprefix('c'))
    page.wait_for_function(
        '([id, n]) => { const c = getElement(id)?.chart; return !!c && c.getOption().series[0].data.length >= n; }',
        arg=[chart_id, points],
        timeout=30_000,
    )


def box_of(locator: Any) -> list[int] | None:
    box = locator.bounding_box()
    return [round(box[k] * SCALE) for k in ('x', 'y', 'width', 'height')] if box else None


def leave_station(page: Page) -> None:
    page.get_by_test_id('leave').click()
    page.wait_for_url(re.compile(r'/[a-z2-7]{24}$'))


__all__ = ['HEIGHT', 'WIDTH', 'Story']
