"""infra/metrics.py: requests counted by route template (never the raw path), `unmatched` for
a path no route has, the status each answer had (500s of unhandled errors too) and their
latency; the publisher's produce observations; /metrics in Prometheus' text format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from infra.http import ApiError, install_error_handlers
from infra.metrics import (
    UNMATCHED,
    HttpMetrics,
    ProduceMetrics,
    install_http_metrics,
    install_metrics_route,
)
from infra.publisher import BrokerUnavailable, KafkaPublisher, Record
from infra.settings import Settings


def sample_app(registry: CollectorRegistry, static_dir: Any) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    users = APIRouter(prefix="/v1/users")

    @users.get("/{user_id}")
    async def user(user_id: str) -> dict[str, str]:
        return {"id": user_id}

    @users.delete("/{user_id}", status_code=204)
    async def delete(user_id: str) -> None:
        raise ApiError(409, "busy")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    app.include_router(users)
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    install_metrics_route(app, registry)
    install_http_metrics(app, HttpMetrics(registry))
    return app


def requests_counted(registry: CollectorRegistry, route: str, method: str, status: int) -> float:
    labels = {"route": route, "method": method, "status": str(status)}
    return registry.get_sample_value("profilestream_http_requests_total", labels) or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(registry: CollectorRegistry, tmp_path: Any) -> Any:
    (tmp_path / "app.js").write_text("1")
    app = sample_app(registry, tmp_path)
    # raise_app_exceptions off: the 500 is the answer, as a server would send it
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


async def test_requests_are_counted_by_route_template_method_and_status(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for user in ("ada", "bob", "cy"):
        assert (await client.get(f"/v1/users/{user}")).status_code == 200
    assert (await client.delete("/v1/users/ada")).status_code == 409
    assert (await client.get("/static/app.js")).status_code == 200
    assert requests_counted(registry, "/v1/users/{user_id}", "GET", 200) == 3
    assert requests_counted(registry, "/v1/users/{user_id}", "DELETE", 409) == 1
    assert requests_counted(registry, "/static/{path}", "GET", 200) == 1
    rendered = (await client.get("/metrics")).text
    assert "ada" not in rendered and "bob" not in rendered  # never the raw path


async def test_a_path_no_route_has_is_unmatched_and_a_wrong_method_keeps_its_route(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    assert (await client.get("/no/such/path/123")).status_code == 404
    assert (await client.post("/v1/users/ada")).status_code == 405
    assert requests_counted(registry, UNMATCHED, "GET", 404) == 1
    assert requests_counted(registry, "/v1/users/{user_id}", "POST", 405) == 1


async def test_a_made_up_method_is_one_label_not_a_new_series_each(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    for n in range(5):
        await client.request(f"X{n}", "/v1/users/ada")
    methods = {
        sample.labels["method"]
        for family in registry.collect()
        if family.name == "profilestream_http_requests"
        for sample in family.samples
    }
    assert methods == {"other"}
    assert requests_counted(registry, "/v1/users/{user_id}", "other", 405) == 5


async def test_an_unhandled_error_is_counted_as_the_500_the_client_got(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert requests_counted(registry, "/boom", "GET", 500) == 1


async def test_latency_is_observed_per_route_and_method(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/v1/users/ada")
    await client.get("/v1/users/bob")
    labels = {"route": "/v1/users/{user_id}", "method": "GET"}
    count = registry.get_sample_value("profilestream_http_request_duration_seconds_count", labels)
    total = registry.get_sample_value("profilestream_http_request_duration_seconds_sum", labels)
    assert count == 2
    assert total is not None and total > 0


async def test_metrics_are_served_in_the_prometheus_text_format(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/v1/users/ada")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = families["profilestream_http_requests"].samples
    assert any(s.labels["route"] == "/v1/users/{user_id}" for s in samples)
    assert "profilestream_http_request_duration_seconds" in families


class ScriptedPublisher(KafkaPublisher):
    """A publisher whose produce succeeds, or fails as a broker that does not acknowledge."""

    def __init__(self, observer: ProduceMetrics) -> None:
        super().__init__(Settings.from_environment({}), observer=observer)
        self.fail = False

    async def _produce(self, records: Sequence[Record]) -> list[Any]:
        if self.fail:
            raise TimeoutError
        return []


async def test_the_publisher_reports_each_publish_and_each_failure(
    registry: CollectorRegistry,
) -> None:
    publisher = ScriptedPublisher(ProduceMetrics(registry))
    await publisher.publish([("events", b"k", b"v")])
    await publisher.publish([])  # nothing to send: no publish call to the broker
    publisher.fail = True
    with pytest.raises(BrokerUnavailable):
        await publisher.publish([("events", b"k", b"v")])
    count = registry.get_sample_value("profilestream_broker_produce_duration_seconds_count")
    assert count == 2
    assert registry.get_sample_value("profilestream_broker_produce_failures_total") == 1
