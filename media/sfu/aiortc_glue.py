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

Stable numbering in SFU offers (``create_offer``; aiortc's ``createOffer`` resets both to its defaults)
23. ``RTCRtpTransceiver._codecs`` — read before and written after ``createOffer``: a negotiated m-line keeps its payload
    types, a new one takes the BUNDLE group's (``follow_payload_type`` makes the forwarder's follow a renegotiation).
24. ``RTCRtpTransceiver._headerExtensions`` — the same for header extension ids.
25. ``RTCRtpTransceiver._preferred_codecs`` — a recycled m-line's codec (the client's numbering of the group comes
    from the public ``remoteDescription``/``localDescription``).

An m-line the client recycled under a new mid (``release_recycled_mlines``, before a client offer is applied)
26. ``RTCPeerConnection._RTCPeerConnection__transceivers`` (16) — the old, stopped transceiver leaves the PC.
27. ``RTCRtpTransceiver._get_mline_index`` / ``_set_mline_index`` (19) — which transceiver holds an m-line index.

Forwarding at the limit (the fast path, ``SFU_FORWARD_PATH=fast``, the default; ``legacy`` uses 2-3 and 10 instead)
30. ``aioice.ice.Connection.data_received`` — replaced per connection (``_install_sync_receive``): SRTP datagrams are
    unprotected, parsed and handed to the receiver synchronously where they arrive (no queue, no receive task);
    everything else goes to the original. ``RTCIceTransport._connection`` reaches the connection.
31. ``RTCDtlsTransport._rx_srtp`` / ``_tx_srtp`` (pylibsrtp sessions), ``_state`` (``State.CONNECTED``),
    ``_rtp_header_extensions_map`` and ``_rtp_router.route_rtp`` — what aiortc's own receive and send use;
    ``HeaderExtensionsMap._HeaderExtensionsMap__ids`` (``audio_level``, ``rtp_stream_id``,
    ``repaired_rtp_stream_id``) — the extension ids ``lean_parser`` reads.
32. ``RTCRtpReceiver._enabled``, ``__codecs``, ``__remote_streams`` (``StreamStatistics``), ``__rtx_ssrc``,
    ``__nack_generator`` (``NackGenerator.max_seq``/``missing``/``add``), ``__rtcp_ssrc``, ``_send_rtcp``,
    ``_send_rtcp_nack`` — the lean receiver (``lean_tap``): statistics, RTX unwrapping, NACKs and a periodic REMB;
    no depayloading, jitter buffer, decoder or per-packet bitrate estimator.
33. ``aioice.ice.Connection._nominated`` (component 1), ``CandidatePair.protocol``/``remote_addr`` and
    ``StunProtocol.transport`` — ``SenderPort.write`` sends with ``transport.sendto`` on the nominated pair when it
    is a plain UDP socket; no pair, or a relayed one (TURN), goes through 13.
34. ``RTCRtpSender._retransmit`` — wrapped per instance: a NACKed packet is rebuilt from its source packet into 10,
    then aiortc's own retransmission (RTX when negotiated) sends it.
35. ``RTCRtpSender`` 11 and 12 are written by ``SenderPort.write`` too.

A subscriber's receiver reports (``priorityOrdering: asciibetical``, ``SenderHandle``)
40. ``RTCRtpSender._handle_rtcp_packet`` — wrapped per instance: after aiortc's own handling, the fraction lost of
    each report block for the sender's SSRC (9) goes to the subscription's layer switcher.
