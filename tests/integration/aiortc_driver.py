"""An aiortc `MediaDriver` for tests: what components/js/media_client.js does in a browser, in Python.

Two peer connections like the browser client — 'push' (our sendonly tracks) and 'pull' (tracks from others) —
always with `iceServers=[]` (loopback only, never a public STUN server) and max-bundle. Local tracks are keyed like
the browser's ('camera', 'mic', ...): synthetic VP8 video with changing frames and an Opus tone. Pulled tracks are
recorded by mid -> tile key, and every received track is drained by a task that counts decoded frames per key, so
a test can await "a new decoded frame for this key".

The process-wide aioice host-address patch (127.0.0.1 only) is installed by the embedded SFU itself
(`media/sfu/aiortc_glue.use_host_addresses`, see tests/integration/conftest.py); peers created here rely on it.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import math
import time

import av
from aiortc import AudioStreamTrack, MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from media.negotiation import PushOffer

from .sfu_peers import PatternVideoTrack, new_pc
from .sfu_wire import follow_recycled

SAMPLE_RATE = 8000
PTIME = 0.02


class ToneAudioTrack(AudioStreamTrack):
    """A 440 Hz sine tone (mono, 8 kHz, 20 ms frames), paced in real time like aiortc's silent AudioStreamTrack."""

    def __init__(self, frequency: float = 440.0) -> None:
        super().__init__()
        self.samples = int(PTIME * SAMPLE_RATE)
        period = [int(8000 * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)) for i in range(SAMPLE_RATE)]
        self._wave = array.array('h', period)
        self._position = 0
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != 'live':
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += self.samples
            wait = self._start + self._pts / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        chunk = self._wave[self._position : self._position + self.samples]
        self._position = (self._position + self.samples) % SAMPLE_RATE
        frame = av.AudioFrame(format='s16', layout='mono', samples=self.samples)
        frame.planes[0].update(chunk.tobytes())
        frame.pts = self._pts
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


