"""Token buckets: the ingest's per-source event rate, and the per-client-address budget of
requests with a missing or bad credential on the ingest and the notifier API (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated_at: float  # monotonic seconds


def take_tokens(bucket: Bucket | None, cost: int, now: float, rate: float, burst: int) -> tuple[Bucket, float]:
    """Token bucket: (new bucket, 0) when ``cost`` tokens were taken, else (bucket, seconds to wait).

    A request never costs more than the bucket holds, so a full batch can always pass
    once the bucket has refilled.
    """
    cost = min(cost, burst)
    current = burst if bucket is None else min(burst, bucket.tokens + (now - bucket.updated_at) * rate)
    if current >= cost:
        return Bucket(current - cost, now), 0.0
    return Bucket(current, now), (cost - current) / rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


@dataclass
class BadCredentialLimiter:
    """Per client address: ``burst`` requests with a missing or bad credential, refilled at
    ``rate_per_s``; beyond that, 429 until the bucket refills. A good credential is never
    counted nor refused, so a client behind the same address with a valid key still works."""

    rate_per_s: float
    burst: int
    max_tracked: int = 100_000
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def refused(self, address: str, now: float) -> float:
        """Count one bad-credential request; seconds to wait if it is over the budget (else 0)."""
        if address not in self.buckets and len(self.buckets) >= self.max_tracked:
            self.buckets = {a: b for a, b in self.buckets.items() if now - b.updated_at < self.burst / self.rate_per_s}
            if len(self.buckets) >= self.max_tracked:
                del self.buckets[min(self.buckets, key=lambda a: self.buckets[a].updated_at)]
        bucket, wait_s = take_tokens(self.buckets.get(address), 1, now, self.rate_per_s, self.burst)
        self.buckets[address] = bucket
        return wait_s