"""

from __future__ import annotations

import asyncio
import copy
import math
import os
import struct
import time
import types
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
import pylibsrtp
from aiortc import (
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
    clock,
    sdp,
)
from aiortc import rtp as _rtp
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter
from aiortc.rtcdtlstransport import State as _DtlsState
from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport
from aiortc.rtcrtpparameters import (
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)
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
        (RTCRtpTransceiver, ('_set_mline_index', '_get_mline_index')),
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
    missing += [f'RTCRtpTransceiver.{a}' for a in _TRANSCEIVER_STATE if a not in _transceiver_attributes()]
    missing += _fast_path_missing(receiver)
    if missing:
        raise GlueIncompatibleError('aiortc/aioice internals missing for the embedded SFU: ' + ', '.join(missing))


_TRANSCEIVER_STATE = ('_codecs', '_headerExtensions', '_preferred_codecs')  # touch points 23-25


def _transceiver_attributes() -> set[str]:
    """Instance attributes RTCRtpTransceiver.__init__ assigns (read from its code)."""
    return set(RTCRtpTransceiver.__init__.__code__.co_names)


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


def tap_receiver(receiver: RTCRtpReceiver, on_packet: PacketHandler, feed: SyncHandler | None = None) -> None:
    """Route the receiver's RTP packets to ``on_packet`` and make sure it never decodes.

    With ``feed`` (a synchronous ``feed(packet, now)``) and the fast forward path, the lean receiver is used instead
    (``lean_tap``); ``on_packet`` is then never called.
    """
    if feed is not None and _forward_path == 'fast':
        lean_tap(receiver, feed)
        return
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
    """Writes forwarded RTP packets straight onto an aiortc sender's transport (until ``close()``).

    ``send(packet)`` is the legacy path (a rewritten ``RtpPacket``, aiortc's serialiser, a coroutine); ``write(...)``
    the fast one (``fast`` is True): header bytes patched, SRTP and ``sendto`` synchronous.
    """

    write: Callable[[RtpPacket, int, int, bytes, int], int]
    _wire: _Wire
    _ring_seq: list[int]
    _ring_src: list[RtpPacket | None]
    _ring_ts: list[int]
    _dtls: Any
    _ice: Any

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
        # fast path (``write``): set up by _fast_port when SFU_FORWARD_PATH is fast and the header layout allows
        self.fast = False
        self.fallbacks = 0  # packets sent through aiortc's path (no pair yet, relayed pair)
        self._pair: Any = None
        self._pair_addr: Any = None
        self._sendto: Callable[[bytes, Any], None] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        if _forward_path == 'fast':
            _fast_port(self, s)

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
        on_loss: Callable[[float], None] | None = None,
    ) -> None:
        self.sender = sender
        self.port: SenderPort | None = None
        self.stopped = False
        self._on_ready = on_ready
        self._on_loss = on_loss
        s: Any = sender
        original_send = sender.send
        original_rtcp = sender._handle_rtcp_packet

        async def handle_rtcp(packet: Any) -> None:
            # the subscriber's receiver reports: aiortc keeps its statistics, the SFU reads the loss (touch point 40)
            await original_rtcp(packet)
            if self._on_loss is not None and isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc == s._ssrc:
                        self._on_loss(report.fraction_lost / 256)

        s._handle_rtcp_packet = handle_rtcp
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
            else:
                follow_payload_type(self.port, parameters)

        s.send = send
        s._send_keyframe = on_keyframe_request

    async def stop(self) -> None:
        """End the stream: no more packets, the RTCP loop sends its BYE and stops (idempotent)."""
        self.stopped = True
        if self.port is not None:
            self.port.close()
        await self.sender.stop()

    async def recycle(
        self,
        on_ready: Callable[[SenderPort], None],
        on_keyframe_request: Callable[[], None],
        on_loss: Callable[[float], None] | None = None,
    ) -> None:
        """After ``stop()``: a new stream on the same sender, fresh SSRCs, the next ``send()`` starts it."""
        await self.stop()
        self._on_loss = on_loss
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


# --- Stable numbering: SFU offers keep what was negotiated (touch points 23-25) --------------------------------------

_RTX = 'rtx'
_DYNAMIC_PTS = [*range(96, 128), *range(35, 64)]
_EXTENSION_IDS = range(1, 15)


def _codec_key(codec: RTCRtpCodecParameters) -> tuple[object, ...]:
    mime = codec.mimeType.lower()
    params = codec.parameters
    if mime == 'video/h264':
        fmtp: tuple[object, ...] = (
            str(params.get('packetization-mode', '0')),
            str(params.get('profile-level-id', '')).lower()[:2] + str(params.get('profile-level-id', '')).lower()[4:],
        )
    elif mime == 'video/vp9':
        fmtp = (str(params.get('profile-id', '0')),)
    else:
        fmtp = ()
    return (mime, codec.clockRate, codec.channels or None, *fmtp)


def _is_rtx(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower().endswith('/' + _RTX)


class _Numbering:
    """The BUNDLE group's payload types (by codec) and header extension ids (by URI), and what is still free."""

    def __init__(self) -> None:
        self.pts: dict[tuple[object, ...], int] = {}
        self.rtx: dict[int, int] = {}  # apt -> rtx payload type
        self.used_pts: set[int] = set()
        self.ext_ids: dict[str, int] = {}
        self.used_ext_ids: set[int] = set()

    def learn(self, codecs: list[RTCRtpCodecParameters], extensions: list[RTCRtpHeaderExtensionParameters]) -> None:
        for codec in codecs:
            pt = codec.payloadType
            if pt is None:
                continue
            self.used_pts.add(pt)
            if _is_rtx(codec):
                apt = codec.parameters.get('apt')
                if isinstance(apt, int):
                    self.rtx.setdefault(apt, pt)
            else:
                self.pts.setdefault(_codec_key(codec), pt)
        for ext in extensions:
            if ext.uri not in self.ext_ids and ext.id not in self.used_ext_ids:
                self.ext_ids[ext.uri] = ext.id
            self.used_ext_ids.add(ext.id)

    def _free_pt(self, default: int | None) -> int:
        """aiortc's own number when the group does not use it yet (what an aiortc peer expects), else a free one."""
        pt: int = (
            default
            if default is not None and default not in self.used_pts
            else next(p for p in _DYNAMIC_PTS if p not in self.used_pts)
        )
        self.used_pts.add(pt)
        return pt

    def renumber(self, codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
        """``codecs`` (aiortc's defaults) in the group's numbering; a codec new to the group gets a free number."""
        out: list[RTCRtpCodecParameters] = []
        moved: dict[int, int] = {}
        for codec in codecs:
            if _is_rtx(codec):
                continue
            codec = copy.deepcopy(codec)
            key = _codec_key(codec)
            pt = self.pts.get(key)
            if pt is None:
                pt = self.pts[key] = self._free_pt(codec.payloadType)
            if codec.payloadType is not None:
                moved[codec.payloadType] = pt
            codec.payloadType = pt
            out.append(codec)
        result: list[RTCRtpCodecParameters] = []
        for codec in out:
            result.append(codec)
            rtx = next(
                (c for c in codecs if _is_rtx(c) and moved.get(c.parameters.get('apt', -1)) == codec.payloadType),  # type: ignore[arg-type]
                None,
            )
            if rtx is not None:
                rtx = copy.deepcopy(rtx)
                assert codec.payloadType is not None
                pt = self.rtx.get(codec.payloadType)
                if pt is None:
                    pt = self.rtx[codec.payloadType] = self._free_pt(rtx.payloadType)
                rtx.payloadType = pt
                rtx.parameters = {**rtx.parameters, 'apt': codec.payloadType}
                result.append(rtx)
        return result

    def extensions(self, extensions: list[RTCRtpHeaderExtensionParameters]) -> list[RTCRtpHeaderExtensionParameters]:
        out: list[RTCRtpHeaderExtensionParameters] = []
        for ext in extensions:
            ext_id = self.ext_ids.get(ext.uri)
            if ext_id is None:
                free = [i for i in (ext.id, *_EXTENSION_IDS) if i not in self.used_ext_ids]
                if not free:
                    continue  # no id left in the one-byte range: offer the section without it
                ext_id = self.ext_ids[ext.uri] = free[0]
                self.used_ext_ids.add(ext_id)
            out.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=ext.uri))
        return out


