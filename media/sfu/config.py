"""Settings of the embedded SFU."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc import RTCIceServer

MAX_SIMULATED_LOSS = 0.5


@dataclass(kw_only=True)
class SfuConfig:
    """What the composition root passes to ``EmbeddedSFU``.

    :param ice_hosts: host addresses offered as ICE candidates (tests use ``['127.0.0.1']``); applies process-wide.
    :param ice_servers: STUN/TURN servers for the SFU's peer connections; empty means none (never Google's STUN).
    :param simulate_loss: diagnostic only: the fraction of forwarded RTP packets dropped per subscriber (0 to
        ``MAX_SIMULATED_LOSS``), to see loss indicators without a lossy network.
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
    simulate_loss: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.simulate_loss <= MAX_SIMULATED_LOSS:
            raise ValueError(f'simulate_loss must be from 0 to {MAX_SIMULATED_LOSS}, got {self.simulate_loss}')
