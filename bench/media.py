"""Pre-encoded VP8 and Opus for the load generator: encode a few seconds once, then loop the packets.

aiortc's `RTCRtpSender` packetises an `av.Packet` returned by a track's `recv()` without encoding it, so a
publisher built on `LoopTrack` costs the generator only packetisation, SRTP and UDP.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from array import array
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000


@dataclass(frozen=True)
class Clip:
    """Encoded frames played in a loop at `period_s` each, timestamps advancing `ticks` per frame."""

    kind: str
    frames: list[bytes]
    keyframes: int
    period_s: float
    ticks: int
    clock_rate: int

    @property
    def bitrate_kbps(self) -> float:
        return sum(len(f) for f in self.frames) * 8 / (len(self.frames) * self.period_s) / 1000


def encode_vp8(*, width: int, height: int, fps: int, seconds: float, kbps: int, gop_s: float) -> Clip:
    """A moving blocky texture encoded with libvpx (realtime, no lag), a keyframe every `gop_s`."""
    ctx = av.CodecContext.create('libvpx', 'w')
    ctx.width, ctx.height, ctx.pix_fmt = width, height, 'yuv420p'
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.bit_rate = kbps * 1000
    ctx.gop_size = max(1, round(gop_s * fps))
    ctx.options = {'deadline': 'realtime', 'cpu-used': '8', 'lag-in-frames': '0', 'auto-alt-ref': '0'}
    rng = random.Random(7)
    block = 8
    # A texture twice as wide as the picture, in 8x8 blocks; each frame is a window moving right by 3 px.
    cells_w, cells_h = 2 * width // block, height // block
    rows = []
    for _ in range(cells_h):
        row = b''.join(bytes([rng.randrange(40, 216)]) * block for _ in range(cells_w))
        rows.extend([row] * block)
    chroma = bytes([128]) * (width // 2 * height // 2)
    frames: list[bytes] = []
    keyframes = 0
    count = round(seconds * fps)
    for i in range(count + 1):
        packets = []
        if i < count:
            frame = av.VideoFrame(width, height, 'yuv420p')
            shift = (i * 3) % width
            # Plus a patch of fresh noise per frame (incompressible), so that the bitrate is realistic.
            noise_w, noise_h, noise_x = width // 5, height // 4, (i * 7) % (width - width // 5)
            lines = [r[shift : shift + width] for r in rows]
            for y in range(noise_h):
                line = lines[y]
                lines[y] = line[:noise_x] + rng.randbytes(noise_w) + line[noise_x + noise_w :]
            luma = b''.join(lines)
            for plane, data in zip(frame.planes, (luma, chroma, chroma), strict=True):
                plane.update(_pad(data, plane.line_size, len(data) // plane.height, plane.height))
            frame.pts = i
            packets = ctx.encode(frame)
        else:
            packets = ctx.encode(None)
        for packet in packets:
            frames.append(bytes(packet))
            keyframes += bool(packet.is_keyframe)
    return Clip('video', frames, keyframes, 1 / fps, VIDEO_CLOCK // fps, VIDEO_CLOCK)


def encode_opus(*, seconds: float, kbps: int = 32) -> Clip:
    """A 440 Hz tone in 20 ms Opus frames."""
    ctx = av.CodecContext.create('libopus', 'w')
    ctx.sample_rate = AUDIO_CLOCK
    ctx.layout = 'stereo'
    ctx.format = 's16'
    ctx.bit_rate = kbps * 1000
    samples = 960
    frames: list[bytes] = []
    count = round(seconds / 0.02)
    for i in range(count + 1):
        if i < count:
            pcm = array('h')
            for n in range(samples):
                v = int(8000 * math.sin(2 * math.pi * 440 * (i * samples + n) / AUDIO_CLOCK))
                pcm.extend((v, v))
            frame = av.AudioFrame(format='s16', layout='stereo', samples=samples)
            frame.planes[0].update(pcm.tobytes())
            frame.sample_rate = AUDIO_CLOCK
            frame.pts = i * samples
            frame.time_base = Fraction(1, AUDIO_CLOCK)
            packets = ctx.encode(frame)
        else:
            packets = ctx.encode(None)
        frames.extend(bytes(p) for p in packets)
    return Clip('audio', frames, len(frames), 0.02, samples, AUDIO_CLOCK)


def _pad(data: bytes, line_size: int, width: int, height: int) -> bytes:
    if line_size == width:
        return data
    pad = bytes(line_size - width)
    return b''.join(data[r * width : (r + 1) * width] + pad for r in range(height))


class LoopTrack(MediaStreamTrack):
    """Returns the clip's encoded frames as `av.Packet`s in real time, looping; aiortc sends them unencoded."""

    def __init__(self, clip: Clip) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self._start: float | None = None
        self._n = random.randrange(len(clip.frames)) if clip.kind == 'audio' else 0

    async def recv(self) -> Any:
        if self.readyState != 'live':
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now - self._n * self.clip.period_s
        wait = self._start + self._n * self.clip.period_s - now
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self.clip.frames[self._n % len(self.clip.frames)])
        packet.pts = self._n * self.clip.ticks
        packet.time_base = Fraction(1, self.clip.clock_rate)
        self._n += 1
        return packet