class AiortcDriver:
    """Implements `media.negotiation.MediaDriver` with two aiortc peer connections."""

    def __init__(self, name: str = 'page') -> None:
        self.name = name
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.local: dict[str, MediaStreamTrack] = {}  # key -> local track (kept across reset, like capture)
        self.transceivers: dict[str, RTCRtpTransceiver] = {}  # key -> push transceiver
        self.pull_mids: dict[str, str] = {}  # mid -> tile key
        self.frames: dict[str, int] = {}  # tile key -> decoded frames with content
        self.connection_states: list[tuple[str, str]] = []
        self.resets: list[str] = []  # roles whose peer connection was dropped by reset_push / reset_pull
        self._changed = asyncio.Condition()
        # aiortc stops a sender's track when its peer connection closes; a browser keeps capturing. Each sender
        # gets a relay proxy, so capture survives `reset()` and is re-pushed after recovery.
        self._relay = MediaRelay()
        self._drains: set[asyncio.Task[None]] = set()
        self._drained: set[int] = set()  # ids of received tracks being drained

    # ---- local capture ------------------------------------------------------------------------------------------

    def add_local(self, key: str, kind: str) -> MediaStreamTrack:
        """'video': synthetic VP8 source with changing frames; 'audio': an Opus tone."""
        if kind not in ('video', 'audio'):
            raise ValueError(f'unknown kind {kind!r}')
        track: MediaStreamTrack = PatternVideoTrack() if kind == 'video' else ToneAudioTrack()
        self.local[key] = track
        return track

    def close_local(self, key: str) -> None:
        """Stop capture for `key`, like media_client.js `closeLocal`: the pushed transceiver keeps its m-line and
        sends nothing; a later push of `key` gets a new transceiver."""
        track = self.local.pop(key, None)
        if track is not None:
            track.stop()
        transceiver = self.transceivers.pop(key, None)
        if transceiver is not None and not transceiver.stopped:
            transceiver.sender.replaceTrack(None)

    # ---- peer connections ---------------------------------------------------------------------------------------

    def pc(self, role: str) -> RTCPeerConnection:
        if role in self.pcs:
            return self.pcs[role]
        pc = new_pc()  # RTCConfiguration(iceServers=[], bundlePolicy=max-bundle)

        @pc.on('connectionstatechange')
        def on_state() -> None:
            self.connection_states.append((role, pc.connectionState))

        if role == 'pull':

            @pc.on('track')
            def on_track(track: MediaStreamTrack) -> None:
                transceiver = next((t for t in pc.getTransceivers() if t.receiver.track is track), None)
                if transceiver is not None:
                    self._start_drain(transceiver)

        self.pcs[role] = pc
        return pc

    def _start_drain(self, transceiver: RTCRtpTransceiver) -> None:
        track = transceiver.receiver.track
        if track is None or track.readyState != 'live' or id(track) in self._drained:
            return
        self._drained.add(id(track))
        task = asyncio.ensure_future(self._drain(transceiver, track))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _drain(self, transceiver: RTCRtpTransceiver, track: MediaStreamTrack) -> None:
        """Decode everything arriving on `track`, counting frames with real content under the tile key its mid
        carries at that moment (like the browser, an m-line the SFU recycles carries another tile later)."""
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                key = self.pull_mids.get(transceiver.mid or '')
                if key is not None and (
                    (isinstance(frame, av.VideoFrame) and frame.width > 0)
                    or (isinstance(frame, av.AudioFrame) and frame.samples > 0)
                ):
                    async with self._changed:
                        self.frames[key] = self.frames.get(key, 0) + 1
                        self._changed.notify_all()

    async def next_frames(self, key: str, count: int = 1, timeout: float = 10.0) -> int:
        """Wait until `count` more frames for the tile `key` have been decoded (from now); returns the total."""
        start = self.frames.get(key, 0)
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.frames.get(key, 0) >= start + count), timeout)
        return self.frames[key]

    def mid_of(self, key: str) -> str | None:
        """The pull mid currently carrying the tile `key`."""
        return next((mid for mid, k in self.pull_mids.items() if k == key), None)

    # ---- MediaDriver: push ----------------------------------------------------------------------------------------

    async def create_push_offer(self, keys: list[str]) -> PushOffer:
        pc = self.pc('push')
        for key in keys:
            if key not in self.local:
                raise ValueError(f'nothing captured for {key}')
            if key not in self.transceivers:
                source = self._relay.subscribe(self.local[key], buffered=False)
                self.transceivers[key] = pc.addTransceiver(source, direction='sendonly')
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers candidates here
        return PushOffer(sdp=pc.localDescription.sdp, mids={key: str(self.transceivers[key].mid) for key in keys})

    async def apply_push_answer(self, sdp: str) -> None:
        await self.pc('push').setRemoteDescription(RTCSessionDescription(sdp=sdp, type='answer'))

    async def wait_sending(self, keys: list[str], timeout: float) -> set[str]:
        deadline = time.monotonic() + timeout
        sending: set[str] = set()
        while time.monotonic() < deadline and len(sending) < len(keys):
            for key in keys:
                transceiver = self.transceivers.get(key)
                if key in sending or transceiver is None:
                    continue
                with contextlib.suppress(Exception):  # the transport may not exist yet
                    stats = await transceiver.sender.getStats()
                    if any(s.type == 'outbound-rtp' and s.bytesSent > 0 for s in stats.values()):
                        sending.add(key)
            if len(sending) < len(keys):
                await asyncio.sleep(0.02)
        return sending

    async def create_push_close_offer(self, keys: list[str]) -> str:
        pc = self.pc('push')
        for key in keys:
            transceiver = self.transceivers.pop(key, None)
            if transceiver is not None:
                await transceiver.stop()
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    # ---- MediaDriver: pull ----------------------------------------------------------------------------------------

    async def answer_pull(self, offer_sdp: str, mids: dict[str, str]) -> str:
        pc = self.pc('pull')
        self.pull_mids.update(mids)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type='offer'))
        for transceiver in pc.getTransceivers():  # a recycled m-line: receive on it again
            if transceiver.mid in mids and transceiver.direction == 'inactive':
                transceiver.direction = 'recvonly'
        await pc.setLocalDescription(await pc.createAnswer())
        follow_recycled(pc, offer_sdp, set(mids))  # new SSRCs on a recycled m-line, as Chromium follows them
        for transceiver in pc.getTransceivers():  # a track whose 'track' event fired before its tile was known
            if transceiver.mid in mids:
                self._start_drain(transceiver)
        return pc.localDescription.sdp

    async def create_pull_close_offer(self, mids: list[str]) -> str:
        """Like the browser: the closed m-lines become inactive (not stopped), so the SFU may recycle them."""
        pc = self.pc('pull')
        for transceiver in pc.getTransceivers():
            if transceiver.mid in mids:
                self.pull_mids.pop(transceiver.mid, None)
                transceiver.direction = 'inactive'
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def apply_pull_answer(self, sdp: str) -> None:
        await self.pc('pull').setRemoteDescription(RTCSessionDescription(sdp=sdp, type='answer'))

    async def drop_pushed(self, keys: list[str]) -> None:
        for key in keys:
            transceiver = self.transceivers.pop(key, None)
            if transceiver is not None and not transceiver.stopped:
                await transceiver.stop()

    async def drop_pulled(self, mids: list[str]) -> None:
        for mid in mids:
            self.pull_mids.pop(mid, None)

    async def reset_push(self) -> None:
        """Drop the push peer connection (its session is being rebuilt); local tracks are kept for re-pushing."""
        self.transceivers.clear()
        await self._drop_pc('push')

    async def reset_pull(self) -> None:
        """Drop the pull peer connection (its session is being rebuilt or rotated)."""
        self.pull_mids.clear()
        await self._drop_pc('pull')

    async def reset(self) -> None:
        """Drop both peer connections; local tracks are kept for re-pushing."""
        await self.reset_push()
        await self.reset_pull()

    async def _drop_pc(self, role: str) -> None:
        pc = self.pcs.pop(role, None)
        if pc is not None:
            self.resets.append(role)
            await pc.close()

    # ---- like media_client.js setLocalEnabled ---------------------------------------------------------------------

    def set_enabled(self, key: str, enabled: bool) -> None:
        """Switch `key` off (the sender sends nothing, as replaceTrack(null) in a browser) or on again."""
        transceiver = self.transceivers.get(key)
        if transceiver is None:
            return
        if enabled:
            transceiver.sender.replaceTrack(self._relay.subscribe(self.local[key], buffered=False))
        else:
            transceiver.sender.replaceTrack(None)

    def pull_mline_count(self) -> int:
        """m-lines in the pull peer connection's current remote description (0 without one)."""
        pc = self.pcs.get('pull')
        if pc is None or pc.remoteDescription is None:
            return 0
        return sum(line.startswith('m=') for line in pc.remoteDescription.sdp.splitlines())

    # ---- test helpers ---------------------------------------------------------------------------------------------

    async def fail(self) -> None:
        """Simulate a failed connection: close the peer connections under the page's feet (PageMedia not told)."""
        for pc in self.pcs.values():
            await pc.close()

    async def close(self) -> None:
        await self.reset()
        for track in self.local.values():
            track.stop()
        for task in list(self._drains):
            task.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
