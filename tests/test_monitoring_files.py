"""The monitoring files against the code: every metric name in the Grafana dashboard's PromQL
(docs/grafana-dashboard.json) and in docs/metrics.md is one the three services' registries expose
(a histogram `x` exposes x_bucket, x_sum and x_count; a counter `x_total`), docs/metrics.md
names every metric they register, and prometheus.yml parses and scrapes the three services."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

import ingest.metrics
import materializer.metrics
import query.metrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"
PROMETHEUS = ROOT / "prometheus.yml"

REGISTRIES: dict[str, CollectorRegistry] = {
    "ingest": ingest.metrics.REGISTRY,
    "query": query.metrics.REGISTRY,
    "materializer": materializer.metrics.REGISTRY,
}
# What Prometheus stores for each family type (prometheus_client names a counter's family
# without `_total`); `_created` series are left out of PromQL on purpose.
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
}
METRIC_NAME = re.compile(r"\bprofilestream_[a-z0-9_]+\b")


def families(registry: CollectorRegistry) -> dict[str, str]:
    """Each metric family's name and type (a labelled family without children included)."""
    return {family.name: family.type for family in registry.collect()}


def exposed_series(registries: dict[str, CollectorRegistry]) -> set[str]:
    return {
        name + suffix
        for registry in registries.values()
        for name, kind in families(registry).items()
        for suffix in SERIES_SUFFIXES[kind]
    }


def documented_names(registries: dict[str, CollectorRegistry]) -> set[str]:
    """How docs/metrics.md may name a metric: a series, or a histogram by its family name."""
    histograms = {
        name
        for registry in registries.values()
        for name, kind in families(registry).items()
        if kind == "histogram"
    }
    return exposed_series(registries) | histograms


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for item in items for p in [item, *panels(item.get("panels", []))]]

    return [
        target["expr"]
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def unknown_names(texts: list[str], known: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for text in texts:
        for name in METRIC_NAME.findall(text):
            if name not in known:
                found.setdefault(name, []).append(text)
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def test_every_service_registers_its_metrics() -> None:
    for service, registry in REGISTRIES.items():
        names = families(registry)
        assert names, f"{service}: an empty registry"
        assert all(name.startswith("profilestream_") for name in names), sorted(names)
    # each /metrics shows its own service's only
    ingest_names, query_names, worker_names = (set(families(r)) for r in REGISTRIES.values())
    assert not worker_names & (ingest_names | query_names)


def test_dashboard_promql_names_only_exposed_series(dashboard: dict[str, Any]) -> None:
    expressions = dashboard_expressions(dashboard)
    assert len(expressions) >= 12
    for expr in expressions:
        assert METRIC_NAME.search(expr), f"no profilestream metric in {expr!r}"
    assert unknown_names(expressions, exposed_series(REGISTRIES)) == {}


def test_dashboard_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    text = json.dumps(dashboard["panels"])
    uids = set(re.findall(r'"uid": "([^"]*)"', text))
    assert uids == {"${DS_PROMETHEUS}"}


def test_dashboard_shows_the_issues_panels(dashboard: dict[str, Any]) -> None:
    expressions = " ".join(dashboard_expressions(dashboard))
    for series in (
        "profilestream_http_requests_total",
        "profilestream_http_request_duration_seconds_bucket",
        "profilestream_ingest_events_accepted_total",
        "profilestream_ingest_events_rejected_total",
        "profilestream_broker_produce_duration_seconds_bucket",
        "profilestream_broker_produce_failures_total",
        "profilestream_worker_events_written_total",
        "profilestream_worker_batch_events_bucket",
        "profilestream_worker_store_write_duration_seconds_bucket",
        "profilestream_worker_consumer_lag",
        "profilestream_worker_end_to_end_delay_seconds_bucket",
        "profilestream_worker_dead_letters_total",
        "profilestream_worker_write_retries_total",
    ):
        assert series in expressions, f"no panel shows {series}"


def test_metrics_doc_names_exist_and_every_metric_is_documented() -> None:
    doc = METRICS_DOC.read_text(encoding="utf-8")
    assert unknown_names(doc.splitlines(), documented_names(REGISTRIES)) == {}
    mentioned = set(METRIC_NAME.findall(doc))
    for service, registry in REGISTRIES.items():
        for name, kind in families(registry).items():
            shown = name + ("_total" if kind == "counter" else "")
            assert shown in mentioned, f"docs/metrics.md does not describe {shown} ({service})"


def test_prometheus_config_scrapes_the_three_services() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"ingest", "query", "materializer"}
    assert jobs["ingest"]["static_configs"] == [{"targets": ["ingest:8000"]}]
    assert jobs["query"]["static_configs"] == [{"targets": ["query:8001"]}]
    # every replica behind the compose service name, each scraped on its own
    [discovery] = jobs["materializer"]["dns_sd_configs"]
    assert discovery["names"] == ["materializer"]
    assert discovery["type"] == "A"
    assert discovery["port"] == 8002
    for job in jobs.values():
        assert job.get("metrics_path", "/metrics") == "/metrics"
