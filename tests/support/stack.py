"""Starting, stopping and reaching an embedded stack from the tests, and what tests do to a
running one beyond that."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra.settings import Settings
from profilestream.embedded import EmbeddedStack, environment_on_free_ports, start_tansu

WRITE_KEY = "test-write-key"
ADMIN_TOKEN = "test-admin-token"
# PS_SOURCE_SECRETS: Mixpanel /import's secret and Segment webhook signatures, for test-source.
SOURCE_SECRET = "test-source-secret"


def stack_environment(data_dir: Path, **overrides: str) -> dict[str, str]:
    """PS_* variables for a stack on fresh random ports (every setting the services read)."""
    return environment_on_free_ports(
        data_dir,
        **{
            "PS_WRITE_KEYS": f"{WRITE_KEY}:test-source,second-key:other-source",
            "PS_ADMIN_TOKEN": ADMIN_TOKEN,
            "PS_SOURCE_SECRETS": f"{SOURCE_SECRET}:test-source",
            "PS_SEGMENT_WEBHOOK_BATCHED_SOURCES": "test-source",
            "PS_PUBLISH_TIMEOUT_S": "3",
            "PS_KAFKA_REQUEST_TIMEOUT_MS": "2000",
            "PS_LOG_LEVEL": "INFO",
            # Every test talks from 127.0.0.1, and some send wrong tokens on purpose: only the
            # throttle's own tests (tests/query/test_auth_throttle.py) use a low limit.
            "PS_AUTH_FAILURES_PER_MINUTE": "100000",
            **overrides,
        },
    )


@dataclass
class RunningStack:
    stack: EmbeddedStack
    settings: Settings
    env: dict[str, str]

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.ingest_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.query_port}"

    @property
    def worker_url(self) -> str:
        """The worker's ops server: /metrics, /healthz, /readyz."""
        return f"http://127.0.0.1:{self.settings.worker_metrics_port}"

    def ingest(self) -> httpx.Client:
        return httpx.Client(base_url=self.ingest_url, auth=(WRITE_KEY, ""), timeout=30)

    def query(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.query_url,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{process.log_tail(60)}"
            for name, process in self.stack.processes.items()
        )


def start_stack(data_dir: Path, **overrides: str) -> RunningStack:
    env = stack_environment(data_dir, **overrides)
    settings = Settings.from_environment(env)
    stack = EmbeddedStack(settings, env={**os.environ, **env})
    stack.start()
    return RunningStack(stack, settings, env)


@contextmanager
def stack_in(data_dir: Path) -> Iterator[RunningStack]:
    """A started stack, stopped on exit (the fixtures' one way to run one)."""
    running = start_stack(data_dir)
    try:
        yield running
    finally:
        running.stack.stop()


def restart_broker_and_services(running: RunningStack) -> None:
    """What a second `make up` does to the data Valkey and chDB keep: a new broker (the
    embedded one keeps its logs in memory, so every topic starts again at offset 0), a new
    worker and ingest. Returns once the query API listens, before the worker joins its group."""
    stack = running.stack
    for name in ("ingest", "materializer", "tansu"):
        stack.processes.pop(name).stop()
    stack.processes["tansu"] = start_tansu(running.settings, stack.log_dir)
    stack.start_worker()
    stack.start_ingest()
