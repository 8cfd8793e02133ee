"""The worker's Prometheus metrics, in a registry of its own (`REGISTRY`, served at /metrics by
materializer.ops_server): in the embedded default the query API runs in this process too, and
each /metrics must show its own service only. Names and meanings: docs/metrics.md.

The batch path updates them once per batch or per write, never once per event: the end-to-end
delay is observed per distinct receivedAt (a request's events share one) with how many events
had it (`CountedHistogram`). `Progress` keeps what /readyz reads back (is the worker stuck?)."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

REGISTRY = CollectorRegistry()

# Label values (bounded sets: docs/metrics.md lists them)
STORES = ("redis", "clickhouse")
RETRY_STEPS = ("write", "dead_letter", "batch")  # a chunk's write, a dead-letter produce, a batch
DEAD_LETTER_REASONS = ("undecodable", "write_refused")

BATCH_EVENTS_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10_000, 50_000)
WRITE_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# From a fast path (tens of milliseconds) to a backlog of hours.
DELAY_SECONDS_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    *(120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600),
)


class CountedHistogram(Collector):
    """A Prometheus histogram observed as (value, how many times) pairs: the same exposition as
    `prometheus_client.Histogram` (`_bucket`, `_sum`, `_count`), but one step per distinct value
    instead of one call, a lock and a bucket search per observation (about a microsecond each:
    the worker's hot path writes thousands of events per batch)."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = [float(b) for b in buckets] + [math.inf]
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()  # /metrics may be collected from another thread
        registry.register(self)

    def observe_counted(self, observations: Iterable[tuple[float, int]]) -> None:
        bounds, counts = self._bounds, self._counts
        with self._lock:
            for value, times in observations:
                counts[bisect.bisect_left(bounds, value)] += times  # le: value <= bound
                self._sum += value * times

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip(self._bounds, counts, strict=True):
            cumulative += count
            # the bounds as prometheus_client's Histogram writes them ("1.0", "+Inf")
            buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)


