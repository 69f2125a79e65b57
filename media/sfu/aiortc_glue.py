"""Every access to aiortc / aioice private internals made by the embedded SFU (aiortc 1.16, aioice 0.13).

aiortc's public API always decodes what a receiver gets and encodes what a sender sends. The SFU forwards RTP
packets instead, so it needs these touch points (``assert_compatible()`` checks each one at start-up):

ICE
 1. ``aioice.ice.get_host_addresses`` (module function) — replaced process-wide so host candidates come from the
    configured ``ice_hosts`` (aioice never offers 127.0.0.1 and otherwise offers LAN addresses).

Receiver (publisher side: RTP in, no decoding)
 2. ``RTCRtpReceiver._handle_rtp_packet`` — wrapped per instance; the original still does REMB, RTCP statistics,
    RTX unwrapping and NACK generation, then the tapped packet is handed to the forwarder.
 3. ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`` — replaced per instance by a tap whose ``add()`` captures the
    (RTX-unwrapped) packet and never assembles a frame, so nothing reaches a decoder.
 4. ``RTCRtpReceiver.receive`` — wrapped per instance to stop the idle decoder thread right after it starts.
 5. ``RTCRtpReceiver._RTCRtpReceiver__stop_decoder`` — called by 4.
 6. ``RTCRtpReceiver._send_rtcp_pli`` — forwards a keyframe request (PLI) to the publisher.

Sender (subscriber side: RTP out, no encoding)
 7. ``RTCRtpSender.send`` — wrapped per instance to learn the negotiated parameters when the transport is up.
 8. ``RTCRtpSender._send_keyframe`` — replaced per instance: a subscriber's PLI/FIR goes to the publication.
 9. ``RTCRtpSender._ssrc`` — SSRC written into forwarded packets.
10. ``RTCRtpSender._RTCRtpSender__rtp_history`` — forwarded packets are stored here so aiortc's own NACK handler
    (``_retransmit``, with RTX when negotiated) answers subscriber NACKs.
11. ``RTCRtpSender._RTCRtpSender__packet_count`` / ``__octet_count`` — counters for RTCP sender reports.
12. ``RTCRtpSender._RTCRtpSender__ntp_timestamp`` / ``__rtp_timestamp`` — NTP/RTP mapping for sender reports.
13. ``RTCDtlsTransport._send_rtp`` — SRTP-protects and sends one serialised packet.
14. ``aiortc.rtp.RTP_HISTORY_SIZE`` — size of the sender history ring used by 10.
15. ``RTCDtlsTransport.state`` is public; ``RTCRtpReceiver.transport``/``RTCRtpSender.transport`` are public.

Rolling back an SFU offer that was never answered (``rollback_local_offer``), before a client offer is applied
16. ``RTCPeerConnection._RTCPeerConnection__transceivers`` — transceivers first offered by the dropped offer are
    removed.
17. ``RTCPeerConnection._RTCPeerConnection__pendingLocalDescription`` / ``__currentLocalDescription`` /
    ``__currentRemoteDescription`` — the dropped offer is forgotten; the current ones tell which mids were negotiated.
18. ``RTCPeerConnection._RTCPeerConnection__setSignalingState`` — back to ``stable``.
19. ``RTCRtpTransceiver._set_mline_index`` — a detached transceiver releases its m-line index.

Sender reuse (a closed subscription's m-line recycled for a new one: ``SenderHandle.recycle``)
20. ``RTCRtpSender._RTCRtpSender__started`` — reset so aiortc's ``send()`` starts the RTP/RTCP loops again.
21. ``RTCRtpSender._RTCRtpSender__rtp_started`` / ``__rtcp_started`` / ``__rtp_exited`` / ``__rtcp_exited`` — the
    loops' events, cleared so a later ``stop()`` waits for the new loops.
22. ``RTCRtpSender._rtx_ssrc`` (with 9) — fresh SSRCs, so the subscriber sees a clean new stream; ``__lsr`` with 11/12
    reset.
"""

from __future__ import annotations

import asyncio
import types
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver, clock
from aiortc import rtp as _rtp
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from aiortc.utils import random32

PacketHandler = Callable[[RtpPacket], Awaitable[None]]

_SENDER_LOOP_STATE = (
    '_RTCRtpSender__started',
    '_RTCRtpSender__rtp_started',
    '_RTCRtpSender__rtcp_started',
    '_RTCRtpSender__rtp_exited',
    '_RTCRtpSender__rtcp_exited',
)
_PC_STATE = (
    '_RTCPeerConnection__transceivers',
    '_RTCPeerConnection__pendingLocalDescription',
    '_RTCPeerConnection__currentLocalDescription',
    '_RTCPeerConnection__currentRemoteDescription',
)


class GlueIncompatibleError(RuntimeError):
    """The installed aiortc/aioice lacks a private attribute the SFU relies on."""


