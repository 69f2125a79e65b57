"""What an aiortc test subscriber gets on the wire from the SFU, and pull/close steps as our browser client does them.

The spy sits on the subscriber's (bundled) DTLS transport, after SRTP: every RTP packet and RTCP packet the SFU sends
is recorded with its SSRC, whichever receiver (if any) aiortc then routes it to. That is how the tests see a sender
going quiet.

``follow_recycled`` makes an aiortc *client* do what Chromium does when the SFU re-offers a closed m-line for a new
stream (fresh SSRCs, after an RTCP BYE ended the old one): aiortc 1.16 registers a receiver's SSRCs only the first time
it starts and stops its decoder for good on a BYE. Test-client code, touching aiortc's private receiver state.
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpreceiver import RemoteStreamTrack, decoder_worker
from aiortc.rtp import RtcpByePacket, RtcpPacket, RtcpSrPacket, RtpPacket

from media.calls_api import CloseTrackObject, CloseTracksRequest, TrackObject, TracksRequest, TracksResponse
from media.calls_client import CallsClient

from .sfu_peers import Subscriber, description


@dataclass
class WireSpy:
    """RTP and RTCP (SR, BYE) seen per SSRC, in arrival order."""

    rtp: dict[int, list[RtpPacket]] = field(default_factory=dict)
    sender_reports: dict[int, int] = field(default_factory=dict)
    byes: set[int] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def packets(self, ssrc: int) -> int:
        return len(self.rtp.get(ssrc, []))

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def spy_on(sub: Subscriber) -> WireSpy:
    """Record what reaches ``sub``'s transport from now on (call once its first transceiver exists)."""
    transport: Any = sub.pc.getTransceivers()[0].receiver.transport
    spy = WireSpy()
    handle_rtp, handle_rtcp = transport._handle_rtp_data, transport._handle_rtcp_data

    async def on_rtp(data: bytes, arrival_time_ms: int) -> None:
        try:
            packet = RtpPacket.parse(data, transport._rtp_header_extensions_map)
        except ValueError:
            packet = None
        if packet is not None:
            spy.rtp.setdefault(packet.ssrc, []).append(packet)
            spy.changed.set()
        await handle_rtp(data, arrival_time_ms=arrival_time_ms)

    async def on_rtcp(data: bytes) -> None:
        try:
            packets = RtcpPacket.parse(data)
        except ValueError:
            packets = []
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                spy.sender_reports[packet.ssrc] = spy.sender_reports.get(packet.ssrc, 0) + 1
            elif isinstance(packet, RtcpByePacket):
                spy.byes.update(packet.sources)
        spy.changed.set()
        await handle_rtcp(data)

    transport._handle_rtp_data = on_rtp
    transport._handle_rtcp_data = on_rtcp
    return spy


def media_sections(sdp: str) -> list[str]:
    return re.split(r'(?m)^(?=m=)', sdp)[1:]


def offered_ssrc(sdp: str, mid: str) -> int:
    """The first SSRC an SDP announces for ``mid``."""
    for section in media_sections(sdp):
        if re.search(rf'(?m)^a=mid:{re.escape(mid)}\r?$', section):
            match = re.search(r'(?m)^a=ssrc:(\d+) ', section)
            assert match, f'no a=ssrc for mid {mid}'
            return int(match.group(1))
    raise AssertionError(f'mid {mid} not in SDP')


def offered_ssrcs(sdp: str, mid: str) -> tuple[int, int | None]:
    """The media SSRC and the RTX SSRC (``a=ssrc-group:FID``) an SDP announces for ``mid``."""
    for section in media_sections(sdp):
        if re.search(rf'(?m)^a=mid:{re.escape(mid)}\r?$', section):
            fid = re.search(r'(?m)^a=ssrc-group:FID (\d+) (\d+)', section)
            if fid:
                return int(fid.group(1)), int(fid.group(2))
            return offered_ssrc(sdp, mid), None
    raise AssertionError(f'mid {mid} not in SDP')


