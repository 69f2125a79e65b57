"""Token buckets for what browsers send (log lines, events): pure, the caller passes ``now`` (monotonic seconds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum


@dataclass(kw_only=True, slots=True)
class TokenBucket:
    """Allows bursts of ``burst`` and ``rate`` per second on average; ``take`` says whether one more may pass."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def available(self, now: float) -> bool:
        """Whether ``take`` would succeed now (refills, takes nothing)."""
        if self.tokens < 0:  # first use: full
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        return self.tokens >= 1.0

    def take(self, now: float) -> bool:
        if self.available(now):
            self.tokens -= 1.0
            return True
        return False


@dataclass(kw_only=True, slots=True)
class BucketMap:
    """One bucket per key (a client, a participant), at most ``max_keys`` of them: the least recently used goes."""

    rate: float
    burst: float
    max_keys: int = 10_000
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, key: str, now: float) -> bool:
        bucket = self.buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(rate=self.rate, burst=self.burst)
            while len(self.buckets) >= self.max_keys:
                del self.buckets[next(iter(self.buckets))]
        self.buckets[key] = bucket  # re-inserted: dict order is recency
        return bucket.take(now)

    def available(self, key: str, now: float) -> bool:
        """Whether ``key`` has a token now (a key never seen has a full bucket); takes nothing."""
        bucket = self.buckets.get(key)
        return bucket is None or bucket.available(now)

    def forget(self, key: str) -> None:
        self.buckets.pop(key, None)


@dataclass(kw_only=True, slots=True)
class StallGuard:
    """Tells a periodic task whether its tick is trustworthy: after the event loop stalled (a tick came more than
    ``tolerance`` late), heartbeats that were waiting behind the stall have not been counted yet, so expiring
    participants in that tick would remove everyone the stall delayed."""

    interval: float
    tolerance: float = 2.0
    last: float | None = None
    lag: float = 0.0

    def tick(self, now: float) -> bool:
        """Record a tick at ``now``; True if it came on time (act on it), False right after a stall."""
        previous, self.last = self.last, now
        self.lag = 0.0 if previous is None else max(0.0, now - previous - self.interval)
        return self.lag <= self.tolerance


class Verdict(Enum):
    """What an `EventGate` decided about one event."""

    PASS = 'pass'
    DROP_FIRST = 'drop_first'  # the first event dropped in this burst: log it (once)
    DROP = 'drop'  # dropped, already logged for this burst


@dataclass(kw_only=True, slots=True)
class EventGate:
    """One page's (one participant's) budget for the events its browser sends: a token bucket per event name, and
    nothing for a name that has no limit (unknown events are dropped). Excess events are dropped, never queued; a
    burst of drops is reported once (`Verdict.DROP_FIRST`), until an event of that name passes again.

    ``limits`` maps an event name to ``(rate per second, burst)``; the buckets are bounded by its keys."""

    limits: Mapping[str, tuple[float, float]]
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    dropping: set[str] = field(default_factory=set)
    dropped: int = 0

    def admit(self, name: str, now: float) -> Verdict:
        limit = self.limits.get(name)
        if limit is None:
            return self._drop('')  # every unknown name shares one entry: nothing grows
        bucket = self.buckets.get(name)
        if bucket is None:
            bucket = self.buckets[name] = TokenBucket(rate=limit[0], burst=limit[1])
        if bucket.take(now):
            self.dropping.discard(name)
            return Verdict.PASS
        return self._drop(name)

    def _drop(self, name: str) -> Verdict:
        self.dropped += 1
        if name in self.dropping:
            return Verdict.DROP
        self.dropping.add(name)
        return Verdict.DROP_FIRST
