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
    :param media_timeout_s: a publication with no RTP for this long is closed and its subscribers' tracks end.
    :param session_timeout_s: a session never connected this long after its creation is removed.
    :param answer_timeout_s: an SFU offer (a pull) unanswered this long is dropped: its subscriptions end and the
        session accepts requests again (until then, other mutations get 406 and a rejected answer may be retried).
    :param recycle_mlines: a new pull of kind K reuses the m-line (mid) of a closed subscription of kind K that the
        client closed as ``inactive`` (or that an unanswered offer dropped), with fresh SSRCs, instead of adding one:
        a pull session's m-lines stay bounded. Browsers (Chromium, so ``media_client.js`` and partytracks) follow the
        SSRC change on a re-offered m-line; aiortc 1.16 as a client does not on its own (see
        ``tests/integration/sfu_wire.follow_recycled``): such a client closes with ``force`` or stops the m-line.
    :param simulate_loss: diagnostic only: the fraction of forwarded RTP packets dropped per subscriber (0 to
        ``MAX_SIMULATED_LOSS``), to see loss indicators without a lossy network.
    """

    app_id: str
    app_secret: str = field(repr=False)  # never in a repr or log line
    ice_hosts: list[str] = field(default_factory=lambda: ['127.0.0.1'])
    ice_servers: list[RTCIceServer] = field(default_factory=list)
    media_timeout_s: float = 30.0
    session_timeout_s: float = 30.0
    answer_timeout_s: float = 15.0
    empty_track_wait_s: float = 8.0
    connect_wait_s: float = 5.0
    keyframe_cache_packets: int = 600
    recycle_mlines: bool = True
    simulate_loss: float = 0.0

    def __post_init__(self) -> None:
        for name in ('media_timeout_s', 'session_timeout_s', 'answer_timeout_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be positive, got {getattr(self, name)}')
        for name in ('empty_track_wait_s', 'connect_wait_s'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'{name} must not be negative, got {getattr(self, name)}')
        if not 0.0 <= self.simulate_loss <= MAX_SIMULATED_LOSS:
            raise ValueError(f'simulate_loss must be from 0 to {MAX_SIMULATED_LOSS}, got {self.simulate_loss}')