def follow_recycled(pc: RTCPeerConnection, offer_sdp: str, mids: set[str]) -> list[MediaStreamTrack]:
    """After applying an SFU offer: let each already started receiver on ``mids`` take the stream now offered there.

    Routes the offered SSRCs to the receiver (aiortc only registers them on its first start) and, if an RTCP BYE
    stopped its decoder, starts a new decoder feeding a new track, announced with a ``track`` event as Chromium
    does when a transceiver receives again. Returns the new tracks.
    """
    new_tracks: list[MediaStreamTrack] = []
    for transceiver in pc.getTransceivers():
        receiver: Any = transceiver.receiver
        if transceiver.mid not in mids or not receiver._RTCRtpReceiver__started:
            continue
        ssrc, rtx = offered_ssrcs(offer_sdp, transceiver.mid)
        router = receiver.transport._rtp_router
        router.ssrc_table[ssrc] = receiver
        # and the payload types now negotiated there (the SFU keeps the client's latest numbering, which an aiortc
        # client's own offers may have changed since its receiver started)
        codecs = {c.payloadType: c for c in transceiver._codecs if c.payloadType is not None}
        receiver._RTCRtpReceiver__codecs.clear()
        receiver._RTCRtpReceiver__codecs.update(codecs)
        for pt in codecs:
            router.payload_type_table.setdefault(pt, set()).add(receiver)
        if rtx is not None:
            router.ssrc_table[rtx] = receiver
            receiver._RTCRtpReceiver__rtx_ssrc[rtx] = ssrc
        if receiver._RTCRtpReceiver__decoder_thread is not None:
            continue  # still decoding: the new SSRC simply flows into it
        track = RemoteStreamTrack(kind=transceiver.kind)
        video = transceiver.kind == 'video'
        receiver._track = track
        receiver._RTCRtpReceiver__jitter_buffer = (
            JitterBuffer(capacity=512, is_video=True) if video else JitterBuffer(capacity=16, prefetch=4)
        )
        receiver._RTCRtpReceiver__decoder_queue = queue.Queue()
        thread = threading.Thread(
            target=decoder_worker,
            name=f'{transceiver.kind}-decoder',
            args=(
                asyncio.get_running_loop(),
                receiver._RTCRtpReceiver__decoder_queue,
                track._queue,
                receiver._RTCRtpReceiver__decoder_error,
            ),
        )
        thread.start()
        receiver._RTCRtpReceiver__decoder_thread = thread
        new_tracks.append(track)
        pc.emit('track', track)
    return new_tracks


async def request_pull(client: CallsClient, sub: Subscriber, publisher_id: str, names: list[str]) -> TracksResponse:
    tracks = [TrackObject(location='remote', session_id=publisher_id, track_name=n) for n in names]
    return await client.new_tracks(sub.session_id, TracksRequest(tracks=tracks))


async def apply_pull_offer(sub: Subscriber, response: TracksResponse) -> str:
    """Apply the SFU's offer and create the answer as media_client.js ``answerPull`` does (an inactive transceiver
    re-offered for a pulled mid receives again); return the answer SDP."""
    assert response.session_description is not None
    await sub.pc.setRemoteDescription(RTCSessionDescription(**response.session_description.model_dump()))
    pulled = {t.mid for t in response.tracks or [] if t.mid}
    for transceiver in sub.pc.getTransceivers():
        if transceiver.mid in pulled and transceiver.direction == 'inactive':
            transceiver.direction = 'recvonly'
    await sub.pc.setLocalDescription(await sub.pc.createAnswer())
    follow_recycled(sub.pc, response.session_description.sdp, pulled)
    return sub.pc.localDescription.sdp


async def answer_pull(client: CallsClient, sub: Subscriber, response: TracksResponse) -> None:
    await apply_pull_offer(sub, response)
    assert (await client.renegotiate(sub.session_id, description(sub.pc))).to_wire() == {}


async def close_pull(client: CallsClient, sub: Subscriber, mids: list[str]) -> None:
    """A negotiated close (force=false) as media_client.js ``createPullCloseOffer`` does it: the m-lines go
    inactive, never stopped."""
    for transceiver in sub.pc.getTransceivers():
        if transceiver.mid in mids:
            transceiver.direction = 'inactive'
    await sub.pc.setLocalDescription(await sub.pc.createOffer())
    closed = await client.close_tracks(
        sub.session_id,
        CloseTracksRequest(
            tracks=[CloseTrackObject(mid=m) for m in mids], force=False, session_description=description(sub.pc)
        ),
    )
    assert not any(t.error_code for t in closed.tracks or []), closed
    assert closed.session_description is not None
    await sub.pc.setRemoteDescription(RTCSessionDescription(**closed.session_description.model_dump()))
