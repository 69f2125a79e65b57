"""The forwarder's unit tests again, on the fast path: every subscriber port takes ``write(source, seq, ts, abs3,
ntp)`` synchronously (no rewritten RtpPacket, no coroutine per packet), and must see exactly what the legacy path
sends: same sequence numbers, timestamps, payloads, order and pacing."""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from media.sfu.aiortc_glue import abs_send_time_bytes
from tests.unit import test_forwarder as base

LegacyRecordingPort = base.RecordingPort


class FastRecordingPort(LegacyRecordingPort):
    """``base.RecordingPort`` with the fast port's interface; the legacy ``send`` must never be used."""

    fast = True

    def write(self, source: RtpPacket, seq: int, ts: int, abs3: bytes, ntp: int) -> int:
        assert abs3 == abs_send_time_bytes(ntp)  # one NTP reading per packet, its abs-send-time beside it
        tick = self.ticks.count if self.ticks is not None else 0
        self.sent.append((seq, ts, source.payload, tick))
        return len(source.payload)

    async def send(self, packet: RtpPacket) -> int:
        raise AssertionError('a fast port is written to, never sent to')


@pytest.fixture(autouse=True)
def fast_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, 'RecordingPort', FastRecordingPort)


for _name in dir(base):
    if _name.startswith('test_'):
        globals()[_name] = getattr(base, _name)


async def test_the_fast_path_feeds_synchronously_and_leaves_legacy_ports_to_the_caller() -> None:
    clock = base.Clock()
    forwarder, counters = base.make_forwarder('audio', clock)
    fast, legacy = FastRecordingPort(), LegacyRecordingPort()
    forwarder.add_subscriber(fast)  # type: ignore[arg-type]
    slow = forwarder.add_subscriber(legacy)
    pub = base.Publisher(seq=10, ts=0)
    packet = pub.frame(packets=1)[0]
    assert forwarder.feed(packet) == [slow]  # the fast port got it already; the legacy one is the caller's
    assert len(fast.sent) == 1 and legacy.sent == [] and counters.packets_out == 1
    await forwarder.on_packet(pub.frame(packets=1)[0])  # on_packet does both
    assert len(fast.sent) == 2 and len(legacy.sent) == 1
