from __future__ import annotations

from rooms.limits import BucketMap, TokenBucket


def test_a_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.25) is False  # half a token
    assert bucket.take(0.5) is True  # one token after 0.5 s at 2/s
    assert bucket.take(0.5) is False
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # refills only up to the burst


def test_a_clock_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0)
    assert bucket.take(10.0) is True
    assert bucket.take(5.0) is False


def test_bucket_map_keeps_keys_apart_and_bounded() -> None:
    buckets = BucketMap(rate=1.0, burst=1.0, max_keys=3)
    assert buckets.take('a', 0.0) is True
    assert buckets.take('a', 0.0) is False
    assert buckets.take('b', 0.0) is True  # another key has its own bucket
    for key in ('c', 'd', 'e'):
        buckets.take(key, 0.0)
    assert len(buckets.buckets) == 3
    assert 'a' not in buckets.buckets  # the least recently used went
    buckets.forget('e')
    assert 'e' not in buckets.buckets


def test_stall_guard_skips_the_tick_right_after_a_stall() -> None:
    from rooms.limits import StallGuard

    guard = StallGuard(interval=5.0, tolerance=2.0)
    assert guard.tick(100.0) is True
    assert guard.tick(105.5) is True and guard.lag == 0.5
    assert guard.tick(130.0) is False and guard.lag == 19.5  # the loop was blocked ~20 s
    assert guard.tick(135.1) is True  # the next tick is on time again


def test_event_gate_passes_known_events_within_their_budget_and_reports_a_burst_of_drops_once() -> None:
    from rooms.limits import EventGate, Verdict

    gate = EventGate(limits={'speaking': (1.0, 2.0), 'heartbeat': (0.5, 1.0)})
    assert [gate.admit('speaking', 0.0) for _ in range(4)] == [
        Verdict.PASS,
        Verdict.PASS,
        Verdict.DROP_FIRST,
        Verdict.DROP,
    ]
    assert gate.admit('heartbeat', 0.0) is Verdict.PASS  # its own bucket
    assert gate.admit('speaking', 1.0) is Verdict.PASS  # refilled: the burst of drops is over
    assert gate.admit('speaking', 1.0) is Verdict.DROP_FIRST  # a new burst is reported again
    assert gate.dropped == 3


def test_event_gate_drops_unknown_names_without_growing() -> None:
    from rooms.limits import EventGate, Verdict

    gate = EventGate(limits={'speaking': (1.0, 1.0)})
    verdicts = [gate.admit(f'forged-{i}', float(i)) for i in range(1000)]
    assert verdicts[0] is Verdict.DROP_FIRST and set(verdicts[1:]) == {Verdict.DROP}
    assert gate.buckets == {} and gate.dropping == {''} and gate.dropped == 1000


def test_bucket_map_available_takes_nothing() -> None:
    buckets = BucketMap(rate=1.0, burst=1.0)
    assert buckets.available('new', 0.0) is True  # never seen: full
    assert buckets.take('a', 0.0) is True
    assert buckets.available('a', 0.0) is False
    assert buckets.available('a', 1.0) is True and buckets.take('a', 1.0) is True
