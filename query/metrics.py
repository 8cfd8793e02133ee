"""The query service's metrics, in a registry of its own (in the embedded default it shares a
process with the worker, whose /metrics shows the worker's only): its HTTP requests, the
produce of management writes, and refused authentications."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from infra.metrics import HttpMetrics, ProduceMetrics

REGISTRY = CollectorRegistry()

HTTP = HttpMetrics(REGISTRY)
PRODUCE = ProduceMetrics(REGISTRY)

AUTH_FAILURES = Counter(
    "profilestream_auth_failures_total",
    "Requests refused because their operator token was missing or wrong (401).",
    registry=REGISTRY,
)
AUTH_THROTTLED = Counter(
    "profilestream_auth_throttled_total",
    "Requests refused with 429 because their client address failed authentication too often "
    "(PS_AUTH_FAILURES_PER_MINUTE).",
    registry=REGISTRY,
)
