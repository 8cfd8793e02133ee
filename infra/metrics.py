"""Prometheus metrics both HTTP services keep, each in its own registry: requests by route
template, method and status and their latency, recorded by a pure ASGI wrapper around the whole
app; the broker produce latency and failures, observed by the publisher; and the `/metrics`
route. Labels are bounded: a route template (never the raw path), a method, a status."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.http import wrap_outermost

UNMATCHED = "unmatched"  # the route label of a request no route matched (a 404 of no route)

# Seconds: from a cached settings document (well under a millisecond) to a batch a slow broker
# acknowledges (PS_PUBLISH_TIMEOUT_S, 10 s by default).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class HttpMetrics:
    """`profilestream_http_requests_total{route,method,status}` and
    `profilestream_http_request_duration_seconds{route,method}` in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "profilestream_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "profilestream_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # labels() takes a lock and builds a key on every call: keep each child once.
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        counter_key = (route, method, str(status))
        counter = self._counters.get(counter_key)
        if counter is None:
            counter = self._counters[counter_key] = self.requests.labels(*counter_key)
        counter.inc()
        histogram = self._histograms.get((route, method))
        if histogram is None:
            histogram = self._histograms[(route, method)] = self.duration.labels(route, method)
        histogram.observe(seconds)


class ProduceMetrics:
    """`profilestream_broker_produce_duration_seconds` (one observation per publish call,
    acknowledged or not) and `profilestream_broker_produce_failures_total`; the publisher's
    observer (infra.publisher.PublishObserver)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "profilestream_broker_produce_duration_seconds",
            "Time of one publish call until the broker acknowledged every record, or it failed.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.failures = Counter(
            "profilestream_broker_produce_failures_total",
            "Publish calls the broker did not acknowledge (the request got a 503).",
            registry=registry,
        )

    def record_publish(self, seconds: float, acknowledged: bool) -> None:
        self.duration.observe(seconds)
        if not acknowledged:
            self.failures.inc()


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request (`/v1/users/{user_id}`; a mount's
    `/dashboard/{path}`), or UNMATCHED, from what the router left on the request's scope."""
    route = scope.get("route")
    if route is None:
        route = _mount_of(scope)
    template = getattr(route, "path_format", None)
    return template if isinstance(template, str) and template else UNMATCHED


def _mount_of(scope: Scope) -> Mount | None:
    # FastAPI's router names the route it picked in the scope, except a mount (static files):
    # that leaves only the mounted app, as the endpoint.
    endpoint = scope.get("endpoint")
    router = scope.get("router")
    if endpoint is None or router is None:
        return None
    return next(
        (r for r in router.routes if isinstance(r, Mount) and r.app is endpoint),
        None,
    )


class RequestMetricsMiddleware:
    """Times every HTTP request and counts it by route template, method and status. Outermost
    (infra.http.wrap_outermost), so the 500 answers of unhandled errors are counted too."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.record(
                route_template(scope),
                method_label(scope["method"]),
                status,
                time.perf_counter() - started,
            )


# uvicorn passes any method name a client sends: as a label, only the standard ones.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def install_http_metrics(app: FastAPI, metrics: HttpMetrics) -> None:
    wrap_outermost(app, lambda inner: RequestMetricsMiddleware(inner, metrics))


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[], Awaitable[Response]]:
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def install_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """`GET /metrics` in Prometheus' text format. Unauthenticated, as Prometheus scrapes it:
    it holds counts by bounded labels only, never ids, event contents or secrets. Not in the
    OpenAPI document."""
    app.add_api_route(
        "/metrics", metrics_endpoint(registry), methods=["GET"], include_in_schema=False
    )
