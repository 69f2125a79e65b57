"""The hospital station's cameras: every camera on the machine (add/remove) and, per active camera, a local preview,
an editable label, a switch that stops sending, and a remove button. Each camera is its own pushed track.

A camera whose track sends nothing (Chromium's depth camera, a stalled USB camera) is not announced to technicians;
its card says so, and the manager keeps asking the browser whether it sends by now and announces it once it does.

`setup()` is what the person set up (devices, labels, sending switches) for `components.restore` to remember;
`restore()` brings a remembered setup back, skipping (with a notice) the cameras that are no longer on the machine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from nicegui import background_tasks, ui

from components.call import Call, LocalTrack
from components.media_session import MediaSession
from components.restore import CameraSetup, plan_cameras
from components.testid import testid
from components.video_tile import TileView, VideoTile
from media.negotiation import NegotiationError

log = logging.getLogger(__name__)

NOT_SENDING = 'This camera is not sending video — technicians cannot see it. Try another camera.'
RECHECK_INTERVAL = 5.0  # seconds between asking whether a silent camera sends by now
RECHECK_WAIT = 0.5  # how long each check watches the sender's byte counter
RESTORE_ATTEMPTS = 3  # publishing remembered cameras: tries before the person is told
RESTORE_RETRY_DELAY = 2.0  # seconds, times the attempt number


class CameraCard:
    """One active camera: preview, label shown to technicians, sending switch, remove."""

    def __init__(self, manager: CameraManager, key: str) -> None:
        self.key = key
        track = manager.call.local[key]
        with testid(ui.column(), 'camera-card').classes('gap-1 w-full') as self.element:
            self.tile = VideoTile(f'preview-{key}', self._view(track))
            with testid(ui.row(), 'camera-not-sending').classes(
                'w-full items-center gap-2 no-wrap px-2 py-1 rounded bg-red-50 text-red-900'
            ) as self.not_sending:
                ui.icon('videocam_off', color='negative')
                ui.label(NOT_SENDING).classes('text-sm')
            self.not_sending.set_visibility(False)
            with ui.row().classes('w-full items-center gap-2 no-wrap'):
                self.label = testid(
                    ui.input('Label shown to technicians', value=track.label).props('dense outlined'),
                    'camera-label',
                ).classes('grow')
                self.label.on('blur', lambda: manager.rename(key, self.label.value or ''))
                self.label.on('keydown.enter', lambda: manager.rename(key, self.label.value or ''))
                self.switch = testid(ui.switch('Sending', value=track.enabled), 'camera-enabled')
                self.switch.on_value_change(lambda e: manager.set_enabled(key, bool(e.value)))
                remove = ui.button(icon='delete', on_click=lambda: manager.remove(key))
                testid(remove.props('flat round dense color=grey-8'), 'camera-remove').tooltip('Remove this camera')

    @staticmethod
    def _view(track: LocalTrack) -> TileView:
        if track.enabled:
            return TileView(label=track.label, video_key=f'local:{track.key}')
        return TileView(label=f'{track.label} · off, not sent')

    def show(self, track: LocalTrack, switching: bool, silent: bool) -> None:
        self.tile.show(self._view(track))
        self.not_sending.set_visibility(silent and track.enabled)
        if not switching and self.switch.value != track.enabled:
            self.switch.set_value(track.enabled)


class DeviceRow:
    """One camera of the machine: its label and an Add/Remove button."""

    def __init__(self, manager: CameraManager, device_id: str) -> None:
        with testid(ui.row(), 'camera-device').classes('w-full items-center gap-2 no-wrap') as self.element:
            self.icon = ui.icon('radio_button_unchecked', color='grey-6')
            self.label = ui.label().classes('grow')
            self.button = ui.button(on_click=lambda: manager.toggle_device(device_id)).props('dense no-caps')
            testid(self.button, 'camera-toggle')
        self._shown: tuple[str, bool, bool] | None = None

    def show(self, label: str, on: bool, busy: bool) -> None:
        if self._shown == (label, on, busy):
            return
        self._shown = (label, on, busy)
        self.label.text = label
        self.icon.name = 'check_circle' if on else 'radio_button_unchecked'
        self.icon.props(f'color={"positive" if on else "grey-6"}')
        self.button.text = 'Remove' if on else 'Add'
        self.button.props(f'icon={"remove" if on else "add"}')
        self.button.props('outline color=grey-8' if on else 'color=primary', remove='outline color' if not on else None)
        self.button.props('loading' if busy else None, remove=None if busy else 'loading')


class CameraManager:
    """Device list plus the active cameras' cards; `refresh()` reconciles the UI with the `Call`'s local tracks."""

    def __init__(self, call: Call, session: MediaSession) -> None:
        self.call = call
        self.session = session
        self.devices: list[dict[str, str]] = []
        self.busy: set[str] = set()  # device ids being added or removed
        self.switching: set[str] = set()  # keys being enabled or disabled
        self.cards: dict[str, CameraCard] = {}
        self._next = 1
        self._listed: tuple[object, ...] = ()
        self._loading = False  # a device list request is in flight
        self._reload = False  # … and another was asked for meanwhile
        self.on_change: Callable[[], None] = lambda: None  # after every reconciliation (the page remembers the setup)
        with ui.card().classes('w-full gap-2'):
            with ui.row().classes('w-full items-center'):
                ui.icon('videocam', color='orange-8').classes('text-xl')
                ui.label('Cameras on this machine').classes('text-base font-semibold')
                ui.space()
                ui.label('Add each camera technicians should see.').classes('text-sm text-gray-600')
            self.device_list = testid(ui.column().classes('w-full gap-1'), 'camera-devices')
            with self.device_list:
                self.none_found = ui.label('No camera found. Plug one in; this list refreshes by itself.')
                self.none_found.classes('text-gray-600').set_visibility(False)
        self.rows: dict[str, DeviceRow] = {}
        self.grid = testid(ui.element('div'), 'camera-previews').classes('grid gap-4 w-full grid-cols-1 md:grid-cols-3')
        session.on('devicechange', lambda _: background_tasks.create(self.load_devices(), name='device list'))
        ui.timer(RECHECK_INTERVAL, self.recheck_silent)

    # ---- state -> UI ------------------------------------------------------------------------------------------

    def cameras(self) -> dict[str, LocalTrack]:
        """Active cameras by device id."""
        return {t.device_id or t.key: t for t in self.call.local.values() if t.source == 'camera'}

    async def load_devices(self) -> None:
        """Ask the browser for its cameras (bounded and checked by `MediaSession.list_devices`). Requests while one
        is in flight are coalesced into one more, never queued."""
        if self._loading:
            self._reload = True
            return
        self._loading = True
        try:
            while True:
                self._reload = False
                try:
                    self.devices = await self.session.list_devices()
                except (TimeoutError, NegotiationError):
                    return
                if not self._reload:
                    break
        finally:
            self._loading = False
        self.refresh()

    def refresh(self) -> None:
        active = self.cameras()
        listed = (tuple((d['deviceId'], d['label']) for d in self.devices), tuple(active), tuple(self.busy))
        if listed != self._listed:
            self._listed = listed
            self._render_devices(active)
        keys = {t.key for t in active.values()}
        for key in [k for k in self.cards if k not in keys]:
            self.grid.remove(self.cards.pop(key).element)
        for track in active.values():
            if track.key not in self.cards:
                with self.grid:
                    self.cards[track.key] = CameraCard(self, track.key)
            silent = track.key in self.call.media.silent
            self.cards[track.key].show(track, track.key in self.switching, silent)
        self.on_change()

    def setup(self) -> tuple[CameraSetup, ...]:
        """The active cameras as the person set them up, in the order they were added."""
        return tuple(
            CameraSetup(device_id=device_id, label=track.label, enabled=track.enabled)
            for device_id, track in self.cameras().items()
            if track.device_id
        )

    def _render_devices(self, active: dict[str, LocalTrack]) -> None:
        """Rows are kept per device (a click must never land on a row that is being rebuilt)."""
        present = {d['deviceId'] for d in self.devices}
        for device_id in [d for d in self.rows if d not in present]:
            self.device_list.remove(self.rows.pop(device_id).element)
        self.none_found.set_visibility(not self.devices)
        for device in self.devices:
            device_id = device['deviceId']
            if device_id not in self.rows:
                with self.device_list:
                    self.rows[device_id] = DeviceRow(self, device_id)
            track = active.get(device_id)
            label = device['label']
            if track is not None and track.label != label:
                label = f'{track.label} ({label})'  # renamed: keep the device's own name in view
            self.rows[device_id].show(label, track is not None, device_id in self.busy)

    async def recheck_silent(self) -> None:
        """Announce the cameras that were pushed without sending anything once they do send."""
        if not self.call.media.silent or self.call.left:
            return
        try:
            late = await self.call.media.confirm_sending(RECHECK_WAIT)
        except (TimeoutError, NegotiationError):  # the browser did not answer; the next tick asks again
            return
        for key in late:
            self.call.announce(key)
        if late:
            self.refresh()

    # ---- actions ----------------------------------------------------------------------------------------------

    async def add(self, device: dict[str, str]) -> None:
        device_id = device['deviceId']
        if device_id in self.busy or device_id in self.cameras():
            return
        key = self._new_key()
        self.busy.add(device_id)
        self.refresh()
        try:
            problem = await self.call.publish(LocalTrack(key=key, source='camera', device_id=device_id))
        finally:
            self.busy.discard(device_id)
            self.refresh()  # also after a failure: the button must not keep spinning
        if problem:
            ui.notify(f'Could not add {device["label"]}: {problem}', type='negative')
        await self.load_devices()  # labels become visible once a camera was opened

    async def restore(self, remembered: Sequence[CameraSetup]) -> None:
        """Add the remembered cameras again (one offer), with their labels and sending switches; a camera that is no
        longer on this machine is left out and the person is told."""
        found, missing = plan_cameras(remembered, (d['deviceId'] for d in self.devices if d['deviceId']))
        for camera in missing:
            name = f'"{camera.label}"' if camera.label else 'A camera'
            with self.grid:
                ui.notify(
                    f'{name} from your last setup is not on this machine any more; it was left out.', type='warning'
                )
        todo = [c for c in found if c.device_id not in self.cameras()]
        if not todo:
            return
        self.busy.update(c.device_id for c in todo)
        self.refresh()
        problems: list[str] = []
        try:
            for attempt in range(RESTORE_ATTEMPTS):  # right after an app restart a push may fail once: try again
                if attempt:
                    await asyncio.sleep(attempt * RESTORE_RETRY_DELAY)
                tracks = [
                    LocalTrack(
                        key=self._new_key(), source='camera', device_id=c.device_id, label=c.label, enabled=c.enabled
                    )
                    for c in todo
                ]
                problems = await self.call.publish_all(tracks)
                for track in tracks:  # published switched off (technicians never saw it): the browser stops sending
                    if not track.enabled and track.key in self.call.local:
                        await self.call.set_enabled(track.key, False)
                active = self.cameras()
                todo = [c for c in todo if c.device_id not in active]
                if not todo or self.call.left:
                    break
        finally:
            self.busy.difference_update(c.device_id for c in found)
            self.refresh()
        for problem in problems if todo else []:
            with self.grid:
                ui.notify(f'Could not restore a camera: {problem}', type='negative')
        await self.load_devices()

    def _new_key(self) -> str:
        key = f'cam-{self._next}'
        self._next += 1
        return key

    async def toggle_device(self, device_id: str) -> None:
        track = self.cameras().get(device_id)
        if track is not None:
            await self.remove(track.key)
            return
        device = next((d for d in self.devices if d['deviceId'] == device_id), None)
        if device is not None:
            await self.add(device)

    async def remove(self, key: str) -> None:
        track = self.call.local.get(key)
        if track is None or track.device_id in self.busy:
            return
        self.busy.add(track.device_id or key)
        self.refresh()
        try:
            await self.call.unpublish(key)
        finally:
            self.busy.discard(track.device_id or key)
            self.refresh()  # also after a failure (the browser did not answer): the button must not keep spinning

    async def set_enabled(self, key: str, enabled: bool) -> None:
        track = self.call.local.get(key)
        if track is None or track.enabled == enabled or key in self.switching:
            return
        self.switching.add(key)
        try:
            problem = await self.call.set_enabled(key, enabled)
        finally:
            self.switching.discard(key)
        if problem:
            ui.notify(problem, type='warning')
        self.refresh()

    def rename(self, key: str, label: str) -> None:
        track = self.call.local.get(key)
        if track is None or track.label == label.strip():
            return
        problem = self.call.rename(key, label)
        if problem:
            ui.notify(problem, type='warning')
        feed = self.call.me.camera_feed(track.device_id or key) if self.call.me else None
        if feed is not None and track.label != feed.label:  # a blank label falls back to the room's default
            track.label = feed.label
            self.cards[key].label.set_value(feed.label)
        self._listed = ()
        self.refresh()
