"""Simulcast (issue 12 item 4): the answer to a captured Chromium simulcast offer, RID routing, one layer per
subscriber switched on a keyframe with continuous numbering, and Cloudflare's layer-choice rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import sdp
from aiortc.rtp import RtpPacket

from media.calls_api import Simulcast
from media.sfu.forwarder import Counters
from media.sfu.session import PeerSession
from media.sfu.simulcast import RID_URIS, SimulcastPublication, choose_layer, offered_layers

from .test_sfu_numbering import load

KEYFRAME = bytes([0x10, 0x00, 0x9D, 0x01, 0x2A])  # VP8: S bit, partition 0, P bit clear (a keyframe start)
DELTA = bytes([0x10, 0x01, 0x00])


@pytest.fixture
async def peer() -> Any:
    session = PeerSession('s', ice_servers=[], counters=Counters(), on_state=lambda *_: None, now=lambda: 0.0)
    yield session
    await session.close()


async def test_the_answer_receives_the_offered_layers_and_keeps_the_rid_extensions(peer: PeerSession) -> None:
    offer = load('chromium_simulcast_push.json')[0]
    assert offered_layers(offer['sdp']) == {'0': ['a', 'b', 'c']}
    answer, _ = await peer.answer(offer['sdp'])
    assert 'a=simulcast:recv a;b;c\r\n' in answer
    for rid in 'abc':
        assert f'a=rid:{rid} recv\r\n' in answer
    offered = {e.uri: e.id for e in sdp.SessionDescription.parse(offer['sdp']).media[0].rtp.headerExtensions}
    answered = {e.uri: e.id for e in sdp.SessionDescription.parse(answer).media[0].rtp.headerExtensions}
    for uri in RID_URIS:
        assert answered[uri] == offered[uri]
    assert isinstance(peer.publish('0'), SimulcastPublication)
    # a later SFU offer on this session (a pull) keeps receiving the layers, with the RID extensions
    await peer.subscribe(peer.publications['0'])
    later = await peer.offer()
    assert 'a=simulcast:recv a;b;c\r\n' in later
    later_ext = {e.uri: e.id for e in sdp.SessionDescription.parse(later).media[0].rtp.headerExtensions}
    assert all(later_ext[uri] == offered[uri] for uri in RID_URIS)


def test_layer_choice_follows_cloudflares_rules() -> None:
    rids = ['a', 'b', 'c']
    assert choose_layer(rids, {'a', 'b', 'c'}, None, None) == 'a'
    assert choose_layer(rids, {'a', 'b', 'c'}, Simulcast(preferred_rid='c'), None) == 'c'
    # the preferred layer stopped: 'none' stays on it, 'asciibetical' moves to the next available in a-z order
    assert choose_layer(rids, {'a', 'c'}, Simulcast(preferred_rid='b'), None) == 'b'
    gone = Simulcast(preferred_rid='b', rid_not_available='asciibetical')
    assert choose_layer(rids, {'a', 'c'}, gone, None) == 'c'
    assert choose_layer(rids, {'a'}, gone, None) == 'a'


class FakeForwarder:
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def feed(self, packet: RtpPacket, now: float | None = None) -> list[Any]:
        self.packets.append(packet)
        return []

    def close(self) -> None:
        pass


async def test_one_layer_per_subscriber_switched_on_a_keyframe_with_continuous_numbering() -> None:
    clock = [0.0]
    plis: list[int] = []

    async def request_keyframe(ssrc: int) -> None:
        plis.append(ssrc)

    publication = SimulcastPublication(
        kind='video',
        mime_type='video/VP8',
        codec_parameters={},
        rids=['a', 'b', 'c'],
        counters=Counters(),
        request_keyframe=request_keyframe,
        now=lambda: clock[0],
    )
    ssrcs = {'a': 111, 'b': 222, 'c': 333}
    for rid, ssrc in ssrcs.items():
        assert publication.learn(ssrc, rid)
    assert not publication.learn(444, 'z')
    switcher = publication.subscribe(Simulcast(preferred_rid='c'))
    fake = FakeForwarder()
    switcher.forwarder = fake  # type: ignore[assignment]
    seqs = {'a': 1000, 'b': 20000, 'c': 40000}

    def send(rid: str, keyframe: bool = False) -> None:
        seqs[rid] += 1
        packet = RtpPacket(payload_type=96, sequence_number=seqs[rid], timestamp=seqs[rid] * 3000, ssrc=ssrcs[rid])
        packet.payload = KEYFRAME if keyframe else DELTA
        publication.feed(packet, clock[0])
        clock[0] += 0.01

    for rid in 'abc':
        send(rid)
    assert fake.packets == []  # waits for its layer's keyframe, and asks for it
    await asyncio.sleep(0)
    assert plis == [ssrcs['c']]
    send('c', keyframe=True)
    for _ in range(3):
        for rid in 'abc':
            send(rid)
    assert len(fake.packets) == 4 and {p.ssrc for p in fake.packets} == {switcher.ssrc}
    switcher.select(Simulcast(preferred_rid='a'))
    await asyncio.sleep(0)
    assert plis[-1] == ssrcs['a']
    for rid in 'abc':
        send(rid)  # still 'c' until 'a' sends a keyframe
    send('a', keyframe=True)
    send('c')
    send('a')
    out = [p.sequence_number for p in fake.packets]
    assert out == list(range(out[0], out[0] + len(out)))  # one continuous stream across the switch
    assert fake.packets[-2].payload == KEYFRAME and switcher.current == 'a'
    assert fake.packets[-1].timestamp > fake.packets[-2].timestamp > fake.packets[-3].timestamp


async def test_packets_in_counts_each_received_layer_packet_once_whatever_the_subscribers() -> None:
    counters = Counters()

    async def request_keyframe(ssrc: int) -> None:
        pass

    publication = SimulcastPublication(
        kind='video',
        mime_type='video/VP8',
        codec_parameters={},
        rids=['a', 'b'],
        counters=counters,
        request_keyframe=request_keyframe,
        now=lambda: 0.0,
    )
    publication.learn(111, 'a')
    publication.learn(222, 'b')
    for rid in 'aab':  # three subscribers, two on the same layer
        publication.subscribe(Simulcast(preferred_rid=rid))
    for seq in range(10):
        for ssrc in (111, 222):
            packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc)
            packet.payload = KEYFRAME
            publication.feed(packet, 0.0)
    assert counters.packets_in == 20


async def test_priority_ordering_steps_a_lossy_subscriber_down_the_a_z_order_and_back_up() -> None:
    """priorityOrdering: asciibetical under loss read from the subscriber's receiver reports (the SFU has no
    bandwidth estimate): two lossy reports in a row cap it one layer lower; 10 s clean lift the cap one layer."""
    clock = [100.0]
    asked: list[int] = []

    async def request_keyframe(ssrc: int) -> None:
        asked.append(ssrc)

    publication = SimulcastPublication(
        kind='video',
        mime_type='video/VP8',
        codec_parameters={},
        rids=['f', 'h', 'q'],
        counters=Counters(),
        request_keyframe=request_keyframe,
        now=lambda: clock[0],
    )
    for ssrc, rid in ((1, 'f'), (2, 'h'), (3, 'q')):
        publication.learn(ssrc, rid)
        publication.layers[rid].last_packet_at = clock[0]  # every layer sends
    by_loss = publication.subscribe(Simulcast(preferred_rid='f', priority_ordering='asciibetical'))
    fixed = publication.subscribe(Simulcast(preferred_rid='f'))  # priorityOrdering none: never moved for loss
    for switcher in (by_loss, fixed):
        switcher.current = 'f'

    def report(fraction: float, seconds: float = 1.0) -> None:
        clock[0] += seconds
        for layer in publication.layers.values():
            layer.last_packet_at = clock[0]
        by_loss.on_loss(fraction, clock[0])
        fixed.on_loss(fraction, clock[0])

    report(0.3)
    assert by_loss.target == 'f'  # one lossy report is not enough
    report(0.05)  # moderate: resets the count
    report(0.3)
    assert by_loss.target == 'f'
    report(0.3)
    assert (by_loss.cap, by_loss.target) == ('h', 'h')
    by_loss.current = 'h'  # switched on h's keyframe
    report(0.3)
    report(0.3)
    assert (by_loss.cap, by_loss.target) == ('q', 'q')
    by_loss.current = 'q'
    report(0.3)
    report(0.3)
    assert by_loss.target == 'q'  # nothing below q
    for _ in range(10):
        report(0.0)
    assert by_loss.target == 'q'  # clean, but not for 10 s yet
    report(0.0)
    assert (by_loss.cap, by_loss.target) == ('h', 'h')
    by_loss.current = 'h'
    for _ in range(10):
        report(0.0)
    assert (by_loss.cap, by_loss.target) == (None, 'f')  # back to the preferred layer
    assert fixed.target == 'f' and fixed.cap is None
