"""Recording the pages and putting the videos together, with PyAV only (no external ffmpeg binary).

- `Recorder` takes a page's frames through Playwright's CDP session (`Page.startScreencast`: JPEG frames with their
  wall-clock time, written to disk as they come). Playwright's own `record_video` needs a separate ffmpeg build that
  Playwright downloads, which a machine without that download cannot use.
- `encode_role` turns one page's frames into a constant-rate H.264 `.mp4` on the demo's common timeline (from the
  demo's start to its end; black before the page existed), so every role's video lines up with every other.
- `composite` decodes the role videos and puts them side by side, frame by frame, into one H.264 `.mp4`.
- `frame_pngs` writes frames of a video as PNGs (for the README); `frames_at` and `luma` read frames (for tests).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.frame import PictureType, VideoFrame

WIDTH, HEIGHT = 960, 540  # each role's video (the pages' 1280 x 720 viewport, scaled)


@dataclass(kw_only=True)
class Recorder:
    """Writes the screencast frames of one page into `folder` (`NNNNNN.jpg` + `frames.jsonl`)."""

    page: Any
    folder: Path
    frames: int = 0
    _index: Any = None
    _cdp: Any = None
    _stopped: bool = field(default=False)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._index = (self.folder / 'frames.jsonl').open('w')
        self._cdp = self.page.context.new_cdp_session(self.page)
        self._cdp.on('Page.screencastFrame', self._frame)
        self._cdp.send(
            'Page.startScreencast',
            {'format': 'jpeg', 'quality': 80, 'maxWidth': WIDTH, 'maxHeight': HEIGHT, 'everyNthFrame': 1},
        )

    def _frame(self, event: dict[str, Any]) -> None:
        if self._stopped:
            return
        try:
            self._cdp.send('Page.screencastFrameAck', {'sessionId': event['sessionId']})
        except Exception:  # the page is closing
            return
        name = f'{self.frames:06d}.jpg'
        (self.folder / name).write_bytes(base64.b64decode(event['data']))
        self._index.write(json.dumps({'t': event['metadata'].get('timestamp'), 'file': name}) + '\n')
        self.frames += 1

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self._cdp.send('Page.stopScreencast')
        except Exception:  # the page is already gone
            pass
        if self._index is not None:
            self._index.close()


def _jpeg_frames(folder: Path) -> list[tuple[float, Path]]:
    frames = []
    index = folder / 'frames.jsonl'
    if index.exists():
        for line in index.read_text().splitlines():
            item = json.loads(line)
            if isinstance(item.get('t'), int | float):
                frames.append((float(item['t']), folder / item['file']))
    frames.sort(key=lambda f: f[0])
    return frames


def _decode_jpeg(path: Path) -> VideoFrame | None:
    codec = av.CodecContext.create('mjpeg', 'r')
    try:
        for frame in codec.decode(av.Packet(path.read_bytes())):
            return frame.reformat(width=WIDTH, height=HEIGHT, format='yuv420p')
        for frame in codec.decode(None):
            return frame.reformat(width=WIDTH, height=HEIGHT, format='yuv420p')
    except av.FFmpegError:
        return None
    return None


def _black(width: int = WIDTH, height: int = HEIGHT) -> VideoFrame:
    frame = VideoFrame(width, height, 'yuv420p')
    for index, value in enumerate((16, 128, 128)):
        plane = frame.planes[index]
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


X264 = {'preset': 'veryfast', 'crf': '26'}


def encode_role(frames_folder: Path, out: Path, *, start: float, end: float, fps: int) -> int:
    """Encode one page's screencast as H.264 from wall-clock `start` to `end`; returns the frames written."""
    frames = _jpeg_frames(frames_folder)
    count = max(1, int((end - start) * fps))
    with av.open(str(out), 'w') as container:
        stream = container.add_stream('libx264', rate=fps, options=X264)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, 'yuv420p'
        current = _black()
        position = 0
        for number in range(count):
            at = start + number / fps
            advanced = None
            while position < len(frames) and frames[position][0] <= at:
                advanced = frames[position][1]
                position += 1
            if advanced is not None:
                current = _decode_jpeg(advanced) or current
            current.pts = number
            current.time_base = Fraction(1, fps)
            current.pict_type = PictureType.NONE  # a decoded JPEG says "I": x264 would make every frame a keyframe
            for packet in stream.encode(current):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return count


