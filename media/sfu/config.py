"""Settings of the embedded SFU."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc import RTCIceServer


@dataclass(kw_only=True)
class SfuConfig:
    """What the composition root passes to ``EmbeddedSFU``.

    :param ice_hosts: host addresses offered as ICE candidates (tests use ``['127.0.0.1']``); applies process-wide.
    :param ice_servers: STUN/TURN servers for the SFU's peer connections; empty means none (never Google's STUN).
    """

    app_id: str
    app_secret: str
    ice_hosts: list[str] = field(default_factory=lambda: ['127.0.0.1'])
    ice_servers: list[RTCIceServer] = field(default_factory=list)
    media_timeout_s: float = 30.0
    session_timeout_s: float = 30.0
    empty_track_wait_s: float = 8.0
    connect_wait_s: float = 5.0
    keyframe_cache_packets: int = 600
