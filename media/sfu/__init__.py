"""The embedded, Calls-compatible SFU: RTP-level forwarding on aiortc, no decoding or re-encoding."""

from __future__ import annotations

from .config import SfuConfig
from .sfu import EmbeddedSFU

__all__ = ['EmbeddedSFU', 'SfuConfig']
