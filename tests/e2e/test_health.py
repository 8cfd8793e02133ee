"""/healthz and /readyz of the three services on a stack of this module's own (it stops Valkey and
the broker): all ready; Valkey stopped -> query and worker not ready with "redis": "down",
ingest (which does not use Redis) still ready; Valkey back on its port and data -> ready again;
the broker stopped -> every service not ready with "broker": "down". The bodies are exactly
the check names and their words: nothing else (no address, version or error)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from profilestream.embedded import start_valkey
from tests.support.polling import eventually
from tests.support.stack import RunningStack, stack_in

pytestmark = pytest.mark.e2e

CHECKS = {
    "ingest": {"broker": "ok"},
    "query": {"broker": "ok", "redis": "ok", "clickhouse": "ok"},
    "worker": {
        "broker": "ok",
        "redis": "ok",
        "clickhouse": "ok",
        "partitions": "assigned",
        "progress": "ok",
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with stack_in(tmp_path_factory.mktemp("health")) as running:
        yield running


def urls(stack: RunningStack) -> dict[str, str]:
    return {"ingest": stack.ingest_url, "query": stack.query_url, "worker": stack.worker_url}


def get(url: str) -> tuple[int, Any]:
    # a bounded answer whatever is down: the client's timeout fails the test otherwise
    response = httpx.get(url, timeout=15)
    return response.status_code, response.json()


def readyz_is(stack: RunningStack, service: str, status: int, checks: dict[str, str]) -> bool:
    expected = {"status": "ready" if status == 200 else "not ready", "checks": checks}
    return get(f"{urls(stack)[service]}/readyz") == (status, expected)


def assert_alive(stack: RunningStack) -> None:
    for service, url in urls(stack).items():
        assert get(f"{url}/healthz") == (200, {"status": "ok"}), service


def test_all_three_are_alive_and_ready(stack: RunningStack) -> None:
    assert_alive(stack)
    for service, checks in CHECKS.items():
        eventually(partial(readyz_is, stack, service, 200, checks), timeout=60)


def test_valkey_down_makes_query_and_worker_not_ready_and_back_when_it_returns(
    stack: RunningStack,
) -> None:
    eventually(lambda: readyz_is(stack, "worker", 200, CHECKS["worker"]), timeout=60)
    stack.stack.processes.pop("valkey").stop()

    for service in ("query", "worker"):
        down = {**CHECKS[service], "redis": "down"}
        eventually(partial(readyz_is, stack, service, 503, down), timeout=30)
    assert readyz_is(stack, "ingest", 200, CHECKS["ingest"])
    assert_alive(stack)

    settings = stack.settings
    data_dir: Path = settings.data_dir
    stack.stack.processes["valkey"] = start_valkey(
        settings, data_dir / "valkey", stack.stack.log_dir
    )
    for service, checks in CHECKS.items():
        eventually(partial(readyz_is, stack, service, 200, checks), timeout=60)


def test_broker_down_makes_every_service_not_ready(stack: RunningStack) -> None:
    for service, checks in CHECKS.items():
        eventually(partial(readyz_is, stack, service, 200, checks), timeout=60)
    stack.stack.processes.pop("tansu").stop()

    for service, checks in CHECKS.items():
        # the worker may also lose its partitions meanwhile: only its broker check is fixed
        if service == "worker":
            eventually(lambda: worker_broker_down(stack), timeout=30)
        else:
            down = {**checks, "broker": "down"}
            eventually(partial(readyz_is, stack, service, 503, down), timeout=30)
    assert_alive(stack)


def worker_broker_down(stack: RunningStack) -> bool:
    status, body = get(f"{stack.worker_url}/readyz")
    return (
        status == 503
        and body["status"] == "not ready"
        and body["checks"].keys() == CHECKS["worker"].keys()
        and body["checks"]["broker"] == "down"
        and body["checks"]["redis"] == body["checks"]["clickhouse"] == "ok"
    )