BATCHES = Counter(
    "profilestream_worker_batches",
    "Batches the worker wrote to both stores (and then committed).",
    registry=REGISTRY,
)
BATCH_EVENTS = Histogram(
    "profilestream_worker_batch_events",
    "Events per batch, dead-lettered ones included.",
    buckets=BATCH_EVENTS_BUCKETS,
    registry=REGISTRY,
)
EVENTS_WRITTEN = Counter(
    "profilestream_worker_events_written",
    "Events inserted into the events table (a repeat of a stored messageId is not counted).",
    registry=REGISTRY,
)
STORE_WRITE_DURATION = Histogram(
    "profilestream_worker_store_write_duration_seconds",
    "Time one write of a chunk spent in each store (redis: look-up, marks and apply; "
    "clickhouse: the stored-ids look-up and the INSERT).",
    ["store"],
    buckets=WRITE_SECONDS_BUCKETS,
    registry=REGISTRY,
)
WRITE_RETRIES = Counter(
    "profilestream_worker_write_retries",
    "Failed attempts that were retried, by step (write, dead_letter, batch).",
    ["step"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "profilestream_worker_dead_letters",
    "Messages or events sent to the dead-letter topic, by reason (undecodable, write_refused).",
    ["reason"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "profilestream_worker_consumer_lag",
    "Log end offset minus the group's committed offset, for each partition this worker holds.",
    ["topic", "partition"],
    registry=REGISTRY,
)
END_TO_END_DELAY = CountedHistogram(
    "profilestream_worker_end_to_end_delay_seconds",
    "Time from ingest receiving an event (receivedAt) to its profile change applied in Redis.",
    DELAY_SECONDS_BUCKETS,
    REGISTRY,
)
ASSIGNED_PARTITIONS = Gauge(
    "profilestream_worker_assigned_partitions",
    "Partitions of the events topic assigned to this worker.",
    registry=REGISTRY,
)
LAST_BATCH_TIMESTAMP = Gauge(
    "profilestream_worker_last_batch_timestamp_seconds",
    "When the worker last finished a batch (seconds since the epoch; 0: not yet).",
    registry=REGISTRY,
)

# Every label value from the start, at zero: a rate() needs the series before its first increment.
for _store in STORES:
    STORE_WRITE_DURATION.labels(_store)
for _step in RETRY_STEPS:
    WRITE_RETRIES.labels(_step)
for _reason in DEAD_LETTER_REASONS:
    DEAD_LETTERS.labels(_reason)


@dataclass
class Progress:
    """What /readyz asks about the worker's progress (wall-clock seconds since the epoch)."""

    started_at: float
    last_batch_at: float = 0.0
    last_assigned_at: float = 0.0
    # messages this worker holds unprocessed (its partitions' lag at the last refresh), and
    # since when it has held some without a break
    unprocessed: int = 0
    waiting_since: float = 0.0


PROGRESS = Progress(started_at=time.time())


def is_stuck(progress: Progress, now: float, stuck_after_s: float) -> bool:
    """Holding unprocessed messages, and no batch finished for `stuck_after_s` since they
    arrived (or since the worker started or was last assigned partitions)."""
    if progress.unprocessed <= 0:
        return False
    moved = max(
        progress.started_at,
        progress.last_assigned_at,
        progress.last_batch_at,
        progress.waiting_since,
    )
    return now - moved > stuck_after_s


def lag_by_partition(
    ends: Mapping[int, int], committed: Mapping[int, int | None], earliest: Mapping[int, int]
) -> dict[int, int]:
    """Log end offset minus committed offset (both Kafka's convention: the next offset). A
    partition with nothing committed is read from its earliest offset, so that is its start."""
    lag = {}
    for partition, end in ends.items():
        start = committed.get(partition)
        if start is None:
            start = earliest.get(partition, 0)
        lag[partition] = max(0, end - start)
    return lag


# --- what the worker reports -------------------------------------------------------------------


def record_batch(events: int, undecodable: int, refused: int, at: float) -> None:
    """A batch is written: `events` in it, of which `undecodable` and `refused` (by every
    store) were dead-lettered."""
    BATCHES.inc()
    BATCH_EVENTS.observe(events)
    if undecodable:
        DEAD_LETTERS.labels("undecodable").inc(undecodable)
    if refused:
        DEAD_LETTERS.labels("write_refused").inc(refused)
    LAST_BATCH_TIMESTAMP.set(at)
    PROGRESS.last_batch_at = at


def record_write(
    store_seconds: Mapping[str, float], received: Iterable[datetime], applied_at: float
) -> None:
    """A chunk is in both stores: the time each store took, and the end-to-end delay of its
    events (received: their receivedAt; applied_at: when the Redis apply returned)."""
    for store, seconds in store_seconds.items():
        STORE_WRITE_DURATION.labels(store).observe(seconds)
    tally = Tally(received)  # a request's events share one receivedAt: few distinct values
    END_TO_END_DELAY.observe_counted(
        (max(0.0, applied_at - at.timestamp()), times) for at, times in tally.items()
    )


def record_assignment(partitions: int, at: float) -> None:
    ASSIGNED_PARTITIONS.set(partitions)
    PROGRESS.last_assigned_at = at


def record_lag(topic: str, lag: Mapping[int, int], at: float) -> None:
    """The lag of the partitions this worker holds now; series of partitions it no longer holds
    go (each replica reports its own: summed over replicas, the group's lag)."""
    held = {str(partition) for partition in lag}
    for labels in _lag_series():
        if labels[0] != topic or labels[1] not in held:
            CONSUMER_LAG.remove(*labels)
    for partition, value in lag.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(value)
    ASSIGNED_PARTITIONS.set(len(lag))
    unprocessed = sum(lag.values())
    if unprocessed and not PROGRESS.unprocessed:
        PROGRESS.waiting_since = at
    PROGRESS.unprocessed = unprocessed


def _lag_series() -> list[tuple[str, str]]:
    return [
        (sample.labels["topic"], sample.labels["partition"])
        for family in CONSUMER_LAG.collect()
        for sample in family.samples
    ]
