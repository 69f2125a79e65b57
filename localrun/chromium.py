"""Headless Debian Chromium for end-to-end tests, benchmarks and the demo: fake devices, loopback-only WebRTC."""

from __future__ import annotations

import os
import shutil

CHROMIUM_FLAGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    # WebRTC may only use loopback: no LAN address is ever offered as a candidate.
    '--force-webrtc-ip-handling-policy=default_public_interface_only',
]


def chromium_path() -> str:
    path = os.environ.get('CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
    if not path:
        raise RuntimeError("Chromium not found: install Debian's chromium (scripts/test does it when run as root)")
    return path


def chromium_args(device_count: int = 1, *, auto_accept: bool = True, fake_screen: bool = True) -> list[str]:
    """Flags for Chromium with `device_count` fake cameras (each a distinct image) and a fake microphone."""
    args = [f for f in CHROMIUM_FLAGS if f != '--use-fake-device-for-media-stream']
    args.append(f'--use-fake-device-for-media-stream=device-count={device_count}')
    if auto_accept:
        args.append('--use-fake-ui-for-media-stream')
    else:
        args.append('--deny-permission-prompts')
    if fake_screen:
        args += ['--auto-select-desktop-capture-source=Entire screen', '--enable-usermedia-screen-capturing']
    return args
