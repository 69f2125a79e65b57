"""aiortc test peers for the embedded SFU: a publisher sending synthetic VP8 + Opus, and a subscriber."""

from __future__ import annotations

import asyncio
import fractions
from dataclasses import dataclass, field

import av
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.calls_api import SessionDescription, TrackObject, TracksRequest, TracksResponse
from media.calls_client import CallsClient


def new_pc() -> RTCPeerConnection:
    """A test peer: no ICE servers at all (never Google STUN), max-bundle like browsers."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class PatternVideoTrack(VideoStreamTrack):
    """Small, changing frames (cheap to encode) so VP8 has real content to carry."""

    def __init__(self, width: int = 160, height: int = 120) -> None:
        super().__init__()
        self.width, self.height, self.count = width, height, 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=self.width, height=self.height, format='yuv420p')
        self.count += 1
        for i, plane in enumerate(frame.planes):
            value = (self.count * 7 + i * 60) % 256
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


def description(pc: RTCPeerConnection) -> SessionDescription:
    local = pc.localDescription
    return SessionDescription(type=local.type, sdp=local.sdp)  # type: ignore[arg-type]


async def wait_connected(pc: RTCPeerConnection, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while pc.connectionState != 'connected':
            if pc.connectionState in ('failed', 'closed'):
                raise AssertionError(f'peer connection {pc.connectionState}')
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


@dataclass
class Publisher:
    pc: RTCPeerConnection
    session_id: str
    mids: dict[str, str]  # trackName -> mid
    response: TracksResponse
    transceivers: dict[str, RTCRtpTransceiver] = field(default_factory=dict)


async def publish(
    client: CallsClient, *, audio: MediaStreamTrack | None = None, video: MediaStreamTrack | None = None
) -> Publisher:
    """New session, push 'a' (Opus) and 'v' (VP8) with an offer, apply the answer, wait until connected."""
    session_id = (await client.new_session()).session_id
    pc = new_pc()
    ta = pc.addTransceiver(audio or AudioStreamTrack(), direction='sendonly')
    tv = pc.addTransceiver(video or PatternVideoTrack(), direction='sendonly')
    await pc.setLocalDescription(await pc.createOffer())
    assert ta.mid is not None and tv.mid is not None
    tracks = [
        TrackObject(location='local', mid=ta.mid, track_name='a'),
        TrackObject(location='local', mid=tv.mid, track_name='v'),
    ]
    response = await client.new_tracks(session_id, TracksRequest(session_description=description(pc), tracks=tracks))
    assert response.session_description is not None
    await pc.setRemoteDescription(RTCSessionDescription(**response.session_description.model_dump()))
    await wait_connected(pc)
    return Publisher(pc, session_id, {'a': ta.mid, 'v': tv.mid}, response, {'a': ta, 'v': tv})


@dataclass
class Subscriber:
    pc: RTCPeerConnection
    session_id: str
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)  # by mid
    track_event: asyncio.Event = field(default_factory=asyncio.Event)


async def new_subscriber(client: CallsClient) -> Subscriber:
    sub = Subscriber(new_pc(), (await client.new_session()).session_id)

    @sub.pc.on('track')
    def on_track(track: MediaStreamTrack) -> None:
        for t in sub.pc.getTransceivers():
            if t.receiver.track is track and t.mid is not None:
                sub.tracks[t.mid] = track
        sub.track_event.set()

    return sub


async def pull(client: CallsClient, sub: Subscriber, publisher_id: str, names: list[str]) -> TracksResponse:
    """Pull without an offer, then answer the SFU's offer via renegotiate."""
    tracks = [TrackObject(location='remote', session_id=publisher_id, track_name=n) for n in names]
    response = await client.new_tracks(sub.session_id, TracksRequest(tracks=tracks))
    if response.requires_immediate_renegotiation:
        await answer(client, sub, response)
    return response


async def answer(client: CallsClient, sub: Subscriber, response: TracksResponse) -> None:
    assert response.session_description is not None
    await sub.pc.setRemoteDescription(RTCSessionDescription(**response.session_description.model_dump()))
    await sub.pc.setLocalDescription(await sub.pc.createAnswer())
    assert (await client.renegotiate(sub.session_id, description(sub.pc))).to_wire() == {}


async def first_frame(track: MediaStreamTrack, timeout: float = 10.0) -> av.VideoFrame | av.AudioFrame:
    """The first decoded frame with real content."""

    async def get() -> av.VideoFrame | av.AudioFrame:
        while True:
            frame = await track.recv()
            if isinstance(frame, av.VideoFrame) and frame.width > 0:
                return frame
            if isinstance(frame, av.AudioFrame) and frame.samples > 0:
                return frame

    return await asyncio.wait_for(get(), timeout)


async def track_for(sub: Subscriber, mid: str, timeout: float = 10.0) -> MediaStreamTrack:
    async def get() -> MediaStreamTrack:
        while mid not in sub.tracks:
            sub.track_event.clear()
            await sub.track_event.wait()
        return sub.tracks[mid]

    return await asyncio.wait_for(get(), timeout)


_ = fractions
