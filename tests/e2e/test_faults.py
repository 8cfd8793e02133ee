"""Faults on a stack of their own: the broker paused under ingest, the materializer killed with
SIGKILL mid-load (exactly-once by messageId), and a restart of Valkey and the worker (data kept)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from infra.settings import Settings
from tests.support.polling import eventually
from tests.support.queries import profile_when
from tests.support.stack import RunningStack, stack_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with stack_in(tmp_path_factory.mktemp("faults")) as running:
        yield running


def test_paused_broker_gives_503_and_nothing_acknowledged_is_lost(
    fault_stack: RunningStack,
) -> None:
    tansu = fault_stack.stack.processes["tansu"]
    user = f"outage-{uuid.uuid4().hex[:8]}"
    event = {"userId": user, "event": "During Outage", "messageId": f"{user}-1"}
    with fault_stack.ingest() as ingest, fault_stack.query() as query:
        ingest.post("/v1/track", json={"userId": user, "event": "Warm Up"}).raise_for_status()
        os.kill(tansu.pid, signal.SIGSTOP)
        try:
            response = ingest.post("/v1/track", json=event)
        finally:
            os.kill(tansu.pid, signal.SIGCONT)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"].isdigit()
        assert response.json()["code"] == "service_unavailable"

        # The client retries, as Segment libraries do; the event is stored exactly once even
        # if the first (unacknowledged) attempt landed in the log too.
        def retried() -> httpx.Response | None:
            response = ingest.post("/v1/track", json=event)
            return response if response.status_code == 200 else None

        retry = eventually(retried, timeout=30)
        assert retry.json()["accepted"] == 1
        profile = profile_when(query, user, lambda p: bool(p["event_totals"].get("During Outage")))
        assert profile["event_totals"] == {"Warm Up": 1, "During Outage": 1}


def _send_load(ingest: httpx.Client, run: str, users: int, batches: int, size: int) -> None:
    for b in range(batches):
        body = {
            "batch": [
                {
                    "type": "track",
                    "userId": f"{run}-u{(b * size + i) % users}",
                    "event": run,
                    "messageId": f"{run}-{b}-{i}",
                }
                for i in range(size)
            ]
        }
        response = ingest.post("/v1/batch", json=body)
        assert response.status_code == 200, response.text


def _counted(query: httpx.Client, run: str) -> int:
    """Everyone's events named `run` today, from ClickHouse: a double would show as extra."""
    # two days: a run that crosses midnight (UTC) has events on both
    daily = query.get("/v1/events/daily", params={"event": run, "days": 2})
    return sum(int(d["count"]) for d in daily.json()) if daily.status_code == 200 else -1


def _wait_until_counted(
    query: httpx.Client, run: str, at_least: int, timeout: float, interval: float = 0.05
) -> None:
    eventually(lambda: _counted(query, run) >= at_least or None, timeout, interval)


def _assert_each_event_once(query: httpx.Client, run: str, users: int, total: int) -> None:
    _wait_until_counted(query, run, total, timeout=300, interval=0.5)
    time.sleep(2)  # anything doubled would show up by now
    assert _counted(query, run) == total
    redis_total = 0
    for u in range(users):
        profile = profile_when(query, f"{run}-u{u}", lambda _profile: True)
        assert profile["event_totals"] == {run: profile["event_count"]}
        stored = query.get(f"/v1/users/{run}-u{u}/events/daily", params={"event": run, "days": 2})
        # Redis agrees with ClickHouse
        assert sum(d["count"] for d in stored.json()) == profile["event_count"]
        redis_total += profile["event_count"]
    assert redis_total == total


def _load_in_background(
    fault_stack: RunningStack, run: str, users: int, batches: int, size: int
) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def send() -> None:
        try:
            with fault_stack.ingest() as ingest:
                _send_load(ingest, run, users, batches, size)
        except BaseException as exc:  # reported by the test
            failures.append(exc)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, failures


