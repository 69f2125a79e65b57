"""Codec facts the forwarder needs, read from RTP payloads and SDP: keyframe starts and codec matching."""

from __future__ import annotations

import functools

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription

FORWARDABLE = ('video/vp8', 'video/h264', 'audio/opus')


def is_keyframe_start(mime_type: str, payload: bytes) -> bool:
    """True if this RTP payload is the first packet of a keyframe (VP8: RFC 7741, H264: RFC 6184)."""
    if mime_type == 'video/vp8':
        return _vp8_keyframe_start(payload)
    if mime_type == 'video/h264':
        return _h264_keyframe_start(payload)
    return False


def _vp8_keyframe_start(payload: bytes) -> bool:
    if len(payload) < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S bit set and partition id 0
        return False
    i = 1
    if first & 0x80:  # extended control bits
        ext = payload[1]
        i = 2
        if ext & 0x80:  # picture id
            if i >= len(payload):
                return False
            i += 2 if payload[i] & 0x80 else 1
        if ext & 0x40:  # TL0PICIDX
            i += 1
        if ext & 0x30:  # TID / KEYIDX
            i += 1
    return i < len(payload) and not payload[i] & 0x01


def _h264_keyframe_start(payload: bytes) -> bool:
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A
        i = 1
        while i + 2 < len(payload):
            size = int.from_bytes(payload[i : i + 2], 'big')
            if payload[i + 2] & 0x1F in (5, 7):
                return True
            i += 2 + size
        return False
    if nal == 28 and len(payload) > 1:  # FU-A start of an IDR
        return bool(payload[1] & 0x80) and payload[1] & 0x1F == 5
    return False


def negotiated_codec(sdp: str, mid: str) -> tuple[str, dict[str, str | int]] | None:
    """The codec (mime type, fmtp parameters) negotiated first for ``mid`` in a local description.

    Publishing N tracks of one offer asks N times about the same answer: it is parsed once (not once per mid, which
    made the work quadratic in what a client sends).
    """
    return _codecs_by_mid(sdp).get(mid)


@functools.lru_cache(maxsize=8)
def _codecs_by_mid(sdp: str) -> dict[str, tuple[str, dict[str, str | int]]]:
    found: dict[str, tuple[str, dict[str, str | int]]] = {}
    for media in SessionDescription.parse(sdp).media:
        for codec in media.rtp.codecs:
            if codec.mimeType.lower() in FORWARDABLE and media.rtp.muxId is not None:
                found.setdefault(
                    media.rtp.muxId, (codec.mimeType, {k: v for k, v in codec.parameters.items() if v is not None})
                )
                break
    return found


def preferences_for(kind: str, mime_type: str, parameters: dict[str, str | int]) -> list[RTCRtpCodecCapability]:
    """Codec preferences that make a subscriber negotiate exactly the publication's codec (plus RTX)."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    same = [c for c in caps if c.mimeType.lower() == mime_type.lower()]
    exact = [c for c in same if _fmtp_match(c.parameters, parameters)]
    chosen = (exact or same)[:1]
    rtx = [c for c in caps if c.mimeType.lower() == f'{kind}/rtx']
    return chosen + rtx if chosen else []


def _fmtp_match(a: dict[str, str | int | None], b: dict[str, str | int]) -> bool:
    keys = ('packetization-mode', 'profile-level-id')
    return all(str(a.get(k, '')).lower() == str(b.get(k, '')).lower() for k in keys)
