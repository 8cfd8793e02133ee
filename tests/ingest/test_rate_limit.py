"""The per-source rate limit: TokenBucket with a fake clock (no sleeping), then the routes with a
fake publisher: 429 + Retry-After + nothing produced, one bucket per source, off by default."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from infra.http import ApiError
from infra.settings import Settings
from ingest.app import create_app
from ingest.ratelimit import RateLimiter, TokenBucket, rate_limiter_for
from tests.support.messages import produced_events
from tests.support.publishers import RecordingPublisher


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- TokenBucket ----------------------------------------------------------------------------


def test_bucket_starts_full_and_refuses_without_taking() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    assert bucket.take(15) == 0
    assert bucket.take(5) == 0
    # empty: one event needs a tenth of a second at 10/s
    assert bucket.take(1) == pytest.approx(0.1)
    # a refusal takes nothing: still the same wait, and still empty
    assert bucket.take(1) == pytest.approx(0.1)
    assert bucket.tokens == pytest.approx(0)


def test_bucket_refills_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    assert bucket.take(20) == 0
    clock.advance(0.5)
    assert bucket.tokens == pytest.approx(5)
    assert bucket.take(6) == pytest.approx(0.1)
    assert bucket.take(5) == 0
    assert bucket.take(1) == pytest.approx(0.1)


def test_bucket_refill_is_capped_at_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    bucket.take(20)
    clock.advance(3600)
    assert bucket.tokens == 20
    assert bucket.take(20) == 0
    assert bucket.take(1) > 0


def test_wait_time_is_for_the_missing_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=8, clock=clock)
    bucket.take(8)
    clock.advance(0.5)  # 2 tokens back
    assert bucket.take(5) == pytest.approx(0.75)  # 3 missing at 4/s
    clock.advance(0.75)
    assert bucket.take(5) == 0


def test_more_than_the_burst_passes_from_a_full_bucket_and_leaves_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    bucket.take(1)
    # not full: waits until the bucket is full, not for the impossible 50 tokens
    assert bucket.take(50) == pytest.approx(0.1)
    clock.advance(0.1)
    assert bucket.take(50) == 0
    # 30 in debt: the next event waits for 31 tokens at 10/s
    assert bucket.tokens == pytest.approx(-30)
    assert bucket.take(1) == pytest.approx(3.1)
    clock.advance(3.1)
    assert bucket.take(1) == 0


def test_long_run_rate_holds_for_oversized_batches() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    for _ in range(10):
        wait = bucket.take(100)
        if wait:
            clock.advance(wait)
            assert bucket.take(100) == 0
    # the first batch rides the full bucket into 95 of debt; each next one waits for that debt
    # plus a full bucket: 100 tokens at 10/s. 1,000 events took 90 s, not less.
    assert clock.now - 1000.0 == pytest.approx(90)
    assert bucket.tokens == pytest.approx(-95)


def test_clock_stepping_back_does_not_drain_or_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    bucket.take(10)
    clock.advance(-100)
    assert bucket.tokens == pytest.approx(10)


@pytest.mark.parametrize(("rate", "burst"), [(0, 10), (-1, 10), (float("inf"), 10), (10, 0)])
def test_bucket_refuses_a_meaningless_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst)


def test_limiter_message_names_the_limit_and_rounds_retry_after_up() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.5, burst=5, clock=clock)
    limiter.check("web", 5)
    with pytest.raises(ApiError) as info:
        limiter.check("web", 1)  # 0.4 s away
    error = info.value
    assert (error.status, error.code) == (429, "too_many_requests")
    assert error.headers == {"Retry-After": "1"}
    assert "2.5 events/s" in error.message and "bursts of 5" in error.message
    with pytest.raises(ApiError) as info:
        limiter.check("web", 4)  # 1.6 s away: rounded up, never down
    assert info.value.headers == {"Retry-After": "2"}
    with pytest.raises(ApiError) as info:
        limiter.check("web", 5)  # 2 s away
    assert info.value.headers == {"Retry-After": "2"}
    with pytest.raises(ApiError) as info:
        limiter.check("web", 6)  # over the burst: waits for a full bucket, 2 s
    assert info.value.headers == {"Retry-After": "2"}
    assert "larger than the burst" in info.value.message


def test_limiter_is_off_by_default() -> None:
    assert rate_limiter_for(Settings.from_environment({})) is None
    on = rate_limiter_for(Settings.from_environment({"PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "3"}))
    assert on is not None and (on.rate, on.burst) == (3, 6)


# --- routes ---------------------------------------------------------------------------------

KEYS = {"PS_WRITE_KEYS": "k1:web,k2:ios"}
LIMITED = Settings.from_environment(
    {**KEYS, "PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "0.5", "PS_INGEST_RATE_LIMIT_BURST": "5"}
)
UNLIMITED = Settings.from_environment(KEYS)


def limited_app(publisher: RecordingPublisher, clock: FakeClock) -> FastAPI:
    """The app of LIMITED with its limiter on a fake clock, so Retry-After values are exact."""
    app = create_app(LIMITED, publisher)
    assert isinstance(app.state.rate_limiter, RateLimiter)
    app.state.rate_limiter = RateLimiter(
        LIMITED.ingest_rate_limit_events_per_s, LIMITED.ingest_rate_limit_burst, clock
    )
    return app


def client(app: FastAPI, key: str | None = "k1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://ingest",
        auth=(key, "") if key else None,
    )


def batch(n: int, event: str = "E") -> dict[str, object]:
    return {"batch": [{"type": "track", "userId": f"u{i}", "event": event} for i in range(n)]}


def sources(publisher: RecordingPublisher) -> list[str]:
    return [e.source for e in produced_events(publisher.records, LIMITED.events_topic)]


async def test_within_the_limit_passes_then_429_with_retry_after_and_nothing_produced() -> None:
    publisher, clock = RecordingPublisher(LIMITED), FakeClock()
    async with client(limited_app(publisher, clock)) as http:
        first = await http.post("/v1/batch", json=batch(3))
        second = await http.post("/v1/track", json={"userId": "u", "event": "E"})
        third = await http.post("/v1/batch", json=batch(3, event="Refused"))
        clock.advance(3.9)
        still = await http.post("/v1/batch", json=batch(3, event="Refused"))
        clock.advance(0.1)
        later = await http.post("/v1/batch", json=batch(3))
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429
    # 1 token left, 3 asked: 2 missing at 0.5/s
    assert third.headers["Retry-After"] == "4"
    body = third.json()
    assert body["success"] is False and body["code"] == "too_many_requests"
    assert "0.5 events/s" in body["message"] and "bursts of 5" in body["message"]
    # 0.1 s short: still refused, and Retry-After rounds up to a whole second
    assert (still.status_code, still.headers["Retry-After"]) == (429, "1")
    assert later.status_code == 200
    assert sources(publisher) == ["web"] * 7
    assert all(b"Refused" not in value for _, _, value in publisher.records)


async def test_a_body_write_key_is_limited_too() -> None:
    publisher = RecordingPublisher(LIMITED)
    async with client(limited_app(publisher, FakeClock()), key=None) as http:
        ok = await http.post("/v1/batch", json={**batch(5), "writeKey": "k1"})
        refused = await http.post("/v1/track", json={"userId": "u", "event": "E", "writeKey": "k1"})
    assert (ok.status_code, refused.status_code) == (200, 429)
    assert len(sources(publisher)) == 5


async def test_each_source_has_its_own_bucket() -> None:
    publisher = RecordingPublisher(LIMITED)
    app = limited_app(publisher, FakeClock())
    async with client(app, "k1") as web, client(app, "k2") as ios:
        assert (await web.post("/v1/batch", json=batch(5))).status_code == 200
        assert (await web.post("/v1/batch", json=batch(1))).status_code == 429
        assert (await ios.post("/v1/batch", json=batch(5))).status_code == 200
        assert (await ios.post("/v1/batch", json=batch(1))).status_code == 429
    assert sources(publisher) == ["web"] * 5 + ["ios"] * 5


async def test_unknown_or_missing_key_is_still_401_when_limited() -> None:
    publisher = RecordingPublisher(LIMITED)
    app = limited_app(publisher, FakeClock())
    async with client(app, key="nope") as unknown, client(app, key=None) as anonymous:
        for _ in range(10):
            assert (await unknown.post("/v1/batch", json=batch(5))).status_code == 401
            assert (await anonymous.post("/v1/batch", json=batch(5))).status_code == 401
    assert publisher.records == []


async def test_a_batch_over_the_burst_passes_once_then_the_source_waits() -> None:
    publisher = RecordingPublisher(LIMITED)
    async with client(limited_app(publisher, FakeClock())) as http:
        big = await http.post("/v1/batch", json=batch(8))
        after = await http.post("/v1/track", json={"userId": "u", "event": "E"})
    assert big.status_code == 200 and big.json()["accepted"] == 8
    assert after.status_code == 429
    # 3 in debt, 1 more needed: 4 tokens at 0.5/s
    assert after.headers["Retry-After"] == "8"


async def test_limit_from_settings_on_the_real_clock() -> None:
    settings = Settings.from_environment({**KEYS, "PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "0.01"})
    publisher = RecordingPublisher(settings)
    async with client(create_app(settings, publisher)) as http:
        # burst derived from the rate: max(1, ceil(2 * 0.01)) = 1 event
        ok = await http.post("/v1/track", json={"userId": "u", "event": "E"})
        refused = await http.post("/v1/track", json={"userId": "u", "event": "E"})
    assert (ok.status_code, refused.status_code) == (200, 429)
    # about 100 s at 0.01/s, give or take the test's own running time
    assert 90 <= int(refused.headers["Retry-After"]) <= 100
    assert len(sources(publisher)) == 1


async def test_off_by_default_many_requests_pass() -> None:
    publisher = RecordingPublisher(UNLIMITED)
    app = create_app(UNLIMITED, publisher)
    assert app.state.rate_limiter is None
    async with client(app) as http:
        statuses = {(await http.post("/v1/batch", json=batch(100))).status_code for _ in range(30)}
    assert statuses == {200}
    assert len(sources(publisher)) == 3000
