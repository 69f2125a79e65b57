"""The media back end: Cloudflare Calls or the embedded SFU, behind the same `CallsClient`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import ifaddr
from aiortc import RTCIceServer

from media.calls_api import CallsError, IceServer, browser_ice_servers
from media.calls_client import CallsClient, TurnClient
from media.sfu import EmbeddedSFU, SfuConfig
from media.sfu import process as sfu_process

log = logging.getLogger(__name__)

EMBEDDED_BASE_URL = 'http://embedded-sfu'


@dataclass(kw_only=True)
class MediaBackendConfig:
    """What the composition root passes in (plain values, so this module never reads the environment)."""

    calls_app_id: str | None = None
    calls_app_secret: str | None = field(default=None, repr=False)  # secrets never in a repr or log line
    calls_api_url: str = 'https://rtc.live.cloudflare.com/v1'
    turn_service_id: str | None = None
    turn_service_token: str | None = field(default=None, repr=False)
    sfu_app_id: str = 'embedded'
    sfu_app_secret: str = field(default='', repr=False)
    sfu_ice_hosts: list[str] = field(default_factory=list)
    sfu_simulate_loss: float = 0.0
    sfu_media_timeout: float = 30.0  # seconds without media before the embedded SFU drops a published track
    sfu_process: str = 'inline'  # 'separate': the embedded SFU runs in its own process, reached over loopback
    ice_servers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(kw_only=True)
class MediaBackend:
    """One Calls client for pages, the embedded SFU when there is one, and ICE servers for browsers."""

    kind: str
    client: CallsClient
    http: httpx.AsyncClient
    sfu: EmbeddedSFU | None = None
    sfu_child: sfu_process.SfuProcess | None = None  # SFU_PROCESS=separate
    turn: TurnClient | None = None
    static_ice_servers: list[dict[str, Any]] = field(default_factory=list)

    async def browser_ice_servers(self) -> list[dict[str, Any]]:
        """ICE servers for a page's peer connections: TURN credentials when configured, else the static list."""
        servers = list(self.static_ice_servers)
        if self.turn is not None:
            try:
                fresh = await self.turn.generate_ice_servers()
            except CallsError as error:
                log.warning('TURN credentials unavailable (%s); continuing without TURN', type(error).__name__)
            else:
                servers += [s.to_wire() for s in browser_ice_servers(fresh)]
        return servers

    async def close(self) -> None:
        """Close peer connections (embedded SFU) and the HTTP client."""
        if self.sfu is not None:
            await self.sfu.close()
        await self.http.aclose()
        if self.sfu_child is not None:
            await self.sfu_child.close()


def create_backend(config: MediaBackendConfig) -> MediaBackend:
    """Cloudflare when both CALLS_APP_ID and CALLS_APP_SECRET are given, else the embedded SFU."""
    turn = None
    if config.turn_service_id and config.turn_service_token:
        turn_http = httpx.AsyncClient(base_url=config.calls_api_url)
        turn = TurnClient(turn_http, config.turn_service_id, config.turn_service_token)
    if config.calls_app_id and config.calls_app_secret:
        http = httpx.AsyncClient(base_url=config.calls_api_url)
        client = CallsClient(http, config.calls_app_id, config.calls_app_secret)
        return MediaBackend(
            kind='cloudflare', client=client, http=http, turn=turn, static_ice_servers=config.ice_servers
        )
    if config.sfu_process == 'separate':
        child = sfu_process.start(
            sfu_process.child_env(
                app_id=config.sfu_app_id,
                app_secret=config.sfu_app_secret,
                ice_hosts=config.sfu_ice_hosts or machine_addresses(),
                ice_servers=config.ice_servers,
                media_timeout_s=config.sfu_media_timeout,
                simulate_loss=config.sfu_simulate_loss,
            )
        )
        client = CallsClient(child.http, config.sfu_app_id, config.sfu_app_secret)
        log.info('Embedded SFU: its own process (pid %d), Calls API on 127.0.0.1:%d', child.pid, child.port)
        return MediaBackend(
            kind='embedded',
            client=client,
            http=child.http,
            sfu_child=child,
            turn=turn,
            static_ice_servers=config.ice_servers,
        )
    sfu = EmbeddedSFU(
        SfuConfig(
            app_id=config.sfu_app_id,
            app_secret=config.sfu_app_secret,
            ice_hosts=config.sfu_ice_hosts or machine_addresses(),
            ice_servers=[rtc_ice_server(s) for s in config.ice_servers],
            simulate_loss=config.sfu_simulate_loss,
            media_timeout_s=config.sfu_media_timeout,
        )
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url=EMBEDDED_BASE_URL)
    client = CallsClient(http, config.sfu_app_id, config.sfu_app_secret)
    return MediaBackend(
        kind='embedded', client=client, http=http, sfu=sfu, turn=turn, static_ice_servers=config.ice_servers
    )


def machine_addresses() -> list[str]:
    """This machine's IPv4 addresses (loopback first), so LAN browsers can reach the embedded SFU."""
    addresses = ['127.0.0.1']
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and ip.ip not in addresses and not ip.ip.startswith('169.254.'):
                addresses.append(ip.ip)
    return addresses


def rtc_ice_server(server: dict[str, Any]) -> RTCIceServer:
    """A settings entry (`{urls, username?, credential?}`) as aiortc's type."""
    parsed = IceServer.model_validate(server)
    return RTCIceServer(urls=parsed.url_list, username=parsed.username, credential=parsed.credential)
