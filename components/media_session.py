"""The page's WebRTC driver: Python calls into the browser's `MediaClient` and hears its events.

Everything a page sends is untrusted (a modified page can answer anything and emit anything): each `run_method`
result is type-checked and size-bounded here, and a forged one becomes a `NegotiationError` with a clear message;
each event the page emits passes a per-page token bucket (`rooms.limits.EventGate`) before any handler sees it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeGuard

from nicegui import events, ui

from components.media_caps import MediaCaps
from media.negotiation import NegotiationError, PushOffer
from rooms import clean_label
from rooms.limits import EventGate, Verdict
from rooms.model import DEVICE_ID_MAX_LENGTH

log = logging.getLogger(__name__)

JS_MODULES = {'orange-media': 'js'}
CAPTURE_TIMEOUT = 20.0  # getUserMedia may wait on a permission prompt
NEGOTIATION_TIMEOUT = 10.0  # createOffer + ICE gathering (bounded at 3 s in JS)
MAX_SDP_CHARS = 128 * 1024  # the embedded SFU's own bound (media/sfu/sdp_check.py); Cloudflare's offers are far below
MAX_MID_CHARS = 32
MAX_DEVICES = 32  # cameras listed for a station; a machine with more shows the first 32
MAX_DEVICE_LABEL = 120  # the device list's row (the room's label limit applies when a camera is announced)
MAX_MESSAGE_CHARS = 200  # an error message a page reports, before it reaches a log line or the person
MAX_STATS_CHARS = 64 * 1024
EVENT_LIMITS: dict[str, tuple[float, float]] = {
    # event -> (rate per second, burst) for one page. Normal pages: a heartbeat every 5 s, a connection state change
    # a few times per (re)connection of two peer connections, speaking flips at most every ~1 s (hang time), a
    # quality flip after seconds of loss, devicechange on plugging, local_ended once per captured track.
    'heartbeat': (1.0, 3.0),
    'connection': (2.0, 12.0),
    'speaking': (4.0, 8.0),
    'devicechange': (0.5, 3.0),
    'quality': (0.5, 4.0),
    'local_ended': (2.0, 20.0),
    'ready': (0.1, 2.0),
}


class MediaSession(ui.element, component='media_session.js', esm=JS_MODULES):
    """Invisible element owning the browser's peer connections; implements `media.negotiation.MediaDriver`."""

    def __init__(
        self, *, caps: MediaCaps, ice_servers: list[dict[str, Any]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._props['caps'] = caps.to_js()
        self._props['iceServers'] = ice_servers
        self.clock = clock
        self.gate = EventGate(limits=EVENT_LIMITS)

    def on(
        self,
        type: str,
        handler: events.Handler[events.GenericEventArguments] | None = None,
        args: Sequence[str] | Sequence[Sequence[str] | None] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Subscribe to a browser event; the handler only sees the events within this page's budget for it."""
        if handler is None:
            return super().on(type, handler, args, **kwargs)
        return super().on(type, gated(self.gate, self.clock, type, handler), args, **kwargs)

    async def _call(self, method: str, *args: Any, timeout: float = NEGOTIATION_TIMEOUT) -> Any:
        try:
            result = await self.run_method('call', method, *args, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # timed out, the page's client gone
            raise NegotiationError(f'The browser did not answer {method} ({type(error).__name__}).') from error
        if isinstance(result, dict) and '__error__' in result:
            raise NegotiationError(f'The browser could not complete {method}: {_text(result["__error__"])}')
        return result

    # capture
    async def open_local(self, key: str, source: str, device_id: str | None = None) -> dict[str, Any]:
        """Start capture; returns `{ok: True, label, deviceId}` or `{ok: False, error: {code, message}}` (checked:
        a label cleaned and bounded, a device id printable and bounded; anything else is a failure)."""
        result = await self._call(
            'openLocal', {'key': key, 'source': source, 'deviceId': device_id}, timeout=CAPTURE_TIMEOUT
        )
        if not isinstance(result, dict) or result.get('ok') is not True:
            error = result.get('error') if isinstance(result, dict) else None
            message = _text(error.get('message')) if isinstance(error, dict) else ''
            return _failure(message or 'The device could not be opened.')
        opened = result.get('deviceId')
        if opened is not None and not _device_id(opened):
            return _failure('The browser reported an invalid device.')
        return {'ok': True, 'label': clean_label(result.get('label'), MAX_DEVICE_LABEL), 'deviceId': opened or ''}

    async def close_local(self, key: str) -> None:
        await self._call('closeLocal', key)

    async def list_devices(self) -> list[dict[str, str]]:
        """The machine's cameras as `{deviceId, label}` (labels are placeholders until permission was granted): at
        most `MAX_DEVICES`, each with a valid, distinct device id and a cleaned label; malformed entries left out."""
        result = await self._call('listDevices')
        cameras = result.get('cameras') if isinstance(result, dict) else None
        if not isinstance(cameras, list):
            raise NegotiationError('The browser did not answer with a device list.')
        devices: list[dict[str, str]] = []
        seen: set[str] = set()
        for camera in cameras[: MAX_DEVICES * 4]:
            device_id = camera.get('deviceId') if isinstance(camera, dict) else None
            if not _device_id(device_id) or device_id in seen:
                continue
            seen.add(device_id)
            label = clean_label(camera.get('label'), MAX_DEVICE_LABEL) or f'Camera {len(devices) + 1}'
            devices.append({'deviceId': device_id, 'label': label})
            if len(devices) == MAX_DEVICES:
                break
        return devices

    async def close(self) -> None:
        """Release every captured device and drop the peer connections (the page is leaving)."""
        await self._call('close')

    async def set_local_enabled(self, key: str, enabled: bool) -> dict[str, Any]:
        result = await self._call('setLocalEnabled', key, enabled, timeout=CAPTURE_TIMEOUT)
        if isinstance(result, dict) and result.get('ok') is True:
            return {'ok': True}
        error = result.get('error') if isinstance(result, dict) else None
        message = _text(error.get('message')) if isinstance(error, dict) else ''
        return _failure(message or 'The device could not be switched.')

    # MediaDriver
    async def create_push_offer(self, keys: list[str]) -> PushOffer:
        result = await self._call('createPushOffer', keys)
        if not isinstance(result, dict):
            raise NegotiationError('The page did not answer (closed or reloading).')
        mids = result.get('mids')
        if not isinstance(mids, dict) or set(mids) != set(keys):
            raise NegotiationError('The page answered an offer without a mid for each track.')
        checked = {key: _mid(mids[key]) for key in keys}
        if len(set(checked.values())) != len(checked):
            raise NegotiationError('The page answered an offer with two tracks on one mid.')
        return PushOffer(sdp=_sdp(result.get('sdp')), mids=checked)

    async def apply_push_answer(self, sdp: str) -> None:
        await self._call('applyPushAnswer', sdp)

    async def wait_sending(self, keys: list[str], timeout: float) -> set[str]:
        result = await self._call('waitSending', keys, int(timeout * 1000), timeout=timeout + 5)
        if result is None:
            return set()
        if not isinstance(result, list):
            raise NegotiationError('The page did not answer which tracks send.')
        asked = set(keys)
        return {key for key in result[: len(keys) * 2] if isinstance(key, str) and key in asked}

    async def create_push_close_offer(self, keys: list[str]) -> str:
        result = await self._call('createPushCloseOffer', keys)
        return _sdp(result.get('sdp') if isinstance(result, dict) else None)

    async def answer_pull(self, offer_sdp: str, mids: dict[str, str]) -> str:
        return _sdp(await self._call('answerPull', offer_sdp, mids))

    async def create_pull_close_offer(self, mids: list[str]) -> str:
        return _sdp(await self._call('createPullCloseOffer', mids))

    async def apply_pull_answer(self, sdp: str) -> None:
        await self._call('applyPullAnswer', sdp)

    async def drop_pulled(self, mids: list[str]) -> None:
        await self._call('dropPulled', mids)

    async def drop_pushed(self, keys: list[str]) -> None:
        await self._call('dropPushed', keys)

    async def reset_push(self) -> None:
        await self._call('reset', 'push')

    async def reset_pull(self) -> None:
        await self._call('reset', 'pull')

    async def reset(self) -> None:
        await self._call('reset')

    async def stats(self) -> dict[str, Any]:
        """The page's own stats report (diagnostics): a JSON object of bounded size, else a NegotiationError."""
        result = await self._call('stats')
        if result is None:
            return {}
        if not isinstance(result, dict) or len(repr(result)) > MAX_STATS_CHARS:
            raise NegotiationError('The page answered malformed or oversized stats.')
        return result


def gated(
    gate: EventGate, clock: Callable[[], float], name: str, handler: events.Handler[events.GenericEventArguments]
) -> Callable[[events.GenericEventArguments], None]:
    """`handler`, called only for the `name` events within `gate`'s budget; the rest are dropped (the first of each
    burst logged at debug level), never queued."""

    def handle(event: events.GenericEventArguments) -> None:
        verdict = gate.admit(name, clock())
        if verdict is Verdict.PASS:
            events.handle_event(handler, event)
        elif verdict is Verdict.DROP_FIRST:
            log.debug('dropping %s events from a page over its budget', name[:40])

    return handle


def _sdp(value: Any) -> str:
    """The SDP a browser method returned; a page that went away mid-call returns nothing, which must not be sent."""
    if not isinstance(value, str) or not value.startswith('v=0'):
        raise NegotiationError('The page did not answer with a session description (closed or reloading).')
    if len(value) > MAX_SDP_CHARS:
        raise NegotiationError(f'The page answered a session description over {MAX_SDP_CHARS} characters.')
    return value


def _mid(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**6:
        return str(value)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_MID_CHARS or not value.isprintable() or ' ' in value:
        raise NegotiationError('The page answered an offer with an invalid mid.')
    return value


def _device_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= DEVICE_ID_MAX_LENGTH and value.isprintable()


def _text(value: Any) -> str:
    """A message the page reported, fit for a log line or a notification (one line, bounded)."""
    return clean_label(value, MAX_MESSAGE_CHARS)


def _failure(message: str) -> dict[str, Any]:
    return {'ok': False, 'error': {'code': 'unknown', 'message': message}}