async def create_offer(pc: RTCPeerConnection) -> RTCSessionDescription:
    """``pc.createOffer()`` without renumbering what was negotiated.

    aiortc's ``createOffer`` resets every transceiver's codecs and header extensions to its defaults (touch points
    23: ``RTCRtpTransceiver._codecs``, 24: ``RTCRtpTransceiver._headerExtensions``, 25: ``_preferred_codecs``). A
    browser refuses an offer that renumbers a negotiated m-line ("RTP extension ID reassignment not supported") and
    may crash on a payload type that changes codec. Here every transceiver that already has a mid keeps the payload
    types and extension ids it negotiated (restricted to its codec preferences when it has some, e.g. a recycled
    m-line); a new m-line takes the BUNDLE group's numbering (the client's, as its last description states it),
    and free numbers for what the group does not have yet.
    """
    kept: dict[int, tuple[list[RTCRtpCodecParameters], list[RTCRtpHeaderExtensionParameters]]] = {}
    numbering = _Numbering()
    for t in pc.getTransceivers():
        known: Any = t
        if t.mid is not None and known._codecs:
            kept[id(t)] = (list(known._codecs), list(known._headerExtensions))
            numbering.learn(known._codecs, known._headerExtensions)
    for description in (pc.remoteDescription, pc.localDescription):  # pending or current
        if description is not None:
            for media in sdp.SessionDescription.parse(description.sdp).media:
                if media.kind in ('audio', 'video') and media.port != 0:
                    numbering.learn(media.rtp.codecs, media.rtp.headerExtensions)
    offer = await pc.createOffer()
    parsed = sdp.SessionDescription.parse(offer.sdp)
    by_mid = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
    new_index = {
        t._get_mline_index(): t for t in pc.getTransceivers() if t.mid is None and not t.stopped
    }  # new transceivers got their m-line index from createOffer
    for index, media in enumerate(parsed.media):
        if media.kind not in ('audio', 'video'):
            continue
        target = by_mid.get(media.rtp.muxId) or new_index.get(index)
        if target is None:
            continue
        tt: Any = target
        codecs: list[RTCRtpCodecParameters] | None = None
        extensions: list[RTCRtpHeaderExtensionParameters]
        if id(target) in kept:
            old_codecs, extensions = kept[id(target)]
            codecs = old_codecs
            if tt._preferred_codecs:
                codecs = _filter_preferred(old_codecs, tt._preferred_codecs)
            if not codecs:
                codecs = numbering.renumber(tt._codecs)
        else:
            codecs = numbering.renumber(tt._codecs)
            extensions = numbering.extensions(tt._headerExtensions)
        tt._codecs = codecs
        tt._headerExtensions = extensions
        media.fmt = [c.payloadType for c in codecs]
        media.rtp.codecs = codecs
        media.rtp.headerExtensions = extensions
    return RTCSessionDescription(sdp=str(parsed), type='offer')


def follow_payload_type(port: SenderPort, parameters: RTCRtpSendParameters) -> None:
    """A renegotiation's send parameters: the forwarder's payload type follows what the transceiver negotiated."""
    if parameters.codecs and parameters.codecs[0].payloadType is not None:
        port.payload_type = parameters.codecs[0].payloadType


def _filter_preferred(
    codecs: list[RTCRtpCodecParameters], preferred: list[RTCRtpCodecCapability]
) -> list[RTCRtpCodecParameters]:
    """The negotiated codecs that the preferences allow (same mime type and H264 profile), with their RTX."""
    wanted = {_codec_key(RTCRtpCodecParameters(**_capability_fields(c))) for c in preferred if not _is_rtx_cap(c)}
    rtx_wanted = any(_is_rtx_cap(c) for c in preferred)
    base = [c for c in codecs if not _is_rtx(c) and _codec_key(c) in wanted]
    pts = {c.payloadType for c in base}
    rtx = [c for c in codecs if rtx_wanted and _is_rtx(c) and c.parameters.get('apt') in pts]
    ordered = []
    for c in base:
        ordered.append(c)
        ordered += [r for r in rtx if r.parameters.get('apt') == c.payloadType]
    return ordered


def _is_rtx_cap(capability: RTCRtpCodecCapability) -> bool:
    return capability.mimeType.lower().endswith('/' + _RTX)


def _capability_fields(capability: RTCRtpCodecCapability) -> dict[str, Any]:
    return {
        'mimeType': capability.mimeType,
        'clockRate': capability.clockRate,
        'channels': capability.channels,
        'parameters': dict(capability.parameters),
    }


# --- Forwarding at the limit: synchronous receive, byte-patched send (touch points 30-37) -----------------------------
#
# ``SFU_FORWARD_PATH=legacy`` keeps the old path (aiortc's whole receiver per packet, one RtpPacket and one coroutine
# per subscriber and packet), so a benchmark can compare both in one run.

FORWARD_PATHS = ('fast', 'legacy')
_forward_path = os.environ.get('SFU_FORWARD_PATH', 'fast').strip().lower() or 'fast'
if _forward_path not in FORWARD_PATHS:
    raise ValueError(f'SFU_FORWARD_PATH must be one of {FORWARD_PATHS}, got {_forward_path!r}')

# A receiver estimate sent to each publisher once per REMB_INTERVAL_S (from the packet path: no timer), instead of
# aiortc's per-packet delay-based estimator. Like Janus, the SFU states a ceiling; the publisher's own loss-based
# control (fed by our receiver reports) does the rest.
REMB_BITRATE_BPS = 3_000_000
REMB_INTERVAL_S = 1.0
_REMB_CHECK_EVERY = 16  # packets between two looks at the clock for REMB (one clock read per packet otherwise)
_NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900 to 1970
_HISTORY = _rtp.RTP_HISTORY_SIZE
_HEADER = struct.Struct('!BBHII')
_STATE_CONNECTED = _DtlsState.CONNECTED


def forward_path() -> str:
    """``fast`` (default) or ``legacy``: which receive/send path new publications and subscriptions get."""
    return _forward_path


def set_forward_path(path: str) -> None:
    """Choose the path for publications and subscriptions created from now on (tests, benchmarks)."""
    global _forward_path
    if path not in FORWARD_PATHS:
        raise ValueError(f'forward path must be one of {FORWARD_PATHS}, got {path!r}')
    _forward_path = path


class NtpClock:
    """NTP time from the monotonic clock the packet path already read: one clock read per packet.

    The wall-clock offset is taken again every ``resync_s`` (monotonic and wall clocks drift apart slowly).
    """

    __slots__ = ('_next', '_offset')

    def __init__(self) -> None:
        self._offset = 0.0
        self._next = -math.inf

    def ntp(self, now: float, resync_s: float = 10.0) -> int:
        if now >= self._next:
            self._offset = time.time() + _NTP_EPOCH_OFFSET - time.monotonic()
            self._next = now + resync_s
        return int((now + self._offset) * 4294967296.0)


