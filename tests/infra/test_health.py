"""infra/health.py: checks run concurrently, each bounded by its timeout (a hanging one is
"down" in time, and not started again while it still runs), and /readyz says only ok or down
per check."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from infra.health import DOWN, OK, Readiness, health_router, readiness_body

GIVE_UP_S = 30.0


async def answers() -> None:
    return None


async def refuses() -> None:
    raise ConnectionRefusedError("127.0.0.1:6379 refused")


class Hanging:
    """A check that never returns; counts how often it was started."""

    def __init__(self) -> None:
        self.started = 0

    async def __call__(self) -> None:
        self.started += 1
        await asyncio.Event().wait()


async def test_a_hanging_check_is_down_within_its_timeout_and_the_others_still_answer() -> None:
    hanging = Hanging()
    readiness = Readiness(
        {"broker": answers, "redis": hanging, "clickhouse": refuses}, timeout_s=1.0
    )
    # Without the timeout this would wait forever: the bound makes that a failure instead.
    states = await asyncio.wait_for(readiness.states(), GIVE_UP_S)
    assert states == {"broker": OK, "redis": DOWN, "clickhouse": DOWN}
    assert await asyncio.wait_for(readiness.states(), GIVE_UP_S) == states
    assert hanging.started == 1  # the second /readyz waited on the same run


async def test_a_run_past_the_abandon_limit_is_cancelled_and_started_again() -> None:
    hanging = Hanging()
    readiness = Readiness({"redis": hanging}, timeout_s=0.05, abandon_after_s=0.0)
    await readiness.states()
    await readiness.states()
    assert hanging.started == 2


def test_the_body_names_each_check_and_nothing_else() -> None:
    assert readiness_body({"broker": OK}) == (200, {"status": "ready", "checks": {"broker": OK}})
    status, body = readiness_body({"broker": OK, "redis": DOWN})
    assert status == 503
    assert body == {"status": "not ready", "checks": {"broker": OK, "redis": DOWN}}


async def test_the_routes_are_outside_the_schema_and_reveal_no_error() -> None:
    app = FastAPI()
    app.include_router(health_router(Readiness({"redis": refuses}, timeout_s=0.5)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        healthz = await client.get("/healthz")
        readyz = await client.get("/readyz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
    assert readyz.status_code == 503
    assert "6379" not in readyz.text and "refused" not in readyz.text.lower()
    paths: dict[str, Any] = app.openapi()["paths"]
    assert paths == {}
