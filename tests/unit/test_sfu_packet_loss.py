"""The embedded SFU's diagnostic packet loss (SFU_SIMULATE_LOSS), on the forwarder alone: no sockets, no clock."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiortc.rtp import RtpPacket

from media.sfu import SfuConfig
from media.sfu.forwarder import Counters, Forwarder, PacketLoss

PACKETS = 5000


class RecordingPort:
    """Stands in for ``aiortc_glue.SenderPort``: keeps what would go on the wire."""

    payload_type = 111
    ssrc = 4242

    def __init__(self) -> None:
        self.sent: list[RtpPacket] = []

    async def send(self, packet: RtpPacket) -> int:
        self.sent.append(packet)
        return len(packet.payload)


class Scripted(random.Random):
    """Dice that roll the given values in turn."""

    def __init__(self, rolls: list[float]) -> None:
        super().__init__()
        self.rolls = iter(rolls)

    def random(self) -> float:
        return next(self.rolls)


async def forward(
    loss: PacketLoss | None, subscribers: int = 1, packets: int = PACKETS
) -> tuple[Counters, list[RecordingPort]]:
    counters = Counters()

    async def no_keyframes(ssrc: int) -> None:
        raise AssertionError('audio never asks for keyframes')

    forwarder = Forwarder(
        kind='audio',
        mime_type='audio/opus',
        codec_parameters={},
        counters=counters,
        request_keyframe=no_keyframes,
        now=lambda: 0.0,
        loss=loss,
    )
    ports = [RecordingPort() for _ in range(subscribers)]
    for port in ports:
        forwarder.add_subscriber(port)  # type: ignore[arg-type]
    for seq in range(packets):
        await forwarder.on_packet(RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 960, payload=b'x'))
    return counters, ports


@pytest.mark.parametrize('fraction', [0.02, 0.08, 0.2, 0.5])
async def test_drops_about_the_configured_fraction_per_subscriber(fraction: float) -> None:
    counters, ports = await forward(PacketLoss(fraction, random.Random(7)), subscribers=2)
    for port in ports:
        dropped = PACKETS - len(port.sent)
        assert dropped / PACKETS == pytest.approx(fraction, abs=0.02)
    assert counters.simulated_drops == 2 * PACKETS - sum(len(p.sent) for p in ports)
    assert counters.packets_out == sum(len(p.sent) for p in ports)
    # Subscribers lose different packets: each downstream rolls its own dice.
    assert {p.sequence_number for p in ports[0].sent} != {p.sequence_number for p in ports[1].sent}


async def test_a_dropped_packet_is_a_gap_in_the_subscribers_sequence_numbers() -> None:
    """The subscriber can count the loss (and would NACK it): the packet was rewritten, then not sent."""
    _, [port] = await forward(PacketLoss(0.5, Scripted([0.9, 0.9, 0.1, 0.9, 0.9])), packets=5)
    first = port.sent[0].sequence_number
    assert [(p.sequence_number - first) & 0xFFFF for p in port.sent] == [0, 1, 3, 4]
    assert [(p.timestamp - port.sent[0].timestamp) & 0xFFFFFFFF for p in port.sent] == [0, 960, 2880, 3840]


@pytest.mark.parametrize('loss', [None, PacketLoss(0.0)])
async def test_no_loss_drops_nothing(loss: Any) -> None:
    counters, [port] = await forward(loss)
    assert len(port.sent) == PACKETS
    assert counters.simulated_drops == 0


@pytest.mark.parametrize('fraction', [-0.01, 0.51, 1.0])
def test_the_sfu_refuses_a_loss_outside_0_to_half(fraction: float) -> None:
    with pytest.raises(ValueError, match='simulate_loss'):
        SfuConfig(app_id='a', app_secret='s', simulate_loss=fraction)
