"""Lobby self-preview: a mirrored camera preview with camera/microphone choice, level meter and error messages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nicegui import ui

from components.media_caps import MediaCaps
from components.testid import testid

JS_MODULES = {'orange-media': 'js'}


@dataclass(kw_only=True, slots=True)
class DeviceChoice:
    """The devices the browser reported and the ones in use."""

    cameras: list[dict[str, str]] = field(default_factory=list)
    microphones: list[dict[str, str]] = field(default_factory=list)
    camera_id: str | None = None
    microphone_id: str | None = None


class DevicePreview(ui.element, component='device_preview.js', esm=JS_MODULES):
    """The browser half of the preview; Python receives device lists and errors as events."""

    def __init__(self, caps: MediaCaps) -> None:
        super().__init__()
        self._props['caps'] = caps.to_js()

    async def use_camera(self, device_id: str) -> str | None:
        """Switch the preview to another camera; returns the device id in use, None on failure."""
        result = await self.run_method('useCamera', device_id, timeout=15)
        return str(result) if result else None

    async def use_microphone(self, device_id: str) -> str | None:
        """Switch the microphone; returns the device id in use, None on failure."""
        result = await self.run_method('useMicrophone', device_id, timeout=15)
        return str(result) if result else None

    def stop(self) -> None:
        """Release camera and microphone."""
        self.run_method('stopAll')


class DevicePanel:
    """Preview plus the device selects and an error banner, as shown in the lobby."""

    def __init__(self, caps: MediaCaps, on_change: Callable[[DeviceChoice], Any] | None = None) -> None:
        self.choice = DeviceChoice()
        self._on_change = on_change
        with ui.column().classes('w-full gap-2'):
            self.preview = DevicePreview(caps).classes('w-full')
            self.error = testid(ui.label('').classes('text-red-700 bg-red-50 rounded p-2 w-full'), 'media-error')
            self.error.set_visibility(False)
            with ui.row().classes('w-full gap-2 no-wrap'):
                self.camera_select = testid(
                    ui.select({}, label='Camera', on_change=self._camera_chosen).classes('grow'), 'camera-select'
                )
                self.microphone_select = testid(
                    ui.select({}, label='Microphone', on_change=self._microphone_chosen).classes('grow'),
                    'microphone-select',
                )
        self.preview.on('devices', self._devices)
        self.preview.on('camera', lambda e: self._in_use(camera_id=e.args['deviceId']))
        self.preview.on('microphone', lambda e: self._in_use(microphone_id=e.args['deviceId']))
        self.preview.on('media_error', self._media_error)

    def _devices(self, event: Any) -> None:
        args = event.args
        self.choice.cameras = args.get('cameras', [])
        self.choice.microphones = args.get('microphones', [])
        self._fill(self.camera_select, self.choice.cameras, args.get('cameraId') or self.choice.camera_id)
        self._fill(
            self.microphone_select, self.choice.microphones, args.get('microphoneId') or self.choice.microphone_id
        )
        self._changed()

    def _in_use(self, *, camera_id: str | None = None, microphone_id: str | None = None) -> None:
        if camera_id:
            self.choice.camera_id = camera_id
            self._set_quietly(self.camera_select, camera_id)
        if microphone_id:
            self.choice.microphone_id = microphone_id
            self._set_quietly(self.microphone_select, microphone_id)
        self.error.set_visibility(False)
        self._changed()

    def _media_error(self, event: Any) -> None:
        self.error.text = event.args.get('message') or 'The device could not be opened.'
        self.error.props(f'data-code="{event.args.get("code", "unknown")}"')
        self.error.set_visibility(True)

    async def _camera_chosen(self, event: Any) -> None:
        if event.value and event.value != self.choice.camera_id:
            await self.preview.use_camera(event.value)

    async def _microphone_chosen(self, event: Any) -> None:
        if event.value and event.value != self.choice.microphone_id:
            await self.preview.use_microphone(event.value)

    def _fill(self, select: ui.select, devices: list[dict[str, str]], current: str | None) -> None:
        select.set_options({d['deviceId']: d['label'] for d in devices})
        if current is not None and current in select.options:
            self._set_quietly(select, current)

    @staticmethod
    def _set_quietly(select: ui.select, value: str) -> None:
        if value in select.options and select.value != value:
            select.value = value  # the on_change handlers ignore the device already in use

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.choice)
