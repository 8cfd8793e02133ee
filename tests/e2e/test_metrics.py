"""The three services' /metrics scraped from the running stack before, during and after a load,
checked against what was sent: ingest's accepted and rejected counts by source and reason, the
worker's events written and their end-to-end delays, its consumer lag per partition draining to
0, and the query API's request counter. On the session stack: tests run one at a time, so once
it is drained the deltas around this load are this load's alone."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from materializer.worker import LAG_REFRESH_S
from tests.support.polling import eventually
from tests.support.scrape import Scrape, scrape
from tests.support.stack import WRITE_KEY, RunningStack

pytestmark = pytest.mark.e2e

SECOND_KEY, SECOND_SOURCE = "second-key", "other-source"  # tests/support/stack.py
FIRST_SOURCE = "test-source"
USERS = 40
BATCHES = 20  # of 100 events each, half from each source
EVENTS_PER_BATCH = 100
GOOD_EVENTS = BATCHES * EVENTS_PER_BATCH
# bad items sent beside the good ones, by the reason ingest counts them under (ingest.metrics:
# the top-level field of the first error)
BAD_ITEMS: dict[str, dict[str, Any]] = {
    "event": {"type": "track", "userId": "metrics-bad"},  # a track without its name
    "userId": {"type": "track", "event": "Orphan"},  # neither userId nor anonymousId
    "properties": {"type": "track", "userId": "metrics-bad", "event": "E", "properties": 7},
    "timestamp": {
        "type": "track",
        "userId": "metrics-bad",
        "event": "E",
        "timestamp": "1999-12-31T23:59:59Z",
    },
}
BAD_PER_BATCH = Counter({"event": 2, "userId": 1, "properties": 1, "timestamp": 1})

DELAY = "profilestream_worker_end_to_end_delay_seconds"
LAG = "profilestream_worker_consumer_lag"


def good_batch(run: str, n: int, with_bad: bool) -> dict[str, Any]:
    events: list[dict[str, Any]] = [
        {
            "type": "track",
            "userId": f"metrics-{run}-{(n * EVENTS_PER_BATCH + i) % USERS}",
            "event": "Metrics Load",
            "messageId": f"metrics-{run}-{n}-{i}",
            "properties": {"n": i},
        }
        for i in range(EVENTS_PER_BATCH)
    ]
    if with_bad:
        events += [BAD_ITEMS[reason] for reason in BAD_PER_BATCH.elements()]
    return {"batch": events}


def send(stack: RunningStack, key: str, body: dict[str, Any]) -> None:
    with httpx.Client(base_url=stack.ingest_url, auth=(key, ""), timeout=30) as client:
        response = client.post("/v1/batch", json=body)
    assert response.status_code == 200, response.text
    bad = sum(1 for item in body["batch"] if item in BAD_ITEMS.values())
    assert response.json()["accepted"] == len(body["batch"]) - bad, response.text


def lag_by_partition(worker: Scrape, topic: str) -> dict[str, float]:
    return {
        dict(labels)["partition"]: value
        for labels, value in worker.series(LAG).items()
        if dict(labels)["topic"] == topic
    }


def drained(stack: RunningStack) -> Scrape | None:
    """The worker's scrape once it holds nothing unprocessed (every partition's lag 0)."""
    worker = scrape(stack.worker_url)
    lag = lag_by_partition(worker, stack.settings.events_topic)
    partitions = {str(p) for p in range(stack.settings.topic_partitions)}
    return worker if set(lag) == partitions and not any(lag.values()) else None


def settled(stack: RunningStack) -> Scrape | None:
    """`drained`, and no batch written since the lag was last refreshed: the lag gauges are
    refreshed every LAG_REFRESH_S, so a 0 from before the last batch would vouch for nothing."""
    worker = drained(stack)
    if worker is None:
        return None
    last_batch = worker.total("profilestream_worker_last_batch_timestamp_seconds")
    return worker if time.time() - last_batch > LAG_REFRESH_S + 1 else None


def test_metrics_of_all_three_services_match_a_load(running_stack: RunningStack) -> None:
    stack = running_stack
    run = uuid.uuid4().hex[:8]
    # Whatever earlier tests sent is written first, so the worker's deltas are this load's.
    eventually(lambda: settled(stack), timeout=90)
    before = {
        "ingest": scrape(stack.ingest_url),
        "query": scrape(stack.query_url),
        "worker": scrape(stack.worker_url),
    }

    # the load: 20 batches from 4 concurrent clients, half with each write key, bad items
    # beside the good ones in the first source's batches; scraped while it runs
    jobs = [
        (WRITE_KEY if n % 2 == 0 else SECOND_KEY, good_batch(run, n, with_bad=n % 2 == 0))
        for n in range(BATCHES)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        sending = [pool.submit(send, stack, key, body) for key, body in jobs]
        during = [scrape(stack.ingest_url), scrape(stack.worker_url), scrape(stack.query_url)]
        for future in sending:
            future.result()
    assert all(s.names() for s in during)

    ingest_after = scrape(stack.ingest_url)
    accepted = "profilestream_ingest_events_accepted_total"
    rejected = "profilestream_ingest_events_rejected_total"

    def ingest_delta(name: str, **labels: str) -> float:
        return ingest_after.total(name, **labels) - before["ingest"].total(name, **labels)

    assert ingest_delta(accepted) == GOOD_EVENTS
    assert ingest_delta(accepted, source=FIRST_SOURCE) == GOOD_EVENTS / 2
    assert ingest_delta(accepted, source=SECOND_SOURCE) == GOOD_EVENTS / 2
    bad_batches = BATCHES // 2
    assert {
        reason: ingest_delta(rejected, source=FIRST_SOURCE, reason=reason)
        for reason in BAD_PER_BATCH
    } == {reason: count * bad_batches for reason, count in BAD_PER_BATCH.items()}
    assert ingest_delta(rejected) == sum(BAD_PER_BATCH.values()) * bad_batches
    requests = "profilestream_http_requests_total"
    assert ingest_delta(requests, route="/v1/batch", method="POST", status="200") == BATCHES
    produce = "profilestream_broker_produce_duration_seconds_count"
    assert ingest_delta(produce) >= BATCHES

    # the worker: every good event written once, each with its delay, and the lag back to 0
    worker_after = eventually(lambda: drained(stack), timeout=60)
    partitions = {str(p) for p in range(stack.settings.topic_partitions)}
    assert set(lag_by_partition(worker_after, stack.settings.events_topic)) == partitions

    def worker_delta(name: str, **labels: str) -> float:
        return worker_after.total(name, **labels) - before["worker"].total(name, **labels)

    def all_written() -> bool:
        # A batch is recorded last, after its chunks are written (events_written), applied
        # (the delay) and any dead letters sent: its count reaching the total is the end.
        nonlocal worker_after
        worker_after = scrape(stack.worker_url)
        return worker_delta("profilestream_worker_batch_events_sum") >= GOOD_EVENTS

    eventually(all_written, timeout=60)
    assert worker_delta("profilestream_worker_events_written_total") == GOOD_EVENTS
    assert worker_delta("profilestream_worker_batch_events_sum") == GOOD_EVENTS
    assert worker_delta("profilestream_worker_batches_total") >= 1
    assert worker_delta(f"{DELAY}_count") == GOOD_EVENTS
    assert worker_delta(f"{DELAY}_bucket", le="+Inf") == GOOD_EVENTS
    assert worker_delta(f"{DELAY}_sum") > 0
    for store in ("redis", "clickhouse"):
        written = "profilestream_worker_store_write_duration_seconds_count"
        assert worker_delta(written, store=store) >= 1
    assert worker_delta("profilestream_worker_dead_letters_total") == 0
    assert worker_after.total("profilestream_worker_assigned_partitions") == len(partitions)
    assert worker_after.total("profilestream_worker_last_batch_timestamp_seconds") > 0
    # the worker's page is its own: no HTTP metrics of the query API sharing its process
    assert not any(name.startswith("profilestream_http_") for name in worker_after.names())

    # the query API counts the calls made to it, by route template
    users = [f"metrics-{run}-{u}" for u in range(5)]
    with stack.query() as query:
        for user in users:
            response = query.get(f"/v1/users/{user}")
            assert response.status_code == 200, response.text
    query_after = scrape(stack.query_url)
    labels = {"route": "/v1/users/{user_id}", "method": "GET", "status": "200"}
    assert query_after.total(requests, **labels) - before["query"].total(requests, **labels) == len(
        users
    )
