"""The import loop, which only moves data: read a file's records, convert each (pure), publish
them in batches with ingest's own `publish_results` (valid events to the events topic, refusals
to the rejections topic), and after each acknowledged batch save the file's checkpoint.

A stop request (Ctrl-C) is honoured between batches: the batch in flight is acknowledged
first, so the checkpoint names exactly the records the broker has. Abandoning a batch instead
(a second Ctrl-C) is safe too: its records are sent again on resume, with the same ids."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.http import ApiError
from infra.publisher import BrokerUnavailable, KafkaPublisher
from infra.settings import Settings
from ingest.accept import ItemResult, NothingAccepted, publish_results
from ingest.normalize import InvalidEvent
from ingest.routes import limits_of
from profilestream.importing.checkpoint import (
    Checkpoint,
    FileIdentity,
    checkpoint_path,
    load_checkpoint,
    resumable,
    save_checkpoint,
)
from profilestream.importing.convert import Conversion, convert, endpoint_of
from profilestream.importing.formats import Format
from profilestream.importing.progress import Reporter
from profilestream.importing.records import (
    Layout,
    NotJson,
    Read,
    UnreadableFile,
    open_input,
    read_records,
)
from profilestream.importing.tally import Tally
from schemas.events import to_utc_ms

# Records per publish: large enough that the broker round trip is paid rarely, small enough
# that a Ctrl-C waits little and a batch's events fit the broker's message limits.
BATCH_RECORDS = 500
# How often (in records) reading pauses so that the batch in flight makes progress.
YIELD_EVERY = 50
# How often (in records) the progress is redrawn while resuming past settled records.
SKIP_REPORT_EVERY = 5000


class BrokerDown(Exception):
    """The broker did not acknowledge a batch (or could not be reached)."""


class InFlight:
    """At most one batch being published while the next one is read and converted, so the
    broker's round trip overlaps the work of the next batch. Batches commit in file order: a
    batch is submitted only once the one before it is acknowledged and saved."""

    def __init__(self, commit: Callable[[Batch, int], Awaitable[None]]) -> None:
        self._commit = commit
        self._task: asyncio.Future[None] | None = None

    async def submit(self, batch: Batch, position: int) -> None:
        await self.settled()
        self._task = asyncio.ensure_future(self._commit(batch, position))

    async def settled(self) -> None:
        """Wait until the batch in flight (if any) is acknowledged and saved; raises its
        BrokerDown."""
        task, self._task = self._task, None
        if task is not None:
            await task

    def abandon(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


@dataclass(frozen=True)
class ImportJob:
    path: Path
    format: Format
    layout: Layout
    source: str


@dataclass
class FileResult:
    tally: Tally
    already_done: bool = False  # a finished checkpoint said so; nothing was sent
    stopped: bool = False  # a stop request ended it before the end of the file
    checkpoint: Path | None = None


@dataclass
class Batch:
    """Records read since the last acknowledged batch."""

    received_at: datetime
    results: list[ItemResult] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)  # the records, for the rejections' bodies
    wheres: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # not JSON: settled without a publish
    records: int = 0


def now() -> datetime:
    return to_utc_ms(datetime.now(UTC))


async def check_broker(settings: Settings, publisher: KafkaPublisher) -> None:
    """BrokerDown unless the broker answers (before any file is read)."""
    try:
        await publisher.partition_count(settings.events_topic)
    except BrokerUnavailable as exc:
        raise BrokerDown(f"cannot reach the broker ({settings.kafka_bootstrap}): {exc}") from None


async def publish_batch(
    settings: Settings, publisher: KafkaPublisher, job: ImportJob, batch: Batch
) -> None:
    """Publish the batch's events and refusals, as ingest does; BrokerDown if not
    acknowledged."""
    if not batch.results:
        return
    try:
        await publish_results(
            settings,
            publisher,
            batch.results,
            source=job.source,
            endpoint=endpoint_of(job.format),
            received_at=batch.received_at,
            items=batch.items,
        )
    except NothingAccepted:
        pass  # every record was refused: the refusals were recorded (best effort) and counted
    except ApiError as exc:  # 503: the broker did not acknowledge
        raise BrokerDown(
            f"the broker ({settings.kafka_bootstrap}) did not acknowledge a batch: {exc.message}"
        ) from None


def settle(tally: Tally, batch: Batch) -> None:
    """Count an acknowledged batch."""
    for where, result in zip(batch.wheres, batch.results, strict=True):
        if isinstance(result, InvalidEvent):
            tally.refuse(where, result)
        else:
            tally.accept(len(result))
    for where in batch.skipped:
        tally.skip(where)


async def import_file(
    job: ImportJob,
    settings: Settings,
    publisher: KafkaPublisher,
    reporter: Reporter,
    stop_requested: Callable[[], bool],
    *,
    restart: bool = False,
    batch_records: int = BATCH_RECORDS,
) -> FileResult:
    identity = FileIdentity.of(job.path)
    saved_at = checkpoint_path(settings.data_dir / "imports", identity)
    previous = None if restart else load_checkpoint(saved_at, identity)
    checkpoint = resumable(previous, str(job.format), job.source) or Checkpoint(
        identity, str(job.format), job.source
    )
    if checkpoint.done:
        return FileResult(checkpoint.tally, already_done=True, checkpoint=saved_at)
    tally = checkpoint.tally
    settled = tally.records  # records of this file an earlier run settled: not sent again
    limits = limits_of(settings)
    reporter.start_file(job.path.name, identity.size, settled)

    def conversion(received_at: datetime) -> Conversion:
        return Conversion(job.format, job.source, received_at, limits)

    async def commit(batch: Batch, position: int) -> None:
        await publish_batch(settings, publisher, job, batch)
        settle(tally, batch)
        save_checkpoint(saved_at, checkpoint)
        reporter.advance(tally.records, position)

    in_flight = InFlight(commit)
    try:
        with open_input(job.path) as opened:
            batch = Batch(now())
            current = conversion(batch.received_at)
            read: Read
            for index, read in enumerate(read_records(opened, job.layout), 1):
                if index <= settled:
                    if index % SKIP_REPORT_EVERY == 0:
                        reporter.advance(settled, opened.position())
                    continue
                batch.records += 1
                if isinstance(read, NotJson):
                    batch.skipped.append(read.where)
                else:
                    batch.results.append(convert(read, current))
                    batch.items.append(read.value)
                    batch.wheres.append(read.where)
                if batch.records % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the batch in flight talk to the broker
                if batch.records >= batch_records:
                    await in_flight.submit(batch, opened.position())
                    if stop_requested():
                        await in_flight.settled()
                        return FileResult(tally, stopped=True, checkpoint=saved_at)
                    batch = Batch(now())
                    current = conversion(batch.received_at)
            await in_flight.submit(batch, identity.size)
            await in_flight.settled()
    except UnreadableFile as exc:
        # What was read before the damage is published; the file cannot be finished.
        await in_flight.submit(batch, identity.size)
        await in_flight.settled()
        raise UnreadableFile(
            f"{job.path}: {exc} after {tally.records:,} records (those are in)"
        ) from None
    finally:
        in_flight.abandon()  # only ever left running when cancelled or failed
    checkpoint.done = True
    save_checkpoint(saved_at, checkpoint)
    reporter.finish_file()
    return FileResult(tally, checkpoint=saved_at)
