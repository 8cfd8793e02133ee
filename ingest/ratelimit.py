"""Per-source rate limit on ingest: a token bucket counted in events, held in process memory.

Each ingest process keeps its own buckets, so with N ingest replicas behind a load balancer a
source can send up to N times the configured rate. The buckets are keyed by source name, so
several write keys naming the same source (key rotation) share one bucket; only authenticated
sources get a bucket, which bounds the memory by the configured sources.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from infra.http import ApiError
from infra.settings import Settings

Clock = Callable[[], float]


class TokenBucket:
    """`burst` tokens at most, refilled at `rate` tokens per second; one token per event.

    A request larger than the burst could never find enough tokens, so it passes when the bucket
    is full and leaves it in debt (negative): the long-run rate still holds, and every batch the
    API accepts by size can get through, instead of a 429 that no retry can cure.
    """

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number, not {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        # max(): a clock that steps back must not drain the bucket.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now

    def take(self, n: int) -> float:
        """Take `n` tokens: 0 when allowed (and taken), else the seconds to wait before the same
        request would be allowed (nothing taken, so a refused request costs nothing)."""
        if n < 0:
            raise ValueError(f"cannot take {n} tokens")
        self._refill()
        needed = min(n, self.burst)
        if self._tokens >= needed:
            self._tokens -= n
            return 0.0
        return (needed - self._tokens) / self.rate


class RateLimiter:
    """One `TokenBucket` per source, created full on the source's first request."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        TokenBucket(rate, burst, clock)  # validate now, not on the first request
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, source: str, events: int) -> float:
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = TokenBucket(self.rate, self.burst, self._clock)
        return bucket.take(events)

    def check(self, source: str, events: int) -> None:
        """Raise a 429 `ApiError` with `Retry-After` if `source` may not send `events` now."""
        wait = self.take(source, events)
        if wait <= 0:
            return
        retry_after = max(1, math.ceil(wait))
        limit = f"{self.rate:g} events/s per write key with bursts of {self.burst}"
        if events > self.burst:
            detail = (
                f"this batch of {events} events is larger than the burst, so it is accepted "
                "only when the full burst is available"
            )
        else:
            detail = f"this request has {events} event{'s' if events != 1 else ''}"
        raise ApiError(
            429,
            f"rate limit exceeded ({limit}): {detail}; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def rate_limiter_for(settings: Settings) -> RateLimiter | None:
    """The limiter the settings ask for; None when it is off (the default), so the request
    path does nothing at all."""
    if settings.ingest_rate_limit_events_per_s <= 0:
        return None
    return RateLimiter(settings.ingest_rate_limit_events_per_s, settings.ingest_rate_limit_burst)
