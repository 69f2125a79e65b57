"""``EmbeddedSFU``: the composition of bookkeeping, peer sessions, forwarding and the HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette

from . import aiortc_glue
from .api import create_app
from .config import SfuConfig
from .forwarder import Counters
from .service import CallsService


class EmbeddedSFU:
    """A Calls-compatible SFU inside this process that forwards RTP without decoding or re-encoding.

    Serve ``asgi_app`` (e.g. mounted at ``/sfu/v1``); call ``close()`` on shutdown.
    """

    def __init__(self, config: SfuConfig) -> None:
        aiortc_glue.assert_compatible()
        aiortc_glue.use_host_addresses(config.ice_hosts)
        self.config = config
        self.counters = Counters()
        self.service = CallsService(config, self.counters, _now)
        self._app = create_app(self.service)

    @property
    def asgi_app(self) -> Starlette:
        """The Calls API; the garbage collector starts with the first request."""
        return self._app

    def stats(self) -> dict[str, Any]:
        """Counts of sessions, publications and subscriptions, and forwarding counters."""
        c = self.counters
        return {
            **self.service.registry.counts(),
            'peer_connections': sum(p.pc is not None for p in self.service.peers.values()),
            'packets_in': c.packets_in,
            'forwarded_packets': c.packets_out,
            'forwarded_bytes': c.bytes_out,
            'keyframe_requests': c.keyframe_requests,
            'keyframe_cache_replays': c.cache_replays,
            'simulated_drops': c.simulated_drops,
        }

    async def close(self) -> None:
        """Close every peer connection and stop background tasks."""
        await self.service.lifecycle.close_all()


def _now() -> float:
    return asyncio.get_running_loop().time()