def decode(path: Path) -> Iterator[VideoFrame]:
    """Every frame of a video, in order."""
    with av.open(str(path)) as container:
        yield from container.decode(video=0)


def _rows(frame: VideoFrame) -> list[list[bytes]]:
    """Each plane's rows without padding (yuv420p)."""
    result = []
    for index, plane in enumerate(frame.planes):
        width = frame.width if index == 0 else (frame.width + 1) // 2
        height = frame.height if index == 0 else (frame.height + 1) // 2
        data = bytes(plane)
        stride = plane.line_size
        result.append([data[row * stride : row * stride + width] for row in range(height)])
    return result


def side_by_side(frames: list[VideoFrame]) -> VideoFrame:
    """One frame holding `frames` left to right (all yuv420p, the same height)."""
    parts = [_rows(f.reformat(format='yuv420p') if f.format.name != 'yuv420p' else f) for f in frames]
    width = sum(f.width for f in frames)
    out = VideoFrame(width, frames[0].height, 'yuv420p')
    for index, plane in enumerate(out.planes):
        stride = plane.line_size
        rows = [b''.join(part[index][row] for part in parts) for row in range(len(parts[0][index]))]
        plane.update(b''.join(row + bytes(stride - len(row)) for row in rows))
    return out


def composite(videos: list[Path], out: Path, *, fps: int) -> int:
    """Decode the role videos (same rate and length) and encode them side by side as H.264; returns frames."""
    streams = [decode(path) for path in videos]
    written = 0
    with av.open(str(out), 'w') as container:
        stream = container.add_stream('libx264', rate=fps, options=X264)
        stream.width, stream.height, stream.pix_fmt = WIDTH * len(videos), HEIGHT, 'yuv420p'
        last: list[VideoFrame | None] = [None] * len(videos)
        while True:
            ended = 0
            for index, frames in enumerate(streams):
                frame = next(frames, None)
                if frame is None:
                    ended += 1
                else:
                    last[index] = frame.reformat(width=WIDTH, height=HEIGHT, format='yuv420p')
            if ended == len(streams):
                break
            frame = side_by_side([f if f is not None else _black() for f in last])
            frame.pts = written
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
            written += 1
        for packet in stream.encode(None):
            container.mux(packet)
    return written


def png(frame: VideoFrame) -> bytes:
    codec = av.CodecContext.create('png', 'w')
    codec.width, codec.height, codec.pix_fmt = frame.width, frame.height, 'rgb24'
    rgb = frame.reformat(format='rgb24')
    return b''.join(bytes(p) for p in codec.encode(rgb)) + b''.join(bytes(p) for p in codec.encode(None))


def frames_at(path: Path, seconds: list[float]) -> list[VideoFrame | None]:
    """The frames of video `path` shown at each of `seconds` (the last frame at or before it), in one pass."""
    order = sorted(range(len(seconds)), key=lambda i: seconds[i])
    result: list[VideoFrame | None] = [None] * len(seconds)
    previous = None
    position = 0
    for frame in decode(path):
        while position < len(order) and frame.time is not None and frame.time > seconds[order[position]] + 1e-6:
            result[order[position]] = previous
            position += 1
        if position == len(order):
            break
        previous = frame
    for index in order[position:]:  # after the last frame: the last frame
        result[index] = previous
    return result


def frame_pngs(path: Path, moments: list[tuple[float, Path]]) -> int:
    """Write the frames of video `path` at the given seconds as PNGs; returns how many were written."""
    written = 0
    for frame, (_, out) in zip(frames_at(path, [at for at, _ in moments]), moments, strict=True):
        if frame is not None:
            out.write_bytes(png(frame))
            written += 1
    return written


def luma(frame: VideoFrame, box: tuple[int, int, int, int], step: int = 4) -> list[int]:
    """Sampled brightness (Y) of the pixels in `box` (x, y, width, height), every `step` pixels."""
    x0, y0, width, height = box
    plane = frame.planes[0]
    data = bytes(plane)
    stride = plane.line_size
    x1, y1 = min(frame.width, x0 + width), min(frame.height, y0 + height)
    return [data[y * stride + x] for y in range(max(0, y0), y1, step) for x in range(max(0, x0), x1, step)]
