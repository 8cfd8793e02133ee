"""The worker's metrics (materializer.metrics): the counted histogram against prometheus_client's
own, the pure lag and stuck rules, and what one BatchProcessor.process records (in-memory fakes
for the stores; the real stack is scraped in tests/e2e/test_metrics.py). The registry is the
process's own, so every check compares values before and after."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from materializer import metrics
from materializer.metrics import (
    REGISTRY,
    CountedHistogram,
    Progress,
    is_stuck,
    lag_by_partition,
    record_lag,
)
from materializer.pipeline import BatchProcessor
from materializer.processing import BatchPlan, Consumed, EventColumns, MessageMeta, RawMessage
from schemas.messages import DeadLetterMessage, events_message
from tests.support.builders import TOPIC_ID, make_model_event

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def exposition_lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_counted_histogram_exposes_what_a_histogram_observing_each_value_does() -> None:
    buckets = (0.1, 1.0, 5.0)
    observations = [(0.05, 3), (0.1, 2), (0.7, 1), (5.0, 4), (9.5, 2)]
    counted, plain = CollectorRegistry(), CollectorRegistry()
    CountedHistogram("delay_seconds", "d", buckets, counted).observe_counted(observations)
    histogram = Histogram("delay_seconds", "d", buckets=buckets, registry=plain)
    for value, times in observations:
        for _ in range(times):
            histogram.observe(value)
    assert exposition_lines(counted) == exposition_lines(plain)
    # a value on a bound counts in that bound's bucket (le: less than or equal)
    assert counted.get_sample_value("delay_seconds_bucket", {"le": "0.1"}) == 5
    assert counted.get_sample_value("delay_seconds_count") == 12


def test_lag_is_end_minus_committed_and_from_the_earliest_when_nothing_is_committed() -> None:
    ends = {0: 120, 1: 40, 2: 7}
    committed: dict[int, int | None] = {0: 100, 1: None, 2: 9}
    assert lag_by_partition(ends, committed, {1: 10}) == {0: 20, 1: 30, 2: 0}
    assert lag_by_partition({3: 5}, {}, {}) == {3: 5}


def test_stuck_only_when_holding_messages_and_no_batch_for_the_limit() -> None:
    progress = Progress(started_at=0.0, last_batch_at=100.0, unprocessed=0)
    assert not is_stuck(progress, now=1000.0, stuck_after_s=60)  # idle is not stuck
    progress.unprocessed, progress.waiting_since = 5, 100.0
    assert is_stuck(progress, now=161.0, stuck_after_s=60)
    assert not is_stuck(progress, now=159.0, stuck_after_s=60)
    # messages arriving after a long idle time start the clock again
    progress.waiting_since = 950.0
    assert not is_stuck(progress, now=1000.0, stuck_after_s=60)
    assert is_stuck(progress, now=1011.0, stuck_after_s=60)
    # and so does a new assignment (a rebalance hands over another worker's backlog)
    progress.last_assigned_at = 1005.0
    assert not is_stuck(progress, now=1011.0, stuck_after_s=60)


def test_record_lag_keeps_only_the_partitions_held_now() -> None:
    record_lag("lag-test", {0: 3, 1: 0, 2: 8}, at=10.0)
    assert sample("profilestream_worker_consumer_lag", topic="lag-test", partition="2") == 8
    assert sample("profilestream_worker_assigned_partitions") == 3
    record_lag("lag-test", {1: 4}, at=20.0)
    held = {
        s.labels["partition"]
        for family in metrics.CONSUMER_LAG.collect()
        for s in family.samples
        if s.labels["topic"] == "lag-test"
    }
    assert held == {"1"}
    assert metrics.PROGRESS.unprocessed == 4
    record_lag("lag-test", {}, at=30.0)
    assert metrics.PROGRESS.unprocessed == 0


# --- what a batch records --------------------------------------------------------------------


class Profiles:
    async def lookup(
        self, consumed: Sequence[Consumed]
    ) -> tuple[set[str], dict[Any, Any], dict[str, Any]]:
        return set(), {}, {}

    async def mark_in_flight(self, plan: BatchPlan) -> None:
        pass

    async def apply(self, plan: BatchPlan) -> None:
        pass

    async def stored_ids(self, user: str) -> list[str]:
        return [user]


class Events:
    def __init__(self, unreachable_times: int = 0, refuse: str | None = None) -> None:
        self.unreachable_times = unreachable_times
        self.refuse = refuse

    async def stored(
        self, user_ids: Sequence[str], message_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        return {}

    async def insert(self, columns: EventColumns) -> None:
        if self.unreachable_times:
            self.unreachable_times -= 1
            raise ConnectionRefusedError("clickhouse down")
        if any(event.message_id == self.refuse for event in columns.events):
            raise ValueError("a data error")

    async def delete_users(self, user_ids: Sequence[str]) -> None:
        pass


def requests_of(sizes: Sequence[int], received: Sequence[datetime]) -> list[RawMessage]:
    """Version 2 messages, one per request, its events sharing the request's receivedAt."""
    out, n = [], 0
    for offset, (size, at) in enumerate(zip(sizes, received, strict=True)):
        events = [
            make_model_event(message_id=f"metrics-{n + i}", user_id="u1", received_at=at)
            for i in range(size)
        ]
        n += size
        value = events_message([e.model_dump_json().encode() for e in events])
        out.append(RawMessage(b"u1", value, MessageMeta("events", 0, offset, TOPIC_ID)))
    return out


