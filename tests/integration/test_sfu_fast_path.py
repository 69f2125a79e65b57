"""The SFU's fast forwarding path (``SFU_FORWARD_PATH=fast``, the default): header bytes patched per subscriber,
SRTP + ``sendto`` on the nominated ICE pair, NACKs rebuilt from the source packet, the lean synchronous receiver.

Byte equality is checked against aiortc's own serialiser for the same fields; the transport tests use fakes for
the DTLS transport and the ICE pair; the end-to-end tests run aiortc peers through the SFU (SRTP must stay valid).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import aioice.ice
import av
import httpx
import pytest
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.calls_client import CallsClient
from media.sfu import EmbeddedSFU, aiortc_glue
from media.sfu.aiortc_glue import SenderPort, _Wire, abs_send_time_bytes, serialise

from .conftest import APP_ID, APP_SECRET, make_config
from .sfu_peers import first_frame, new_subscriber, publish, pull, track_for

MID = 'urn:ietf:params:rtp-hdrext:sdes:mid'
ABS = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time'
LEVEL = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level'
TOFFSET = 'urn:ietf:params:rtp-hdrext:toffset'


def parameters(extensions: list[tuple[int, str]], mid: str | None = '1', pt: int = 97) -> RTCRtpSendParameters:
    return RTCRtpSendParameters(
        codecs=[RTCRtpCodecParameters(mimeType='video/VP8', clockRate=90000, payloadType=pt)],
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for i, u in extensions],
        muxId=mid or '',
    )


def source(payload: bytes, *, marker: int = 0, level: tuple[bool, int] | None = None) -> RtpPacket:
    packet = RtpPacket(payload_type=100, marker=marker, sequence_number=7, timestamp=9, ssrc=1234, payload=payload)
    packet.extensions.audio_level = level
    return packet


def aiortc_bytes(
    extensions: HeaderExtensionsMap, mid: str | None, src: RtpPacket, pt: int, ssrc: int, seq: int, ts: int, abs_: int
) -> bytes:
    packet = RtpPacket(payload_type=pt, marker=src.marker, sequence_number=seq, timestamp=ts, ssrc=ssrc)
    packet.payload = src.payload
    packet.extensions.mid = mid
    packet.extensions.abs_send_time = abs_
    packet.extensions.audio_level = src.extensions.audio_level
    return packet.serialize(extensions)


# ---- the patched header is aiortc's serialisation, byte for byte ------------------------------------------------


LAYOUTS = {
    'video (mid, abs-send-time)': [(1, MID), (3, ABS)],
    'audio (mid, audio level)': [(1, MID), (2, LEVEL)],
    'mid, abs-send-time, audio level': [(4, LEVEL), (1, MID), (3, ABS)],
    'mid, toffset, abs-send-time, audio level': [(1, MID), (5, TOFFSET), (3, ABS), (2, LEVEL)],
    'no extensions': [],
    'abs-send-time only': [(3, ABS)],
    'two-byte header (id 15)': [(15, MID), (3, ABS)],
}


@pytest.mark.parametrize('layout', list(LAYOUTS))
@pytest.mark.parametrize('mid', ['0', '12', 'a-mid-longer-than-16-bytes', None])
def test_patched_packets_equal_aiortc_serialisation(layout: str, mid: str | None) -> None:
    params = parameters(LAYOUTS[layout], mid)
    extensions = HeaderExtensionsMap()
    extensions.configure(params)
    wire = _Wire(extensions, mid)
    cases = [
        (source(b'\x10\x00payload'), 97, 0xDEADBEEF, 0, 0, 0),
        (source(b'x' * 1100, marker=1), 127, 1, 65535, 2**32 - 1, 0xFFFFFF),
        (source(b'opus', level=(True, 5)), 111, 42, 12345, 48000, 0x123456),
        (source(b'opus', marker=1, level=(False, 127)), 96, 2**32 - 1, 1, 960, 0xABCDEF),
        (source(b''), 0, 0, 0, 0, 0),
    ]
    for src, pt, ssrc, seq, ts, abs_ in cases:
        expected = aiortc_bytes(extensions, mid, src, pt, ssrc, seq, ts, abs_)
        assert serialise(wire, pt, ssrc, src, seq, ts, abs_.to_bytes(3, 'big')) == expected, (layout, mid, seq)


def test_abs_send_time_is_aiortcs_for_the_same_ntp_time() -> None:
    for ntp in (0, 1 << 32, 0xE5F3_1234_89AB_CDEF, (2**64) - 1):
        assert abs_send_time_bytes(ntp) == ((ntp >> 14) & 0x00FFFFFF).to_bytes(3, 'big')


# ---- SenderPort.write on fakes: SRTP + sendto on the nominated pair, fallback, NACK rebuild ----------------------


class FakeUdp:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.closing = False

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))

    def is_closing(self) -> bool:
        return self.closing


def udp_pair(port: int) -> tuple[Any, FakeUdp]:
    protocol = aioice.ice.StunProtocol(receiver=None)  # type: ignore[arg-type]
    udp = FakeUdp()
    protocol.transport = udp  # type: ignore[assignment]
    return SimpleNamespace(protocol=protocol, remote_addr=('127.0.0.1', port)), udp


class Rig:
    """A SenderPort on a fake sender, DTLS transport and ICE connection."""

    def __init__(self, extensions: list[tuple[int, str]]) -> None:
        self.pair, self.udp = udp_pair(5000)
        self.connection = SimpleNamespace(_nominated={1: self.pair})
        self.via_aiortc: list[bytes] = []
        self.retransmitted: list[RtpPacket | None] = []
        self.fail_aiortc = False

        async def send_rtp(data: bytes) -> None:
            if self.fail_aiortc:
                raise ConnectionError
            self.via_aiortc.append(data)

        self.dtls = SimpleNamespace(
            _state=State.CONNECTED,
            _tx_srtp=SimpleNamespace(protect=lambda data: b'SRTP' + data),
            transport=SimpleNamespace(_connection=self.connection),
            _send_rtp=send_rtp,
        )
        history: dict[int, RtpPacket] = {}

        async def retransmit(seq: int) -> None:  # aiortc's: reads the history, wraps RTX, sends
            self.retransmitted.append(history.get(seq % 128))

        self.sender: Any = SimpleNamespace(transport=self.dtls, _ssrc=5555, _retransmit=retransmit)
        for name, value in (
            ('__rtp_history', history),
            ('__packet_count', 0),
            ('__octet_count', 0),
            ('__ntp_timestamp', 0),
            ('__rtp_timestamp', 0),
        ):
            setattr(self.sender, '_RTCRtpSender' + name, value)
        self.params = parameters(extensions, '3', pt=98)
        self.port = SenderPort(self.sender, self.params)
        self.extensions = HeaderExtensionsMap()
        self.extensions.configure(self.params)

    def expected(self, src: RtpPacket, seq: int, ts: int, ntp: int) -> bytes:
        return aiortc_bytes(self.extensions, '3', src, 98, 5555, seq, ts, (ntp >> 14) & 0xFFFFFF)


@pytest.fixture
def fast_path() -> Iterator[None]:
    before = aiortc_glue.forward_path()
    aiortc_glue.set_forward_path('fast')
    yield
    aiortc_glue.set_forward_path(before)


async def test_write_protects_and_sends_to_the_nominated_pair(fast_path: None) -> None:
    rig = Rig([(1, MID), (3, ABS)])
    assert rig.port.fast
    src, ntp = source(b'\x10\x00frame', marker=1), 0xE5F3_0000_8000_0000
    sent = rig.port.write(src, 100, 90000, abs_send_time_bytes(ntp), ntp)
    assert rig.udp.sent == [(b'SRTP' + rig.expected(src, 100, 90000, ntp), ('127.0.0.1', 5000))]
    assert sent == len(rig.expected(src, 100, 90000, ntp))
    s = rig.sender  # the sender report's counters and NTP/RTP mapping
    assert (s._RTCRtpSender__packet_count, s._RTCRtpSender__octet_count) == (1, len(src.payload))
    assert (s._RTCRtpSender__ntp_timestamp, s._RTCRtpSender__rtp_timestamp) == (ntp, 90000)
    assert rig.via_aiortc == [] and rig.port.fallbacks == 0


async def test_a_nack_is_answered_by_rebuilding_the_packet_from_its_source(fast_path: None) -> None:
    rig = Rig([(1, MID), (2, LEVEL), (3, ABS)])
    sources = [source(bytes([i]) * 20, marker=i % 2, level=(True, i)) for i in range(200)]
    for i, src in enumerate(sources):
        rig.port.write(src, (65500 + i) & 0xFFFF, 1000 * i, abs_send_time_bytes(i << 20), i << 20)
    nacked = (65500 + 190) & 0xFFFF  # after the wrap, within the history
    await rig.sender._retransmit(nacked)
    rebuilt = rig.retransmitted[-1]
    assert rebuilt is not None
    assert (rebuilt.sequence_number, rebuilt.timestamp, rebuilt.ssrc, rebuilt.payload_type) == (
        nacked,
        190_000,
        5555,
        98,
    )
    assert (rebuilt.marker, rebuilt.payload, rebuilt.extensions.audio_level) == (0, sources[190].payload, (True, 190))
    assert rebuilt.extensions.mid == '3'
    # same bytes as the original send but for abs-send-time (the time of the retransmission)
    original = next(d for d, _ in rig.udp.sent if d[6:8] == nacked.to_bytes(2, 'big'))  # after b'SRTP'
    rebuilt.extensions.abs_send_time = 190 << 6  # the abs-send-time of the original send (ntp 190 << 20)
    assert b'SRTP' + rebuilt.serialize(rig.extensions) == original
    # a NACK for a packet that fell out of the history is not answered with a wrong one
    rig.retransmitted.clear()
    await rig.sender._retransmit((65500 + 10) & 0xFFFF)
    assert rig.retransmitted[-1] is None or rig.retransmitted[-1].sequence_number != (65500 + 10) & 0xFFFF


async def test_a_pair_change_and_a_relayed_pair_fall_back_to_aiortc(fast_path: None) -> None:
    rig = Rig([(1, MID), (3, ABS)])
    src = source(b'\x10\x00frame')
    rig.port.write(src, 1, 0, b'\x00\x00\x01', 1 << 14)
    other, udp2 = udp_pair(6000)
    rig.connection._nominated[1] = other  # ICE nominated another pair: the next packet goes there
    rig.port.write(src, 2, 0, b'\x00\x00\x01', 1 << 14)
    assert len(rig.udp.sent) == 1 and udp2.sent[0][1] == ('127.0.0.1', 6000)
    relayed = SimpleNamespace(protocol=object(), remote_addr=('10.0.0.1', 3478))  # TURN: aiortc's path
    rig.connection._nominated[1] = relayed
    rig.port.write(src, 3, 0, b'\x00\x00\x01', 1 << 14)
    await asyncio.sleep(0)
    assert rig.via_aiortc == [rig.expected(src, 3, 0, 1 << 14)]  # unprotected: aiortc protects it
    assert rig.port.fallbacks == 1 and len(udp2.sent) == 1
    del rig.connection._nominated[1]  # connection lost: aiortc's path raises ConnectionError, swallowed
    rig.fail_aiortc = True
    rig.port.write(src, 4, 0, b'\x00\x00\x01', 1 << 14)
    await asyncio.sleep(0)
    rig.connection._nominated[1] = rig.pair  # and back to a direct pair
    rig.port.write(src, 5, 0, b'\x00\x00\x01', 1 << 14)
    assert len(rig.udp.sent) == 2 and rig.port.fallbacks == 2


async def test_nothing_is_sent_before_dtls_is_connected_or_after_close(fast_path: None) -> None:
    rig = Rig([(1, MID)])
    rig.dtls._state = State.CONNECTING
    assert rig.port.write(source(b'x'), 1, 0, b'\x00\x00\x00', 0) == 0
    rig.dtls._state = State.CONNECTED
    rig.port.close()
    assert rig.port.write(source(b'x'), 2, 0, b'\x00\x00\x00', 0) == 0
    assert rig.udp.sent == [] and rig.via_aiortc == []


# ---- end to end: aiortc publisher -> SFU -> aiortc subscriber ------------------------------------------------------


@pytest.fixture(params=['fast', 'legacy'])
async def sfu_on(request: pytest.FixtureRequest) -> AsyncIterator[tuple[EmbeddedSFU, CallsClient]]:
    before = aiortc_glue.forward_path()
    aiortc_glue.set_forward_path(request.param)
    sfu = EmbeddedSFU(make_config())
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sfu.asgi_app), base_url='http://sfu')
    try:
        yield sfu, CallsClient(http, APP_ID, APP_SECRET)
    finally:
        await http.aclose()
        await sfu.close()
        aiortc_glue.set_forward_path(before)


async def test_srtp_stays_valid_end_to_end_and_the_wire_bytes_are_canonical(
    sfu_on: tuple[EmbeddedSFU, CallsClient],
) -> None:
    sfu, client = sfu_on
    fast = aiortc_glue.forward_path() == 'fast'
    publisher = await publish(client)
    subscriber = await new_subscriber(client)
    raw: list[bytes] = []
    response = await pull(client, subscriber, publisher.session_id, ['v', 'a'])
    transport: Any = subscriber.pc.getTransceivers()[0].receiver.transport
    handle_rtp = transport._handle_rtp_data

    async def on_rtp(data: bytes, arrival_time_ms: int) -> None:
        raw.append(data)
        await handle_rtp(data, arrival_time_ms=arrival_time_ms)

    transport._handle_rtp_data = on_rtp
    assert response.tracks is not None
    video_mid, audio_mid = (t.mid or '' for t in response.tracks)
    video = await first_frame(await track_for(subscriber, video_mid))
    audio = await first_frame(await track_for(subscriber, audio_mid))
    assert isinstance(video, av.VideoFrame) and video.width == 160
    assert isinstance(audio, av.AudioFrame) and audio.samples > 0
    while len(raw) < 50:
        await asyncio.sleep(0.02)
    # what the subscriber decrypted re-serialises to the same bytes with its own extension map
    for data in raw:
        packet = RtpPacket.parse(data, transport._rtp_header_extensions_map)
        assert packet.serialize(transport._rtp_header_extensions_map) == data
        assert packet.extensions.mid in (video_mid, audio_mid)
    sub_peer = sfu.service.peers[subscriber.session_id]
    ports = [s.port for s in sub_peer.subscriptions.values()]
    assert ports and all(p is not None and p.fast is fast for p in ports)
    if fast:
        assert all(p is not None and p.fallbacks == 0 for p in ports)  # host pair on loopback: direct sendto
        pub_peer = sfu.service.peers[publisher.session_id]
        assert pub_peer.pc is not None
        for t in pub_peer.pc.getTransceivers():
            r: Any = t.receiver
            assert hasattr(r, '_sfu_handle')  # the lean receiver; statistics for receiver reports are kept
            assert sum(s.packets_received for s in r._RTCRtpReceiver__remote_streams.values()) > 0
            assert r._RTCRtpReceiver__decoder_thread is None
    await publisher.pc.close()
    await subscriber.pc.close()


async def test_a_subscriber_nack_is_answered_end_to_end(sfu_on: tuple[EmbeddedSFU, CallsClient]) -> None:
    sfu, client = sfu_on
    publisher = await publish(client)
    subscriber = await new_subscriber(client)
    response = await pull(client, subscriber, publisher.session_id, ['v'])
    mid = (response.tracks or [])[0].mid or ''
    await first_frame(await track_for(subscriber, mid))
    sub = sfu.service.peers[subscriber.session_id].subscriptions[mid]
    assert sub.handle is not None
    sfu_sender: Any = sub.handle.sender
    transport: Any = subscriber.pc.getTransceivers()[0].receiver.transport
    seen: list[RtpPacket] = []
    handle_rtp = transport._handle_rtp_data

    async def on_rtp(data: bytes, arrival_time_ms: int) -> None:
        seen.append(RtpPacket.parse(data, transport._rtp_header_extensions_map))
        await handle_rtp(data, arrival_time_ms=arrival_time_ms)

    transport._handle_rtp_data = on_rtp
    while not any(p.ssrc == sfu_sender._ssrc for p in seen):
        await asyncio.sleep(0.02)
    lost = next(p for p in seen if p.ssrc == sfu_sender._ssrc)
    receiver: Any = subscriber.pc.getTransceivers()[0].receiver
    await receiver._send_rtcp_nack(sfu_sender._ssrc, [lost.sequence_number])  # as if the subscriber lost it

    def retransmission() -> RtpPacket | None:  # RTX: original sequence number in the first two payload bytes
        for p in seen:
            if p.ssrc == sfu_sender._rtx_ssrc and p.payload[:2] == lost.sequence_number.to_bytes(2, 'big'):
                return p
        return None

    for _ in range(250):
        if retransmission() is not None:
            break
        await asyncio.sleep(0.02)
    rtx = retransmission()
    assert rtx is not None
    assert rtx.payload[2:] == lost.payload and rtx.timestamp == lost.timestamp
    await publisher.pc.close()
    await subscriber.pc.close()


# ---- the lean parser reads what aiortc's parser reads, for the fields the SFU uses -----------------------------


def _fields(packet: RtpPacket) -> tuple[object, ...]:
    return (
        packet.version,
        packet.marker,
        packet.payload_type,
        packet.sequence_number,
        packet.timestamp,
        packet.ssrc,
        packet.csrc,
        packet.padding_size,
        packet.payload,
        packet.extensions.audio_level,
    )


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_the_lean_parser_agrees_with_aiortcs(layout: str) -> None:
    params = parameters(
        LAYOUTS[layout] + [(6, LEVEL)] if 'level' not in layout and layout != 'no extensions' else LAYOUTS[layout], '4'
    )
    extensions = HeaderExtensionsMap()
    extensions.configure(params)
    parse = aiortc_glue.lean_parser(extensions)
    rng = random.Random(13)
    for i in range(300):
        packet = RtpPacket(
            payload_type=rng.randrange(128),
            marker=rng.randrange(2),
            sequence_number=rng.randrange(65536),
            timestamp=rng.randrange(2**32),
            ssrc=rng.randrange(2**32),
            payload=rng.randbytes(rng.randrange(0, 1200)),
        )
        packet.csrc = [rng.randrange(2**32) for _ in range(rng.choice([0, 0, 0, 1, 3]))]
        packet.padding_size = rng.choice([0, 0, 0, 1, 4, 17])
        packet.extensions.mid = rng.choice([None, '4', 'a-long-mid'])
        packet.extensions.abs_send_time = rng.choice([None, rng.randrange(2**24)])
        packet.extensions.audio_level = rng.choice([None, (True, rng.randrange(128)), (False, rng.randrange(128))])
        data = packet.serialize(extensions)
        assert _fields(parse(data)) == _fields(RtpPacket.parse(data, extensions)), (layout, i)
    for bad in (b'', b'\x80' * 11, b'\x40' + bytes(11), b'\x90' + bytes(12), b'\xa0' + bytes(11) + b'\x00'):
        with pytest.raises(ValueError):
            RtpPacket.parse(bad, extensions)
        with pytest.raises(ValueError):
            parse(bad)


def test_with_rid_extensions_the_lean_parser_is_aiortcs() -> None:
    extensions = HeaderExtensionsMap()
    extensions.configure(parameters([(1, MID), (10, 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id')]))
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b'x')
    packet.extensions.rtp_stream_id = 'h'
    parsed = aiortc_glue.lean_parser(extensions)(packet.serialize(extensions))
    assert parsed.extensions.rtp_stream_id == 'h'  # simulcast routing still sees its RID