def assert_compatible() -> None:
    """Check every private attribute/method listed in the module docstring; raise naming what is missing."""
    missing: list[str] = []
    if not callable(getattr(aioice.ice, 'get_host_addresses', None)):
        missing.append('aioice.ice.get_host_addresses')
    for cls, names in (
        (RTCRtpReceiver, ('_handle_rtp_packet', 'receive', '_RTCRtpReceiver__stop_decoder', '_send_rtcp_pli')),
        (RTCRtpSender, ('send', '_send_keyframe', '_retransmit', '_handle_rtcp_packet')),
        (RTCDtlsTransport, ('_send_rtp',)),
        (RTCPeerConnection, ('_RTCPeerConnection__setSignalingState',)),
        (RTCRtpTransceiver, ('_set_mline_index',)),
    ):
        missing += [f'{cls.__name__}.{n}' for n in names if not hasattr(cls, n)]
    if not isinstance(getattr(_rtp, 'RTP_HISTORY_SIZE', None), int):
        missing.append('aiortc.rtp.RTP_HISTORY_SIZE')
    receiver_attrs = ('_RTCRtpReceiver__jitter_buffer', '_RTCRtpReceiver__decoder_thread')
    sender_attrs = (
        '_ssrc',
        '_RTCRtpSender__rtp_history',
        '_RTCRtpSender__packet_count',
        '_RTCRtpSender__octet_count',
        '_RTCRtpSender__ntp_timestamp',
        '_RTCRtpSender__rtp_timestamp',
        '_rtx_ssrc',
        '_RTCRtpSender__lsr',
        *_SENDER_LOOP_STATE,
    )
    try:
        asyncio.get_running_loop()
        receiver, sender = _instances()
    except RuntimeError:  # no running loop: aiortc's constructors need one
        loop = asyncio.new_event_loop()
        try:
            receiver, sender = loop.run_until_complete(_async_instances())
        finally:
            loop.close()
    missing += [f'RTCRtpReceiver.{a}' for a in receiver_attrs if not hasattr(receiver, a)]
    missing += [f'RTCRtpSender.{a}' for a in sender_attrs if not hasattr(sender, a)]
    missing += [f'RTCPeerConnection.{a}' for a in _PC_STATE if a not in _pc_attributes()]
    if missing:
        raise GlueIncompatibleError('aiortc/aioice internals missing for the embedded SFU: ' + ', '.join(missing))


def _pc_attributes() -> set[str]:
    """Instance attributes RTCPeerConnection.__init__ assigns (read from its code: no PC is built, nothing binds)."""
    return set(RTCPeerConnection.__init__.__code__.co_names)


def _instances() -> tuple[RTCRtpReceiver, RTCRtpSender]:
    dummy: Any = types.SimpleNamespace(state='new')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return RTCRtpReceiver('video', dummy), RTCRtpSender('video', dummy)


async def _async_instances() -> tuple[RTCRtpReceiver, RTCRtpSender]:
    return _instances()