NTP = NtpClock()


def abs_send_time_bytes(ntp: int) -> bytes:
    """The 3-byte abs-send-time value (6.18 fixed-point seconds) for an NTP timestamp, as aiortc writes it."""
    return ((ntp >> 14) & 0x00FFFFFF).to_bytes(3, 'big')


SyncHandler = Callable[[RtpPacket, float], object]


def lean_tap(receiver: RTCRtpReceiver, feed: SyncHandler) -> None:
    """The fast receive path: ``feed(packet, now)`` is called synchronously for each RTP packet (RTX unwrapped).

    The receiver keeps what an SFU needs — RTCP receiver statistics, NACKs to the publisher, RTX unwrapping — and
    drops what only a decoder needs (depayloading, the jitter buffer, the decoder thread) and aiortc's per-packet
    bitrate estimator (replaced by a periodic REMB). SRTP datagrams are unprotected and dispatched right where the
    ICE connection receives them (``_install_sync_receive``), without aiortc's queue and receive task.
    """
    r: Any = receiver
    codecs: dict[int, Any] = r._RTCRtpReceiver__codecs
    streams: dict[int, StreamStatistics] = r._RTCRtpReceiver__remote_streams
    rtx_ssrc: dict[int, int] = r._RTCRtpReceiver__rtx_ssrc
    nack = r._RTCRtpReceiver__nack_generator
    video = nack is not None  # aiortc keeps a NACK generator (and a bitrate estimator) for video only
    tasks: set[asyncio.Future[None]] = set()
    remb = {'count': _REMB_CHECK_EVERY - 1, 'due': -math.inf}  # the ceiling is stated on the first packet
    original_receive = receiver.receive

    def spawn(coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def handle(packet: RtpPacket, now: float) -> None:
        if not r._enabled:
            return
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return
        stream = streams.get(packet.ssrc)
        if stream is None:
            stream = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        if is_rtx(codec):
            original = rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get('apt')
            if original is None or len(packet.payload) < 2 or not isinstance(apt, int) or apt not in codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original)
        if nack is not None:
            seq = packet.sequence_number
            if nack.max_seq is not None and seq == (nack.max_seq + 1) & 0xFFFF and not nack.missing:
                nack.max_seq = seq  # in order, nothing missing: what NackGenerator.add would do, without the work
            elif nack.add(packet):
                spawn(r._send_rtcp_nack(packet.ssrc, sorted(nack.missing)))
        if video:
            remb['count'] += 1
            if remb['count'] >= _REMB_CHECK_EVERY:
                remb['count'] = 0
                if now >= remb['due']:
                    remb['due'] = now + REMB_INTERVAL_S
                    send_remb(packet.ssrc)
        feed(packet, now)

    def send_remb(media_ssrc: int) -> None:
        rtcp_ssrc = r._RTCRtpReceiver__rtcp_ssrc
        if rtcp_ssrc is not None:
            fci = pack_remb_fci(REMB_BITRATE_BPS, [media_ssrc])
            spawn(r._send_rtcp(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=fci)))

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        # packets that still come through aiortc's own receive task (before the sync path is installed)
        handle(packet, time.monotonic())

    async def receive(parameters: Any) -> None:
        await original_receive(parameters)
        r._RTCRtpReceiver__stop_decoder()
        _install_sync_receive(receiver.transport)

    r._handle_rtp_packet = handle_rtp_packet
    r._sfu_handle = handle
    r.receive = receive
    if receiver.transport is not None:
        _install_sync_receive(receiver.transport)


