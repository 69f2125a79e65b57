"""Composition root: settings → media back end → rooms → pages → ui.run."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path

from nicegui import app, background_tasks, ui
from pydantic import SecretStr
from starlette.middleware.sessions import SessionMiddleware

from audit import AuditLog
from audit.salt import client_salt, default_db_path
from components.invites import kept_secret
from components.media_caps import MediaCaps
from media.backend import MediaBackend, MediaBackendConfig, create_backend
from pages import access, browser_log, health, home, hospital, in_room, lobby, log_format, room, technician
from pages.web_guard import WebGuard, restrict_socket_origin
from rooms import RoomRegistry
from rooms.limits import StallGuard
from settings import Settings, SettingsError, load_settings

log = logging.getLogger('orange')
EXPIRY_INTERVAL = 5.0
# How long NiceGUI keeps a page whose websocket is gone (Wi-Fi roaming, a laptop lid): the page, its room participant
# and its cameras survive a blip this long; NiceGUI's default of 3 s made every blip a reload as a new participant.
RECONNECT_TIMEOUT = 30.0
# Pages heartbeat for themselves and the server heartbeats for every page whose NiceGUI client exists
# (pages.in_room.keep_alive), so expiry only removes what no live client accounts for; it must never undercut the
# reconnect timeout.
EXPIRY_TIMEOUT = RECONNECT_TIMEOUT + 15.0


def build(settings: Settings) -> MediaBackend:
    """Wire everything into NiceGUI's app. Routes registered first win, so fixed paths come before `/{room}`."""
    caps = MediaCaps(
        max_bitrate=settings.max_webcam_bitrate,
        max_framerate=settings.max_webcam_framerate,
        max_quality_level=settings.max_webcam_quality_level,
        simulcast=settings.experimental_simulcast_enabled,
    )
    backend = create_backend(backend_config(settings))
    # Session cookies are Secure under TLS; the guard wraps everything, the session middleware included, so that the
    # embedded SFU's Calls API at /sfu/v1 answers without NiceGUI's cookie (ui.run finds this middleware and keeps it).
    app.add_middleware(
        SessionMiddleware, secret_key=storage_secret(settings), https_only=settings.tls_enabled, same_site='lax'
    )
    app.add_middleware(
        WebGuard, sfu_app=backend.sfu.asgi_app if backend.sfu is not None else None, sfu_access=settings.sfu_api
    )
    registry = RoomRegistry()
    app.state.rooms = registry  # the one registry, for tests that put people in a room directly
    app.state.audit = open_audit(settings)  # the append-only trail pages record into (issue 11)
    app.on_shutdown(app.state.audit.close)
    access.configure(settings.room_access, invite_secret(settings))
    access.observe_rooms(registry)
    browser_log.install()
    restrict_socket_origin()
    health.register(backend.kind)
    home.register()
    room.register(registry, backend, caps)
    hospital.register(registry, backend, caps)
    technician.register(registry, backend, caps)
    lobby.register(registry, caps)
    in_room.register_page_closed()
    app.on_startup(lambda: announce(settings))
    app.on_startup(lambda: background_tasks.create(expire_loop(registry), name='heartbeat expiry'))
    app.on_shutdown(backend.close)
    return backend


async def expire_loop(registry: RoomRegistry) -> None:
    """Remove participants whose page stopped sending heartbeats (their pages then close their tracks)."""
    guard = StallGuard(interval=EXPIRY_INTERVAL)
    guard.tick(time.monotonic())
    while True:
        await asyncio.sleep(EXPIRY_INTERVAL)
        if not guard.tick(time.monotonic()):
            # Heartbeats queued behind the stall are not counted yet: expiring now would remove everyone.
            log.warning('event loop stalled for %.1f s; heartbeat expiry waits for the next tick', guard.lag)
            continue
        for room_name, removed in registry.expire_all(time.monotonic(), EXPIRY_TIMEOUT).items():
            for participant in removed:
                log.info(
                    'room=%s: %s (%s) missed heartbeats and was removed', room_name, participant.name, participant.id
                )


