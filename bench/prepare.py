"""The events topic's messages as ingest would produce them from the realistic workload
(bench/workload.py): each request of 100 events goes through `normalize_event`, then
`event_records` (version 2 messages, one per partition of the request). Built once per run, on
both cores, into a file that the benchmark's children read back: the preload, the processor fed
in memory and the floors of the ClickHouse insert and the Redis apply all see the same
messages.

File format: per message, a header (key length, value length, number of events; three
big-endian uint32) and then the key and the value."""

from __future__ import annotations

import multiprocessing
import struct
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from workload import Workload

from infra.settings import Settings
from ingest.accept import event_records
from ingest.normalize import normalize_event

HEADER = struct.Struct(">III")
REQUEST_EVENTS = 100  # events per request, as the bench's clients send them
CHUNK_EVENTS = 10_000  # events per task of the pool


class Prepared(NamedTuple):
    key: bytes
    value: bytes
    events: int


class Spec(NamedTuple):
    """What a pool task needs to rebuild the workload (plain values: it crosses processes)."""

    users: int
    run: str
    seed: int
    start: datetime
    received_at: datetime
    partitions: int


def count_events(value: bytes) -> int:
    """Events in one version 2 message (each event is one `"message_id":` key)."""
    return value.count(b'"message_id":')


def as_ingest(spec: Spec, first: int, count: int) -> list[Prepared]:
    """Events first..first+count-1 of the workload as ingest's messages, 100 per request."""
    workload = Workload(spec.users, run=spec.run, seed=spec.seed, start=spec.start)
    settings = Settings(topic_partitions=spec.partitions)
    out: list[Prepared] = []
    for request in range(first, first + count, REQUEST_EVENTS):
        size = min(REQUEST_EVENTS, first + count - request)
        events = [
            normalize_event(raw, received_at=spec.received_at, source="bench")
            for raw in workload.batch(request, size)
        ]
        for _, key, value in event_records(settings, events, spec.partitions):
            assert key is not None and value is not None
            out.append(Prepared(key, value, count_events(value)))
    return out


def _task(args: tuple[Spec, int, int]) -> list[Prepared]:
    return as_ingest(*args)


def write_prepared(
    path: Path,
    spec: Spec,
    events: int,
    processes: int = 2,
    on_progress: Callable[[int], None] = lambda _: None,
) -> tuple[int, int]:
    """Write the first `events` events of the workload as ingest's messages to `path`; returns
    (messages, bytes of values)."""
    tasks = [
        (spec, first, min(CHUNK_EVENTS, events - first)) for first in range(0, events, CHUNK_EVENTS)
    ]
    messages = size = done = 0
    # fork: the children inherit the imported modules instead of importing them again
    with (
        multiprocessing.get_context("fork").Pool(processes) as pool,
        path.open("wb") as out,
    ):
        for chunk in pool.imap(_task, tasks):
            for item in chunk:
                out.write(HEADER.pack(len(item.key), len(item.value), item.events))
                out.write(item.key)
                out.write(item.value)
                messages += 1
                size += len(item.value)
                done += item.events
            on_progress(done)
    return messages, size


def read_prepared(path: Path) -> Iterator[Prepared]:
    with path.open("rb") as source:
        while header := source.read(HEADER.size):
            key_length, value_length, events = HEADER.unpack(header)
            key = source.read(key_length)
            yield Prepared(key, source.read(value_length), events)