def processor(events: Events) -> BatchProcessor:
    async def dead_letter(_: DeadLetterMessage) -> None:
        pass

    return BatchProcessor(Profiles(), events, dead_letter, retry_max_s=0.001, clock=NOW.timestamp)


NAMES = {
    "batches": ("profilestream_worker_batches_total", {}),
    "batch_count": ("profilestream_worker_batch_events_count", {}),
    "batch_sum": ("profilestream_worker_batch_events_sum", {}),
    "written": ("profilestream_worker_events_written_total", {}),
    "delay_count": ("profilestream_worker_end_to_end_delay_seconds_count", {}),
    "delay_sum": ("profilestream_worker_end_to_end_delay_seconds_sum", {}),
    "delay_le_1s": ("profilestream_worker_end_to_end_delay_seconds_bucket", {"le": "1.0"}),
    "redis_writes": ("profilestream_worker_store_write_duration_seconds_count", {"store": "redis"}),
    "clickhouse_writes": (
        "profilestream_worker_store_write_duration_seconds_count",
        {"store": "clickhouse"},
    ),
    "write_retries": ("profilestream_worker_write_retries_total", {"step": "write"}),
    "undecodable": ("profilestream_worker_dead_letters_total", {"reason": "undecodable"}),
    "refused": ("profilestream_worker_dead_letters_total", {"reason": "write_refused"}),
}


def snapshot() -> dict[str, float]:
    return {key: sample(name, **labels) for key, (name, labels) in NAMES.items()}


def deltas(before: dict[str, float]) -> dict[str, float]:
    after = snapshot()
    return {key: round(after[key] - before[key], 6) for key in after if after[key] != before[key]}


async def test_a_batch_records_its_size_writes_store_times_and_each_events_delay() -> None:
    # two requests: 3 events received 0.5 s before the apply, 2 events 2 s before
    received = [NOW - timedelta(seconds=0.5), NOW - timedelta(seconds=2)]
    undecodable = RawMessage(b"u1", b"not json", MessageMeta("events", 0, 9, TOPIC_ID))
    before = snapshot()
    await processor(Events()).process([*requests_of([3, 2], received), undecodable])
    assert deltas(before) == {
        "batches": 1,
        "batch_count": 1,
        "batch_sum": 6,  # five events and the undecodable message
        "written": 5,
        "delay_count": 5,
        "delay_sum": 3 * 0.5 + 2 * 2.0,
        "delay_le_1s": 3,
        "redis_writes": 1,
        "clickhouse_writes": 1,
        "undecodable": 1,
    }


async def test_retries_and_refused_events_are_counted_by_step_and_reason() -> None:
    before = snapshot()
    await processor(Events(unreachable_times=2)).process(requests_of([2], [NOW]))
    changed = deltas(before)
    assert changed["write_retries"] == 2
    assert changed["written"] == 2 and changed["batches"] == 1

    before = snapshot()
    events = Events(refuse="metrics-1")
    await processor(events).process(requests_of([3], [NOW]))
    changed = deltas(before)
    assert changed["refused"] == 1
    assert changed["written"] == 2  # the two its neighbours, once each
    assert changed["delay_count"] == 2