def use_host_addresses(hosts: list[str]) -> None:
    """Make every ICE agent in this process offer exactly ``hosts`` as host candidates."""
    addresses = list(hosts)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in addresses if (':' in a and use_ipv6) or (':' not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


class _Tap:
    """Stands in for the receiver's jitter buffer: captures each packet, never yields a frame to decode."""

    __slots__ = ('packet',)

    def __init__(self) -> None:
        self.packet: RtpPacket | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        self.packet = packet
        return False, None


def tap_receiver(receiver: RTCRtpReceiver, on_packet: PacketHandler) -> None:
    """Route the receiver's RTP packets to ``on_packet`` and make sure it never decodes."""
    tap = _Tap()
    r: Any = receiver
    r._RTCRtpReceiver__jitter_buffer = tap
    original_handle = receiver._handle_rtp_packet
    original_receive = receiver.receive

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        await original_handle(packet, arrival_time_ms=arrival_time_ms)
        captured, tap.packet = tap.packet, None
        if captured is not None:
            await on_packet(captured)

    async def receive(parameters: Any) -> None:
        await original_receive(parameters)
        r._RTCRtpReceiver__stop_decoder()

    r._handle_rtp_packet = handle_rtp_packet
    r.receive = receive


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the publisher for a keyframe."""
    try:
        await receiver._send_rtcp_pli(media_ssrc)
    except ConnectionError:
        pass


class _IdleTrack(MediaStreamTrack):
    """Keeps aiortc's sender loop parked (no encoder is ever created) until the sender stops."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._ended.set()
        super().stop()


class SenderPort:
    """Writes forwarded RTP packets straight onto an aiortc sender's transport (until ``close()``)."""

    def __init__(self, sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> None:
        s: Any = sender
        self._sender = s
        self._transport: Any = sender.transport
        self.ssrc: int = sender._ssrc
        self.payload_type: int = parameters.codecs[0].payloadType or 0
        self.mime_type = parameters.codecs[0].mimeType.lower()
        self._mid = parameters.muxId
        self._extensions = HeaderExtensionsMap()
        self._extensions.configure(parameters)
        self._history: dict[int, RtpPacket] = s._RTCRtpSender__rtp_history
        self.closed = False

    def close(self) -> None:
        """Send nothing more (a replay still running for a removed downstream stops here)."""
        self.closed = True

    async def send(self, packet: RtpPacket) -> int:
        """Send one already-rewritten packet; return the bytes written (0 when closed or the transport is not up)."""
        if self.closed:
            return 0
        packet.extensions.mid = self._mid
        packet.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
        self._history[packet.sequence_number % _rtp.RTP_HISTORY_SIZE] = packet
        data = packet.serialize(self._extensions)
        try:
            await self._transport._send_rtp(data)
        except ConnectionError:
            return 0
        s = self._sender
        s._RTCRtpSender__ntp_timestamp = clock.current_ntp_time()
        s._RTCRtpSender__rtp_timestamp = packet.timestamp
        s._RTCRtpSender__octet_count += len(packet.payload)
        s._RTCRtpSender__packet_count += 1
        return len(data)


class SenderHandle:
    """An SFU sender: its own media loop parked, wired to a ``SenderPort`` once the transport is up.

    ``stop()`` ends the stream (RTCP BYE, no more sender reports, no more packets); ``recycle()`` makes the same
    sender (same m-line, same mid) ready for a new stream under fresh SSRCs, started again by aiortc's next
    ``send()`` once an answer makes the transceiver send.
    """

    def __init__(
        self,
        sender: RTCRtpSender,
        on_ready: Callable[[SenderPort], None],
        on_keyframe_request: Callable[[], None],
    ) -> None:
        self.sender = sender
        self.port: SenderPort | None = None
        self.stopped = False
        self._on_ready = on_ready
        s: Any = sender
        original_send = sender.send
        sender.replaceTrack(_IdleTrack(sender.kind))

        async def send(parameters: RTCRtpSendParameters) -> None:
            # aiortc calls send() again on every renegotiation of the session; the port is wired once per stream,
            # else each re-offer (a third participant joining) would fork another downstream onto the same SSRC.
            if self.stopped:
                return  # an answer in flight must not restart a stream that was closed meanwhile
            await original_send(parameters)
            if self.port is None:
                self.port = SenderPort(sender, parameters)
                self._on_ready(self.port)

        s.send = send
        s._send_keyframe = on_keyframe_request

    async def stop(self) -> None:
        """End the stream: no more packets, the RTCP loop sends its BYE and stops (idempotent)."""
        self.stopped = True
        if self.port is not None:
            self.port.close()
        await self.sender.stop()

    async def recycle(self, on_ready: Callable[[SenderPort], None], on_keyframe_request: Callable[[], None]) -> None:
        """After ``stop()``: a new stream on the same sender, fresh SSRCs, the next ``send()`` starts it."""
        await self.stop()
        s: Any = self.sender
        s._RTCRtpSender__started = False
        for name in _SENDER_LOOP_STATE[1:]:
            setattr(s, name, asyncio.Event())
        s._ssrc = random32()
        s._rtx_ssrc = random32()
        s._RTCRtpSender__rtp_history.clear()
        s._RTCRtpSender__packet_count = 0
        s._RTCRtpSender__octet_count = 0
        s._RTCRtpSender__ntp_timestamp = 0
        s._RTCRtpSender__rtp_timestamp = 0
        s._RTCRtpSender__lsr = None
        s._send_keyframe = on_keyframe_request
        self.sender.replaceTrack(_IdleTrack(self.sender.kind))  # the stopped RTP loop dropped the last one
        self._on_ready = on_ready
        self.port = None
        self.stopped = False


def rollback_local_offer(pc: RTCPeerConnection) -> list[RTCRtpTransceiver]:
    """Forget an SFU offer that was never answered: back to ``stable`` as if it had not been made.

    Transceivers that first appeared in that offer are detached from the PC and returned (the caller stops them);
    their mids stay used, so they are never handed out again. Only for a PC that negotiated once (otherwise there is
    nothing to go back to: replace the PC).
    """
    p: Any = pc
    if pc.signalingState != 'have-local-offer':
        return []
    negotiated: set[str] = set()
    for description in (p._RTCPeerConnection__currentLocalDescription, p._RTCPeerConnection__currentRemoteDescription):
        if description is not None:
            negotiated |= {m.rtp.muxId for m in description.media}
    transceivers: list[RTCRtpTransceiver] = p._RTCPeerConnection__transceivers
    detached = [t for t in transceivers if t.mid is None or t.mid not in negotiated]
    for t in detached:
        transceivers.remove(t)
        t._set_mline_index(None)  # type: ignore[arg-type]
    p._RTCPeerConnection__pendingLocalDescription = None
    p._RTCPeerConnection__setSignalingState('stable')
    return detached