def backend_config(settings: Settings) -> MediaBackendConfig:
    """Plain values for the media back end (secrets unwrapped here and nowhere else)."""

    def reveal(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    sfu_app_id, sfu_app_secret = sfu_credentials(settings)

    return MediaBackendConfig(
        calls_app_id=settings.calls_app_id,
        calls_app_secret=reveal(settings.calls_app_secret),
        calls_api_url=settings.calls_api_url,
        turn_service_id=settings.turn_service_id,
        turn_service_token=reveal(settings.turn_service_token),
        sfu_app_id=sfu_app_id,
        sfu_app_secret=sfu_app_secret,
        sfu_ice_hosts=settings.sfu_ice_hosts,
        sfu_simulate_loss=settings.sfu_simulate_loss,
        sfu_media_timeout=settings.sfu_media_timeout,
        sfu_process=settings.sfu_process,
        ice_servers=settings.ice_servers,
    )


def announce(settings: Settings) -> None:
    """The start-up lines: where to open the app, and what other machines need."""
    scheme = 'https' if settings.tls_enabled else 'http'
    shown_host = '127.0.0.1' if settings.host in {'0.0.0.0', '::'} else settings.host
    log.info('Orange Telehealth is running: open %s://%s:%d/', scheme, shown_host, settings.port)
    log.info('Media: %s', 'Cloudflare Realtime SFU' if settings.uses_cloudflare else 'embedded SFU (no cloud account)')
    if not settings.uses_cloudflare:
        log.info(
            'Embedded SFU Calls API: %s://%s:%d/sfu/v1/apps/%s',
            scheme,
            shown_host,
            settings.port,
            sfu_credentials(settings)[0],
        )
        if settings.sfu_app_id_generated:
            log.info(
                'Embedded SFU credentials (generated, kept for the next start): %s (readable by this user only)',
                credentials_path(),
            )
        log.info('Embedded SFU Calls API access: SFU_API=%s', settings.sfu_api)
    if settings.room_access == 'open':
        log.warning("ROOM_ACCESS=open: anyone with a room's address enters it in any role (demos and tests only)")
    else:
        log.info('Room access: invite links and a waiting room (scripts/mint-invite mints a link)')
    if settings.sfu_simulate_loss:
        log.warning(
            'SFU_SIMULATE_LOSS=%s: the embedded SFU drops %.1f %% of forwarded packets (diagnostics only)',
            settings.sfu_simulate_loss,
            settings.sfu_simulate_loss * 100,
        )
    if not settings.tls_enabled:
        log.warning(
            'Other machines need https for camera access: set TLS_CERTFILE and TLS_KEYFILE to serve https '
            '(plain http works only on localhost).'
        )


def credentials_path() -> Path:
    return Path(os.environ.get('NICEGUI_STORAGE_PATH', '.nicegui')) / 'sfu-credentials.json'


def sfu_credentials(settings: Settings) -> tuple[str, str]:
    """The embedded SFU's app id and secret: configured, or generated once into a 0600 file (never printed)."""
    if not settings.sfu_app_id_generated:
        return settings.sfu_app_id, settings.sfu_app_secret.get_secret_value()
    path = credentials_path()
    try:
        kept = json.loads(path.read_text())
        return str(kept['SFU_APP_ID']), str(kept['SFU_APP_SECRET'])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {'SFU_APP_ID': settings.sfu_app_id, 'SFU_APP_SECRET': settings.sfu_app_secret.get_secret_value()}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, 'w') as file:
        json.dump(values, file)
    path.chmod(0o600)
    return values['SFU_APP_ID'], values['SFU_APP_SECRET']


def open_audit(settings: Settings) -> AuditLog:
    """The audit log at AUDIT_DB (default .nicegui/audit.db), client addresses keyed by AUDIT_SALT or a kept salt."""
    configured = settings.audit_salt.get_secret_value() if settings.audit_salt is not None else None
    return AuditLog.open(settings.audit_db or default_db_path(), client_salt=client_salt(configured))


def invite_secret(settings: Settings) -> str:
    """The secret that signs role invites: INVITE_SECRET, else generated once into .nicegui/invite-secret (0600)."""
    configured = settings.invite_secret.get_secret_value() if settings.invite_secret is not None else None
    return kept_secret(configured)


def storage_secret(settings: Settings) -> str:
    """The secret that signs NiceGUI's per-browser storage; kept across restarts so display names survive."""
    if settings.storage_secret is not None:
        return settings.storage_secret.get_secret_value()
    path = Path(os.environ.get('NICEGUI_STORAGE_PATH', '.nicegui')) / 'storage-secret'
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # 0600 from the start
    with os.fdopen(descriptor, 'w') as file:
        file.write(value)
    return value


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    log_format.configure(settings.log_level, settings.log_format)
    build(settings)
    ui.run(
        host=settings.host,
        port=settings.port,
        title='Orange Telehealth',
        favicon='🍊',
        reload=False,
        reconnect_timeout=RECONNECT_TIMEOUT,
        show=False,
        show_welcome_message=False,
        storage_secret=storage_secret(settings),
        ssl_certfile=str(settings.tls_certfile) if settings.tls_certfile else None,
        ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None,
    )


if __name__ in {'__main__', '__mp_main__'}:
    main()
