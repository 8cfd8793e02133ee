"""Reading a Prometheus /metrics page in tests: every sample by name and labels, and sums over
the samples whose labels include some."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    samples: dict[tuple[str, Labels], float]

    def total(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include these (0 when there is none)."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, have), value in self.samples.items()
            if sample == name and wanted <= have
        )

    def series(self, name: str) -> dict[Labels, float]:
        """Every sample of `name`, by its labels."""
        return {have: value for (sample, have), value in self.samples.items() if sample == name}

    def names(self) -> set[str]:
        return {sample for sample, _ in self.samples}


def parse(text: str) -> Scrape:
    return Scrape(
        {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
    )


def scrape(base_url: str) -> Scrape:
    """GET <base_url>/metrics, unauthenticated, as Prometheus does."""
    response = httpx.get(f"{base_url}/metrics", timeout=30)
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return parse(response.text)


def sample_value(exposition: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of sample `name` with exactly `labels` in a text exposition, else 0 (counters
    start at 0: a series not there yet)."""
    return parse(exposition).samples.get((name, frozenset((labels or {}).items())), 0.0)


def scraped(client: httpx.Client, name: str, labels: dict[str, str] | None = None) -> float:
    """`sample_value` of the service `client` talks to, scraped now."""
    response = client.get("/metrics")
    response.raise_for_status()
    return sample_value(response.text, name, labels)
