"""Failed authentications per client address in a sliding minute: over the limit, every request
needing a token answers 429 with Retry-After before its token is looked at; other addresses go
on; the window frees it. The clock is injected: no sleeps."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from query.operators import new_token
from query.throttle import AuthThrottle, throttled_address
from tests.support.operators import (
    ADMIN_TOKEN,
    Unreachable,
    client_of,
    made_token,
    operators_app,
)

LIMIT = 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def metric_value(name: str) -> float:
    from query.metrics import REGISTRY

    value = REGISTRY.get_sample_value(name)
    return value or 0.0


def test_an_address_is_throttled_once_it_reaches_the_limit() -> None:
    clock = Clock()
    throttle = AuthThrottle(LIMIT, clock=clock)
    for _ in range(LIMIT - 1):
        throttle.record_failure("10.0.0.1")
    assert throttle.retry_after_s("10.0.0.1") is None
    throttle.record_failure("10.0.0.1")
    assert throttle.retry_after_s("10.0.0.1") == 60
    assert throttle.retry_after_s("10.0.0.2") is None


def test_the_window_slides() -> None:
    clock = Clock()
    throttle = AuthThrottle(LIMIT, clock=clock)
    throttle.record_failure("a")  # t=1000
    clock.now += 20
    throttle.record_failure("a")  # t=1020
    throttle.record_failure("a")  # t=1020: throttled until the first one is 60 s old
    assert throttle.retry_after_s("a") == 40
    clock.now += 39.5
    assert throttle.retry_after_s("a") == 1  # rounded up: never "retry after 0"
    clock.now += 0.5
    assert throttle.retry_after_s("a") is None
    throttle.record_failure("a")  # three again within the minute (1020, 1020, 1060)
    assert throttle.retry_after_s("a") == 20


def test_zero_turns_it_off() -> None:
    throttle = AuthThrottle(0)
    for _ in range(1000):
        throttle.record_failure("a")
    assert throttle.retry_after_s("a") is None and throttle.tracked_addresses() == 0


def test_the_addresses_tracked_are_bounded_oldest_out() -> None:
    clock = Clock()
    throttle = AuthThrottle(2, max_addresses=3, clock=clock)
    for address in ["a", "b", "c"]:
        throttle.record_failure(address)
    throttle.record_failure("a")  # a is throttled, and now the most recent
    throttle.record_failure("d")  # b, the oldest, is forgotten
    assert throttle.tracked_addresses() == 3
    assert throttle.retry_after_s("a") == 60
    throttle.record_failure("b")
    assert throttle.retry_after_s("b") is None  # its earlier failure was forgotten


async def test_failures_lead_to_429_for_that_address_only_until_the_window_frees_it(
    redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = operators_app(redis)
    clock = Clock()
    app.state.auth_throttle = AuthThrottle(LIMIT, clock=clock)
    analyst_token = await made_token(app, f"throttled-{new_token()[3:11]}", "analyst")
    failures_before = metric_value("profilestream_auth_failures_total")
    throttled_before = metric_value("profilestream_auth_throttled_total")
    guesses = [new_token() for _ in range(LIMIT + 1)]

    caplog.set_level(logging.INFO)
    for guess in guesses[:LIMIT]:
        async with client_of(app, guess, address="203.0.113.7") as guesser:
            assert (await guesser.get("/v1/me")).status_code == 401

    # Throttled: a further guess, and even the right token, from that address
    for token in (guesses[LIMIT], ADMIN_TOKEN, analyst_token):
        async with client_of(app, token, address="203.0.113.7") as guesser:
            response = await guesser.get("/v1/users")
        assert response.status_code == 429, response.text
        assert response.headers["Retry-After"] == "60"
        assert response.json()["code"] == "too_many_requests"

    # Another address is not
    async with client_of(app, analyst_token, address="198.51.100.1") as other:
        assert (await other.get("/v1/me")).status_code == 200

    clock.now += 30
    async with client_of(app, ADMIN_TOKEN, address="203.0.113.7") as waiting:
        response = await waiting.get("/v1/me")
    assert response.status_code == 429 and response.headers["Retry-After"] == "30"

    clock.now += 30  # the failures are a minute old: the address is free again
    async with client_of(app, ADMIN_TOKEN, address="203.0.113.7") as freed:
        assert (await freed.get("/v1/me")).status_code == 200

    assert metric_value("profilestream_auth_failures_total") - failures_before == LIMIT
    assert metric_value("profilestream_auth_throttled_total") - throttled_before == 4

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "throttle" in r.msg]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "203.0.113.7" in warnings[0].getMessage() and "3" in warnings[0].getMessage()
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for secret in [*guesses, ADMIN_TOKEN, analyst_token]:
        assert secret not in logged


async def test_a_throttled_request_does_not_get_its_token_looked_up() -> None:
    """The 429 comes before the token check: the store is never asked, so a throttled guesser
    cannot learn whether a guess was right."""
    app = operators_app(Unreachable("token store"))
    clock = Clock()
    app.state.auth_throttle = AuthThrottle(LIMIT, clock=clock)
    for _ in range(LIMIT):
        async with client_of(app, "wrong", address="203.0.113.9") as guesser:
            assert (await guesser.get("/v1/me")).status_code == 401
    async with client_of(app, new_token(), address="203.0.113.9") as guesser:
        response = await guesser.get("/v1/me")  # a stored-token look-up would fail the test
    assert response.status_code == 429


async def test_a_missing_token_counts_as_a_failure(redis: Any) -> None:
    app = operators_app(redis)
    app.state.auth_throttle = AuthThrottle(LIMIT, clock=Clock())
    async with client_of(app, None, address="203.0.113.10") as anonymous:
        statuses = [(await anonymous.get("/v1/users")).status_code for _ in range(LIMIT + 1)]
    assert statuses == [401] * LIMIT + [429]


async def test_the_limit_comes_from_the_settings(redis: Any) -> None:
    from tests.support.operators import settings_for_operators

    app = operators_app(redis, settings_for_operators(PS_AUTH_FAILURES_PER_MINUTE="2"))
    async with client_of(app, "wrong", address="203.0.113.11") as guesser:
        statuses = [(await guesser.get("/v1/me")).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


async def test_a_write_refused_counts_one_failure_though_two_dependencies_check_it() -> None:
    """Write routes check the token twice over (the router's reader check, the route's admin
    check): FastAPI runs `authenticate_operator` once per request, so one failure is counted."""
    app = operators_app(Unreachable("token store"))
    app.state.auth_throttle = AuthThrottle(2, clock=Clock())
    async with client_of(app, "wrong", address="203.0.113.12") as guesser:
        first = await guesser.post("/v1/properties", json={})
        second = await guesser.delete("/v1/users/x")
        third = await guesser.delete("/v1/users/x")
    assert [first.status_code, second.status_code, third.status_code] == [401, 401, 429]


@pytest.mark.parametrize(
    ("host", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64(host: str, counted_as: str) -> None:
    assert throttled_address(host) == counted_as