def test_sigkill_materializer_ten_times_during_a_200k_load_keeps_each_event_once(
    fault_stack: RunningStack,
) -> None:
    """kill -9 at random points while 200,000 events are still arriving, restarting each time:
    every acknowledged event is in ClickHouse once and counted once in Redis."""
    run = f"kill-{uuid.uuid4().hex[:6]}"
    users, batches, size = 100, 400, 500  # 200,000 events
    total = batches * size
    stack = fault_stack.stack
    rng = random.Random(7)
    thread, failures = _load_in_background(fault_stack, run, users, batches, size)
    with fault_stack.query() as query:
        for kill in range(10):
            # Let the worker get partway, then kill it without warning, then restart it.
            target = total * (kill + 1) // 12
            _wait_until_counted(query, run, target, timeout=120, interval=0.02)
            time.sleep(rng.uniform(0, 0.2))
            worker = stack.processes["materializer"]
            os.kill(worker.pid, signal.SIGKILL)
            worker.popen.wait(10)
            stack.start_worker()
        thread.join(300)
        assert not failures, failures
        _assert_each_event_once(query, run, users, total)


def _committed_offsets(settings: Settings) -> dict[int, int | None]:
    """The worker group's committed offsets, read by a consumer that never joins the group."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def fetch() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.app_id,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            return {
                p: await consumer.committed(TopicPartition(settings.events_topic, p))
                for p in range(settings.topic_partitions)
            }
        finally:
            await consumer.stop()

    return asyncio.run(fetch())


def test_valkey_unreachable_for_10s_under_load_loses_nothing(fault_stack: RunningStack) -> None:
    """Valkey stopped for 10 s while events keep arriving: ingest goes on, the worker waits and
    retries, its committed offsets stay put, and everything lands once after recovery."""
    from profilestream.embedded import start_valkey

    run = f"redis-down-{uuid.uuid4().hex[:6]}"
    users, batches, size = 50, 100, 200  # 20,000 events
    total = batches * size
    stack = fault_stack.stack
    with fault_stack.query() as query:
        thread, failures = _load_in_background(fault_stack, run, users, batches, size)
        _wait_until_counted(query, run, total // 10, timeout=60)
        stack.processes.pop("valkey").stop()
        time.sleep(2)  # batches already past Redis finish and commit
        committed_early = _committed_offsets(fault_stack.settings)
        time.sleep(8)
        committed_late = _committed_offsets(fault_stack.settings)
        stack.processes["valkey"] = start_valkey(
            fault_stack.settings, fault_stack.settings.data_dir / "valkey", stack.log_dir
        )
        assert any(o is not None for o in committed_early.values()), "nothing committed yet"
        assert committed_late == committed_early, "offsets moved while Redis was down"
        # and what is committed was applied: a commit never passes unwritten data
        import redis

        from profilestore.layout import applied_offsets_key, parse_applied

        client = redis.Redis.from_url(fault_stack.settings.redis_url)

        def applied_offsets() -> dict[bytes | str, bytes | str] | None:
            try:  # Valkey answers "loading" while it replays its AOF
                found = client.hgetall(applied_offsets_key(fault_stack.settings.events_topic))
            except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
                return None
            return dict(found) or None

        applied = eventually(applied_offsets, timeout=60)
        client.close()
        for partition, offset in committed_late.items():
            mark = parse_applied(applied.get(str(partition).encode()))
            assert offset is None or (mark is not None and offset <= mark.offset + 1)
        assert stack.processes["materializer"].popen.poll() is None  # waited, did not die
        thread.join(120)
        assert not failures, failures
        _assert_each_event_once(query, run, users, total)


def test_valkey_down_gives_503_and_data_survives_restart(fault_stack: RunningStack) -> None:
    from profilestream.embedded import start_valkey

    user = f"durable-{uuid.uuid4().hex[:8]}"
    stack = fault_stack.stack
    with fault_stack.ingest() as ingest, fault_stack.query() as query:
        ingest.post(
            "/v1/identify", json={"userId": user, "traits": {"plan": "pro"}}
        ).raise_for_status()
        ingest.post("/v1/track", json={"userId": user, "event": "Kept"}).raise_for_status()
        before = profile_when(query, user, lambda p: p["event_count"] == 2)
        stack.processes.pop("valkey").stop()
        down = query.get(f"/v1/users/{user}")
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "service_unavailable"
        assert "Retry-After" in down.headers
        stack.processes.pop("materializer").stop()
        stack.processes["valkey"] = start_valkey(
            fault_stack.settings, fault_stack.settings.data_dir / "valkey", stack.log_dir
        )
        stack.start_worker()
        assert query.get(f"/v1/users/{user}").json() == before
        events = query.get(f"/v1/users/{user}/events").json()["events"]
        assert [e["name"] for e in events] == ["Kept", "$identify"]
