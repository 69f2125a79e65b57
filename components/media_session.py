"""The page's WebRTC driver: Python calls into the browser's `MediaClient` and hears its events."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from components.media_caps import MediaCaps
from media.negotiation import NegotiationError, PushOffer

JS_MODULES = {'orange-media': 'js'}
CAPTURE_TIMEOUT = 20.0  # getUserMedia may wait on a permission prompt
NEGOTIATION_TIMEOUT = 10.0  # createOffer + ICE gathering (bounded at 3 s in JS)


class MediaSession(ui.element, component='media_session.js', esm=JS_MODULES):
    """Invisible element owning the browser's peer connections; implements `media.negotiation.MediaDriver`."""

    def __init__(self, *, caps: MediaCaps, ice_servers: list[dict[str, Any]]) -> None:
        super().__init__()
        self._props['caps'] = caps.to_js()
        self._props['iceServers'] = ice_servers

    async def _call(self, method: str, *args: Any, timeout: float = NEGOTIATION_TIMEOUT) -> Any:
        result = await self.run_method('call', method, *args, timeout=timeout)
        if isinstance(result, dict) and '__error__' in result:
            raise NegotiationError(f'The browser could not complete {result["__error__"]}')
        return result

    # capture
    async def open_local(self, key: str, source: str, device_id: str | None = None) -> dict[str, Any]:
        """Start capture; returns `{ok, label, deviceId}` or `{ok: False, error: {code, message}}`."""
        result = await self._call(
            'openLocal', {'key': key, 'source': source, 'deviceId': device_id}, timeout=CAPTURE_TIMEOUT
        )
        return dict(result or {'ok': False, 'error': {'code': 'unknown', 'message': 'no answer from the browser'}})

    async def close_local(self, key: str) -> None:
        await self._call('closeLocal', key)

    async def list_devices(self) -> list[dict[str, str]]:
        """The machine's cameras as `{deviceId, label}` (labels are placeholders until permission was granted)."""
        result = await self._call('listDevices')
        cameras = (result or {}).get('cameras', [])
        return [{'deviceId': str(c.get('deviceId', '')), 'label': str(c.get('label', ''))} for c in cameras]

    async def close(self) -> None:
        """Release every captured device and drop the peer connections (the page is leaving)."""
        await self._call('close')

    async def set_local_enabled(self, key: str, enabled: bool) -> dict[str, Any]:
        return dict(await self._call('setLocalEnabled', key, enabled, timeout=CAPTURE_TIMEOUT) or {'ok': False})

    # MediaDriver
    async def create_push_offer(self, keys: list[str]) -> PushOffer:
        result = await self._call('createPushOffer', keys)
        if not isinstance(result, dict):
            raise NegotiationError('The page did not answer (closed or reloading).')
        return PushOffer(sdp=_sdp(result.get('sdp')), mids={str(k): str(v) for k, v in result['mids'].items()})

    async def apply_push_answer(self, sdp: str) -> None:
        await self._call('applyPushAnswer', sdp)

    async def wait_sending(self, keys: list[str], timeout: float) -> set[str]:
        result = await self._call('waitSending', keys, int(timeout * 1000), timeout=timeout + 5)
        return {str(key) for key in result or []}

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
        return dict(await self._call('stats') or {})


def _sdp(value: Any) -> str:
    """The SDP a browser method returned; a page that went away mid-call returns nothing, which must not be sent."""
    if not isinstance(value, str) or not value.startswith('v=0'):
        raise NegotiationError('The page did not answer with a session description (closed or reloading).')
    return value
