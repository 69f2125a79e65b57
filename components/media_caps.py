"""The MAX_WEBCAM_* caps as handed to the browser (no secrets: only numbers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class MediaCaps:
    """Camera limits every published or previewed camera honours."""

    max_bitrate: int = 1_200_000
    max_framerate: int = 24
    max_quality_level: int = 1080
    simulcast: bool = False

    def to_js(self) -> dict[str, Any]:
        """The shape `media_devices.js` expects."""
        return {
            'maxBitrate': self.max_bitrate,
            'maxFramerate': self.max_framerate,
            'maxQualityLevel': self.max_quality_level,
            'simulcast': self.simulcast,
        }