def _install_sync_receive(dtls: RTCDtlsTransport) -> None:
    """Handle SRTP (not SRTCP) datagrams synchronously where the ICE connection receives them (once per transport).

    Everything else (STUN answered by aioice, DTLS, SRTCP) keeps going through aiortc's queue and receive task. A
    packet for a receiver that is not tapped by ``lean_tap`` is handed to its aiortc handler in a task.
    """
    d: Any = dtls
    connection: Any = getattr(getattr(dtls, 'transport', None), '_connection', None)
    if connection is None or getattr(connection, '_sfu_sync', False):
        return
    original = connection.data_received
    router = d._rtp_router
    extensions = d._rtp_header_extensions_map
    parse = lean_parser(extensions)
    monotonic = time.monotonic
    tasks: set[asyncio.Future[None]] = set()

    def data_received(data: bytes, component: int) -> None:
        srtp = d._rx_srtp
        if srtp is None or not 127 < data[0] < 192 or 191 < data[1] < 224:  # not SRTP, or SRTCP (RFC 5761)
            original(data, component)
            return
        now = monotonic()
        try:
            packet = parse(srtp.unprotect(data))
        except (pylibsrtp.Error, ValueError):
            return
        receiver = router.route_rtp(packet)
        if receiver is None:
            return
        handle = getattr(receiver, '_sfu_handle', None)
        if handle is not None:
            handle(packet, now)
        else:
            task = asyncio.ensure_future(receiver._handle_rtp_packet(packet, arrival_time_ms=int(now * 1000)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    connection.data_received = data_received
    connection._sfu_sync = True


def lean_parser(extensions: HeaderExtensionsMap) -> Callable[[bytes], RtpPacket]:
    """``RtpPacket.parse`` for the SFU: the same header fields, CSRCs, padding and payload, and of the header
    extensions only the audio level (the one the forwarder passes on); the others are not decoded. With RID
    extensions negotiated (simulcast routing needs them) it is aiortc's full parse. The map's ids are read per packet:
    aiortc reconfigures the (shared) map as m-lines are negotiated."""
    ids: Any = extensions._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
    full = RtpPacket.parse
    fixed = _HEADER.unpack_from

    def parse(data: bytes) -> RtpPacket:
        if ids.rtp_stream_id or ids.repaired_rtp_stream_id:
            return full(data, extensions)
        size = len(data)
        if size < 12:
            raise ValueError('RTP packet length is less than 12 bytes')
        b0, b1, seq, ts, ssrc = fixed(data)
        if b0 >> 6 != 2:
            raise ValueError('RTP packet has invalid version')
        packet = RtpPacket(b1 & 0x7F, b1 >> 7, seq, ts, ssrc)
        pos = 12
        cc = b0 & 0x0F
        if cc:
            if size < 12 + 4 * cc:
                raise ValueError('RTP packet has truncated CSRC')
            packet.csrc = list(struct.unpack_from(f'!{cc}L', data, 12))
            pos += 4 * cc
        if b0 & 0x10:
            if size < pos + 4:
                raise ValueError('RTP packet has truncated extension profile / length')
            profile = data[pos] << 8 | data[pos + 1]
            end = pos + 4 + (data[pos + 2] << 8 | data[pos + 3]) * 4
            pos += 4
            if size < end:
                raise ValueError('RTP packet has truncated extension value')
            level_id = ids.audio_level
            if profile == 0xBEDE:
                while pos < end:
                    b = data[pos]
                    if b == 0:
                        pos += 1
                        continue
                    length = (b & 0x0F) + 1
                    if end < pos + 1 + length:
                        raise ValueError('RTP one-byte header extension value is truncated')
                    if b >> 4 == level_id and level_id:
                        v = data[pos + 1]
                        packet.extensions.audio_level = (v & 0x80 == 0x80, v & 0x7F)
                    pos += 1 + length
            elif profile == 0x1000:
                while pos < end:
                    if data[pos] == 0:
                        pos += 1
                        continue
                    if end < pos + 2:
                        raise ValueError('RTP two-byte header extension is truncated')
                    x_id, length = data[pos], data[pos + 1]
                    if end < pos + 2 + length:
                        raise ValueError('RTP two-byte header extension value is truncated')
                    if x_id == level_id and level_id and length:
                        v = data[pos + 2]
                        packet.extensions.audio_level = (v & 0x80 == 0x80, v & 0x7F)
                    pos += 2 + length
            pos = end
        if b0 & 0x20:
            padding = data[-1]
            if not padding or padding > size - pos:
                raise ValueError('RTP packet padding length is invalid')
            packet.padding_size = padding
            packet.payload = data[pos:-padding]
        else:
            packet.payload = data[pos:]
        return packet

    return parse


class _Wire:
    """One subscriber's header bytes, built with aiortc's own serialiser and patched per packet.

    Each layout is ``(first byte, ext before abs-send-time, ext between abs-send-time and audio level, ext after,
    with abs-send-time, with audio level)``. Offsets are found by serialising twice with different values, so the
    bytes are exactly what ``RtpPacket.serialize`` writes for the same fields (``plain``: no audio level;
    ``level``: with one, when the subscriber negotiated the extension).
    """

    __slots__ = ('level', 'plain')

    def __init__(self, extensions: HeaderExtensionsMap, mid: str | None) -> None:
        self.plain = self._split(extensions, mid, with_level=False)
        self.level = self._split(extensions, mid, with_level=True)

    @staticmethod
    def _split(
        extensions: HeaderExtensionsMap, mid: str | None, *, with_level: bool
    ) -> tuple[int, bytes, bytes, bytes, bool, bool]:
        def serialise(abs_send_time: int, level: tuple[bool, int] | None) -> bytes:
            packet = RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=0)
            packet.extensions.mid = mid
            packet.extensions.abs_send_time = abs_send_time
            packet.extensions.audio_level = level
            return packet.serialize(extensions)

        low = (False, 0) if with_level else None
        a, b = serialise(0, low), serialise(0xFFFFFF, low)
        c = serialise(0, (True, 127)) if with_level else a
        if not len(a) == len(b) == len(c):
            raise _NoWire
        abs_at = next((i for i in range(len(a)) if a[i] != b[i]), -1)
        level_at = next((i for i in range(len(a)) if a[i] != c[i]), -1)
        if abs_at >= 0 and level_at >= 0 and level_at < abs_at + 3:
            raise _NoWire  # not aiortc's order: this patcher does not handle it, the port sends through aiortc
        end = len(a)
        h1 = a[12 : abs_at if abs_at >= 0 else (level_at if level_at >= 0 else end)]
        h2 = a[abs_at + 3 : level_at if level_at >= 0 else end] if abs_at >= 0 else b''
        h3 = a[level_at + 1 :] if level_at >= 0 else b''
        return a[0], h1, h2, h3, abs_at >= 0, level_at >= 0


class _NoWire(Exception):
    pass


def _fast_port(port: SenderPort, sender: Any) -> None:
    """Make ``port.write`` usable (fast path): header template, history ring, NACKs rebuilt from the source."""
    try:
        port._wire = _Wire(port._extensions, port._mid)
    except _NoWire:
        return
    port._ring_seq = [-1] * _HISTORY
    port._ring_src = [None] * _HISTORY
    port._ring_ts = [0] * _HISTORY
    port._dtls = port._transport
    port._ice = port._transport.transport._connection
    original_retransmit = sender._retransmit

    async def retransmit(sequence_number: int) -> None:
        # rebuild the packet as it was sent from its source, then let aiortc send it (with RTX when negotiated)
        i = sequence_number % _HISTORY
        source = port._ring_src[i]
        if port._ring_seq[i] == sequence_number and source is not None:
            packet = RtpPacket(
                payload_type=port.payload_type,
                marker=source.marker,
                sequence_number=sequence_number,
                timestamp=port._ring_ts[i],
                ssrc=port.ssrc,
                payload=source.payload,
            )
            packet.extensions.mid = port._mid
            packet.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
            packet.extensions.audio_level = source.extensions.audio_level
            sender._RTCRtpSender__rtp_history[i] = packet
        await original_retransmit(sequence_number)

    sender._retransmit = retransmit
    port.fast = True


def serialise(wire: _Wire, payload_type: int, ssrc: int, source: RtpPacket, seq: int, ts: int, abs3: bytes) -> bytes:
    """``source`` as one subscriber's packet: the same bytes as aiortc's ``RtpPacket.serialize`` for these fields
    (mid, abs-send-time ``abs3``, the source's audio level), written by patching the subscriber's header template."""
    level = source.extensions.audio_level
    b0, h1, h2, h3, with_abs, with_level = wire.plain if level is None else wire.level
    header = _HEADER.pack(b0, source.marker << 7 | payload_type, seq, ts, ssrc)
    if with_level:
        lb = _BYTES[(0x80 if level[0] else 0) | (level[1] & 0x7F)]
        return b''.join((header, h1, abs3 if with_abs else b'', h2, lb, h3, source.payload))
    return b''.join((header, h1, abs3 if with_abs else b'', h2, source.payload))


def _write(port: SenderPort, source: RtpPacket, seq: int, ts: int, abs3: bytes, ntp: int) -> int:
    """Send ``source`` to this subscriber: patched header, SRTP, ``sendto`` on the nominated pair (else aiortc)."""
    if port.closed:
        return 0
    data = serialise(port._wire, port.payload_type, port.ssrc, source, seq, ts, abs3)
    dtls = port._dtls
    if dtls._state is not _STATE_CONNECTED:
        return 0
    pair = port._ice._nominated.get(1)
    if pair is not port._pair:
        port._pair = pair
        port._sendto = _direct_sendto(pair)
        port._pair_addr = None if pair is None else pair.remote_addr
    i = seq % _HISTORY
    port._ring_seq[i] = seq
    port._ring_src[i] = source
    port._ring_ts[i] = ts
    sendto = port._sendto
    if sendto is not None:
        sendto(dtls._tx_srtp.protect(data), port._pair_addr)
    else:
        port.fallbacks += 1
        task = asyncio.ensure_future(_send_via_aiortc(dtls, data))
        port._tasks.add(task)
        task.add_done_callback(port._tasks.discard)
    s = port._sender
    s._RTCRtpSender__ntp_timestamp = ntp
    s._RTCRtpSender__rtp_timestamp = ts
    s._RTCRtpSender__octet_count += len(source.payload)
    s._RTCRtpSender__packet_count += 1
    return len(data)


_BYTES = [bytes((i,)) for i in range(256)]


def _direct_sendto(pair: Any) -> Callable[[bytes, Any], None] | None:
    """``transport.sendto`` of a nominated pair on a plain UDP socket (host or server-reflexive); None otherwise
    (no pair, or a relayed one through TURN): such packets go through aiortc's ``_send_rtp``."""
    if pair is None or type(pair.protocol) is not aioice.ice.StunProtocol:
        return None
    transport = getattr(pair.protocol, 'transport', None)
    if transport is None or transport.is_closing():
        return None
    return transport.sendto  # type: ignore[no-any-return]


async def _send_via_aiortc(dtls: RTCDtlsTransport, data: bytes) -> None:
    try:
        await dtls._send_rtp(data)
    except ConnectionError:
        pass


SenderPort.write = _write  # type: ignore[assignment]


def _fast_path_missing(receiver: Any) -> list[str]:
    """Touch points 30-35 that the installed aiortc/aioice lack (see the module docstring)."""
    missing: list[str] = []
    init_names = {
        'aioice.ice.Connection': (aioice.ice.Connection, ('_nominated',)),
        'RTCDtlsTransport': (
            RTCDtlsTransport,
            ('_rx_srtp', '_tx_srtp', '_state', '_rtp_router', '_rtp_header_extensions_map'),
        ),
        'RTCIceGatherer': (RTCIceGatherer, ('_connection',)),
        'RTCIceTransport': (RTCIceTransport, ('_connection',)),
    }
    for label, (cls, names) in init_names.items():
        assigned = set(cls.__init__.__code__.co_names)  # type: ignore[misc]
        missing += [f'{label}.{n}' for n in names if n not in assigned]
    for label, obj, names in (
        ('aioice.ice.Connection', aioice.ice.Connection, ('data_received',)),
        ('aioice.ice.StunProtocol', aioice.ice.StunProtocol, ('connection_made', 'send_data')),
        ('aioice.ice.CandidatePair', aioice.ice.CandidatePair, ('remote_addr',)),
        ('RtpRouter', RtpRouter, ('route_rtp',)),
        ('RTCRtpReceiver', RTCRtpReceiver, ('_send_rtcp', '_send_rtcp_nack')),
        ('RTCRtpSender', RTCRtpSender, ('_retransmit',)),
        ('NackGenerator', NackGenerator, ('add',)),
        ('StreamStatistics', StreamStatistics, ('add',)),
        ('pylibsrtp.Session', pylibsrtp.Session, ('protect', 'unprotect')),
    ):
        missing += [f'{label}.{n}' for n in names if not hasattr(obj, n)]
    ids = getattr(HeaderExtensionsMap(), '_HeaderExtensionsMap__ids', None)
    for name in ('audio_level', 'rtp_stream_id', 'repaired_rtp_stream_id'):
        if not hasattr(ids, name):
            missing.append(f'HeaderExtensionsMap.__ids.{name}')
    if not hasattr(_DtlsState, 'CONNECTED'):
        missing.append('aiortc.rtcdtlstransport.State.CONNECTED')
    for name in (
        '_enabled',
        '_RTCRtpReceiver__codecs',
        '_RTCRtpReceiver__remote_streams',
        '_RTCRtpReceiver__rtx_ssrc',
        '_RTCRtpReceiver__nack_generator',
        '_RTCRtpReceiver__rtcp_ssrc',
    ):
        if not hasattr(receiver, name):
            missing.append(f'RTCRtpReceiver.{name}')
    nack = getattr(receiver, '_RTCRtpReceiver__nack_generator', None)
    if nack is not None and not (hasattr(nack, 'max_seq') and hasattr(nack, 'missing')):
        missing.append('NackGenerator.max_seq/missing')
    return missing


# --- An m-line the client recycled under a new mid (touch points 26-27) -----------------------------------------------


class MlineReuseError(ValueError):
    """A client offer moves an m-line that was not rejected to another mid (JSEP forbids it)."""


def release_recycled_mlines(pc: RTCPeerConnection, offer_sdp: str, rejected: set[str]) -> list[RTCRtpTransceiver]:
    """Before applying a client offer: detach every transceiver whose m-line the offer reuses under a new mid.

    Chromium recycles a stopped (rejected) m-line for a new transceiver under a new mid. aiortc would give the new
    mid to the old, stopped transceiver holding that m-line index (its m-line index and ``setLocalDescription``'s
    mid assignment by index), so the SFU would tap the wrong receiver. The old transceiver leaves the PC (touch
    points 26: ``RTCPeerConnection._RTCPeerConnection__transceivers``, 27: ``RTCRtpTransceiver._get_mline_index`` /
    ``_set_mline_index``), and aiortc creates a fresh one for the new mid at that index. The caller stops the
    detached transceivers. ``rejected``: the mids the client rejected before (port 0); an m-line that was not
    rejected and changes mid is refused with ``MlineReuseError``.
    """
    p: Any = pc
    transceivers: list[RTCRtpTransceiver] = p._RTCPeerConnection__transceivers
    detached: list[RTCRtpTransceiver] = []
    for index, media in enumerate(sdp.SessionDescription.parse(offer_sdp).media):
        holder = next((t for t in transceivers if t._get_mline_index() == index), None)
        if holder is None or holder.mid is None or holder.mid == media.rtp.muxId:
            continue
        if holder.mid not in rejected and not holder.stopped:
            raise MlineReuseError(
                f'm-line {index} changes mid from {holder.mid!r} to {media.rtp.muxId!r} without being rejected first'
            )
        transceivers.remove(holder)
        holder._set_mline_index(None)  # type: ignore[arg-type]
        detached.append(holder)
    return detached


def recycle_rejected_mlines(
    pc: RTCPeerConnection, offer: RTCSessionDescription, rejected: set[str]
) -> tuple[RTCSessionDescription, list[tuple[RTCRtpTransceiver, int]]]:
    """An SFU offer: put each new m-line in place of a rejected one of its kind, as Chromium does for its own offers.

    Without this, every pulled track that a client stops (partytracks stops them on close) leaves a rejected
    section in the session for ever, a full one in the browser's SDP, and a long call outgrows any bound. JSEP lets
    the offerer recycle a rejected m-section under a new mid (Chromium, as answerer, makes a new transceiver for it).
    aiortc appends new transceivers at the end (``createOffer``); here the new section moves into the rejected slot
    (touch points 26-27: the old transceiver leaves ``__transceivers`` and the new one takes its m-line index).

    ``rejected``: mids rejected by the client or by an SFU answer. Never the BUNDLE tag, never a data channel
    session. Returns the offer and, for each recycled slot, the detached old transceiver and its index: the caller
    stops it once the offer is answered, or puts it back with ``restore_recycled`` if the offer is rolled back.
    """
    p: Any = pc
    transceivers: list[RTCRtpTransceiver] = p._RTCPeerConnection__transceivers
    parsed = sdp.SessionDescription.parse(offer.sdp)
    if not rejected or any(m.kind not in ('audio', 'video') for m in parsed.media):
        return offer, []
    tag = next((str(g.items[0]) for g in parsed.group if g.semantic == 'BUNDLE' and g.items), None)

    def holder(index: int) -> RTCRtpTransceiver | None:
        return next((t for t in transceivers if t._get_mline_index() == index), None)

    free = [
        i
        for i, m in enumerate(parsed.media)
        if m.rtp.muxId in rejected and m.rtp.muxId != tag and (h := holder(i)) is not None and h.mid == m.rtp.muxId
    ]
    new: list[tuple[int, RTCRtpTransceiver]] = sorted(
        (
            (index, t)
            for t in transceivers
            if t.mid is None and not t.stopped and (index := t._get_mline_index()) is not None
        ),
        key=lambda pair: pair[0],
    )
    moved: dict[int, int] = {}  # new section's index -> the rejected slot it takes
    detached: list[tuple[RTCRtpTransceiver, int]] = []
    for j, t in new:
        i = next((i for i in free if parsed.media[i].kind == t.kind and i < j), None)
        if i is None:
            continue
        free.remove(i)
        old = holder(i)
        assert old is not None
        transceivers.remove(old)
        old._set_mline_index(None)  # type: ignore[arg-type]
        detached.append((old, i))
        moved[j] = i
    if not moved:
        return offer, []
    gone = {parsed.media[i].rtp.muxId for i in moved.values()}
    media = list(parsed.media)
    for j, i in moved.items():
        media[i] = parsed.media[j]
    keep = [k for k in range(len(media)) if k not in moved]
    position = {k: n for n, k in enumerate(keep)}
    for j, t in new:
        t._set_mline_index(moved[j] if j in moved else position[j])
    parsed.media = [media[k] for k in keep]
    for group in parsed.group:
        group.items = [mid for mid in group.items if mid not in gone]
    return RTCSessionDescription(sdp=str(parsed), type='offer'), detached


def restore_recycled(pc: RTCPeerConnection, detached: list[tuple[RTCRtpTransceiver, int]]) -> None:
    """Undo ``recycle_rejected_mlines`` for an SFU offer rolled back unanswered: the old transceivers take their
    m-line indexes back (call after ``rollback_local_offer``, which removed the new ones)."""
    p: Any = pc
    transceivers: list[RTCRtpTransceiver] = p._RTCPeerConnection__transceivers
    for old, index in detached:
        if old not in transceivers:
            transceivers.append(old)
        old._set_mline_index(index)


# --- The client moved BUNDLE to a new transport (touch points 28-29) --------------------------------------------------


def bundle_tag(offer_sdp: str) -> str | None:
    """The first mid of the first BUNDLE group of an SDP (the m-line whose transport the group uses)."""
    for group in sdp.SessionDescription.parse(offer_sdp).group:
        if group.semantic == 'BUNDLE' and group.items:
            return str(group.items[0])
    return None


def current_bundle_tag(pc: RTCPeerConnection) -> str | None:
    """The BUNDLE tag of the PC's latest remote description, None before any (aiortc keeps a remote offer "pending"
    even once answered, so this is ``remoteDescription``, pending or current)."""
    description = pc.remoteDescription
    return None if description is None else bundle_tag(description.sdp)


async def restart_dtls(pc: RTCPeerConnection) -> bool:
    """Make the PC's connected DTLS transports handshake again at the next ``setLocalDescription``.

    When a browser closes the m-line carrying the BUNDLE tag (usually mid 0), it moves the group onto a new transport:
    same ICE credentials but a new socket (its checks arrive from a new address: aioice learns it as a
    peer-reflexive candidate and follows the browser's nomination), and a new DTLS transport offered
    ``a=setup:actpass``, whose handshake and SRTP keys are new. The SFU keeps its ICE agent and its DTLS transport
    object (every sender, receiver, router and forwarding port keeps pointing at it) and only starts a new handshake
    on it: aiortc's ``__connect`` starts a DTLS transport in state ``new`` (touch points 28:
    ``RTCDtlsTransport._task`` / ``_state`` / ``_ssl`` / ``encrypted`` / ``_rx_srtp`` / ``_tx_srtp`` /
    ``__handshake_done``, 29: ``RTCPeerConnection.__dtlsTransports`` and its ``__updateConnectionState`` listener,
    detached while the old data pump stops so that its ``closed`` does not close the PC). Returns whether a transport
    was restarted.
    """
    p: Any = pc
    listener = p._RTCPeerConnection__updateConnectionState
    restarted = False
    for dtls in list(p._RTCPeerConnection__dtlsTransports):
        d: Any = dtls
        if d._state != _DtlsState.CONNECTED:
            continue
        dtls.remove_listener('statechange', listener)
        try:
            task, d._task = d._task, None
            if task is not None:
                task.cancel()
                await asyncio.wait([task])  # its own CancelledError stays in it; ours would still propagate
        finally:
            dtls.on('statechange', listener)
        d._state = _DtlsState.NEW
        d._ssl = None
        d.encrypted = False
        d._rx_srtp = None
        d._tx_srtp = None
        d._RTCDtlsTransport__handshake_done = False
        restarted = True
    return restarted


# --- Simulcast receive (touch points 36-39; 30-35 are the fast path's) ------------------------------------------------


def keep_rid_extensions(pc: RTCPeerConnection, offer_sdp: str, mids: set[str]) -> None:
    """After applying a client offer: the transceivers of ``mids`` (simulcast) keep the offer's RID header extensions.

    aiortc answers only the extensions it knows (mid, abs-send-time, audio level); an answer without
    ``rtp-stream-id`` to a simulcast offer makes Chromium refuse every later local offer. Appended to the
    transceiver's ``_headerExtensions`` (23/24), they are answered, configured on the transport's extension map (so
    RTP parsing reads RIDs) and kept by ``create_offer``.
    """
    rid_uris = (
        'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
        'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
    )
    offered = {m.rtp.muxId: m for m in sdp.SessionDescription.parse(offer_sdp).media}
    for transceiver in pc.getTransceivers():
        media = offered.get(transceiver.mid) if transceiver.mid in mids else None
        if media is None:
            continue
        t: Any = transceiver
        have = {e.uri for e in t._headerExtensions}
        for ext in media.rtp.headerExtensions:
            if ext.uri in rid_uris and ext.uri not in have:
                t._headerExtensions.append(RTCRtpHeaderExtensionParameters(id=ext.id, uri=ext.uri))


StreamHandler = Callable[[int, str | None, str | None], bool]


def route_simulcast(receiver: RTCRtpReceiver, on_stream: StreamHandler) -> None:
    """Route RTP streams that no ``a=ssrc`` announced to ``receiver`` by their MID header extension.

    aiortc's ``RtpRouter`` routes only by SSRC or by a payload type that a single receiver has; simulcast layers
    share the payload type of every other video m-line of the BUNDLE. The transport's router gets (once) a
    ``route_rtp`` that, for an unknown SSRC whose MID extension names a receiver with ``on_stream``, asks
    ``on_stream(ssrc, rid, repaired_rid)`` and, if it takes the stream, routes that SSRC there from then on (touch
    points 36: ``RtpRouter.route_rtp`` / ``mid_table`` / ``ssrc_table`` / ``payload_type_table`` per instance, 37:
    ``RTCRtpReceiver._sfu_on_stream``, an attribute of ours on the receiver).
    """
    r: Any = receiver
    r._sfu_on_stream = on_stream
    dtls: Any = receiver.transport
    router: Any = dtls._rtp_router
    if getattr(router, '_sfu_mid_routing', False):
        return
    original = router.route_rtp

    def route_rtp(packet: RtpPacket) -> Any:
        if packet.ssrc not in router.ssrc_table:
            mid = packet.extensions.mid
            target = router.mid_table.get(mid) if mid else None
            handler = getattr(target, '_sfu_on_stream', None)
            if handler is not None:
                ext = packet.extensions
                if not handler(packet.ssrc, ext.rtp_stream_id, ext.repaired_rtp_stream_id):
                    return None
                router.ssrc_table[packet.ssrc] = target
                return target if target in router.payload_type_table.get(packet.payload_type, ()) else None
        return original(packet)

    router.route_rtp = route_rtp
    router._sfu_mid_routing = True


def map_rtx_stream(receiver: RTCRtpReceiver, rtx_ssrc: int, media_ssrc: int) -> None:
    """A layer's RTX stream (``repaired-rtp-stream-id``): the receiver unwraps it onto the layer's SSRC (touch point
    38: ``RTCRtpReceiver.__rtx_ssrc``, 32)."""
    r: Any = receiver
    r._RTCRtpReceiver__rtx_ssrc[rtx_ssrc] = media_ssrc


class _PerStreamNacks:
    """aiortc's ``NackGenerator`` follows one sequence space; simulcast interleaves one per layer. This keeps one per
    SSRC behind the interface the lean receiver uses (``max_seq``, ``missing``, ``add``) (touch point 39:
    ``RTCRtpReceiver.__nack_generator``, replaced before the receiver is tapped)."""

    def __init__(self) -> None:
        self._by_ssrc: dict[int, NackGenerator] = {}
        self._last: NackGenerator | None = None

    @property
    def max_seq(self) -> None:
        return None  # never the in-order shortcut: every packet goes through add()

    @property
    def missing(self) -> set[int]:
        return set() if self._last is None else self._last.missing

    def add(self, packet: RtpPacket) -> bool:
        generator = self._by_ssrc.get(packet.ssrc)
        if generator is None:
            generator = self._by_ssrc[packet.ssrc] = NackGenerator()
        self._last = generator
        return bool(generator.add(packet))


def per_stream_nacks(receiver: RTCRtpReceiver) -> None:
    r: Any = receiver
    if r._RTCRtpReceiver__nack_generator is not None:
        r._RTCRtpReceiver__nack_generator = _PerStreamNacks()
