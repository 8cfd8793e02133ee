"""The query service's metrics (query/metrics.py): its /metrics, unauthenticated, shows its own
registry only (the worker shares its process in the embedded default); requests by route
template; the produce of management writes, scraped from the running stack."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.settings import Settings
from query.app import create_app
from query.metrics import AUTH_FAILURES, AUTH_THROTTLED, REGISTRY
from tests.support.publishers import RecordingPublisher
from tests.support.scrape import sample_value, scraped
from tests.support.stack import RunningStack

SETTINGS = Settings.from_environment({"PS_ADMIN_TOKEN": "the-token"})


class Unreachable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a store was used ({name})")


async def get(*paths: str) -> list[httpx.Response]:
    app = create_app(SETTINGS, Unreachable(), Unreachable(), RecordingPublisher(SETTINGS))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        return [await client.get(path) for path in paths]


async def test_metrics_are_public_and_count_requests_by_route_template() -> None:
    labels = {"route": "/v1/users/{user_id}", "method": "GET", "status": "401"}
    before = REGISTRY.get_sample_value("profilestream_http_requests_total", labels) or 0
    *_, metrics = await get("/v1/users/ada", "/v1/users/bob", "/metrics")
    assert metrics.status_code == 200
    assert sample_value(metrics.text, "profilestream_http_requests_total", labels) == before + 2
    assert "ada" not in metrics.text


async def test_the_query_registry_holds_the_query_metrics_only() -> None:
    [metrics] = await get("/metrics")
    names = {family.name for family in text_string_to_metric_families(metrics.text)}
    assert {
        "profilestream_http_requests",
        "profilestream_http_request_duration_seconds",
        "profilestream_broker_produce_duration_seconds",
        "profilestream_broker_produce_failures",
        "profilestream_auth_failures",
        "profilestream_auth_throttled",
    } <= names
    assert not [n for n in names if n.startswith(("profilestream_ingest", "profilestream_worker"))]


def test_the_auth_counters_h3_increments_are_in_the_query_registry() -> None:
    for counter, name in (
        (AUTH_FAILURES, "profilestream_auth_failures_total"),
        (AUTH_THROTTLED, "profilestream_auth_throttled_total"),
    ):
        before = REGISTRY.get_sample_value(name)
        assert before is not None
        counter.inc()
        assert REGISTRY.get_sample_value(name) == before + 1


@pytest.mark.e2e
def test_a_management_write_is_one_produce_on_the_running_query_service(
    running_stack: RunningStack, query: httpx.Client
) -> None:
    produced = "profilestream_broker_produce_duration_seconds_count"
    created = {"route": "/v1/users", "method": "POST", "status": "201"}
    with httpx.Client(base_url=running_stack.query_url, timeout=30) as anonymous:
        before = (
            scraped(anonymous, produced),
            scraped(anonymous, "profilestream_http_requests_total", created),
        )
        response = query.post(
            "/v1/users", json={"user_id": f"metrics-{uuid.uuid4().hex}", "email": "m@example.com"}
        )
        assert response.status_code == 201, response.text
        after = (
            scraped(anonymous, produced),
            scraped(anonymous, "profilestream_http_requests_total", created),
        )
        failures = scraped(anonymous, "profilestream_broker_produce_failures_total")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert failures == 0
