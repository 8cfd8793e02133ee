"""One batch, end to end: decode, dead-letter what cannot be decoded, dedup by messageId, insert
into ClickHouse, then apply to Redis. Returning means everything is written; only then does the
worker commit the batch to its source, so committed offsets never pass unwritten data."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from infra.clients import store_unavailable_errors
from materializer import metrics
from materializer.processing import (
    Consumed,
    DedupWindow,
    RawMessage,
    as_message,
    chunks,
    dead_letter,
    decode_batch,
    plan_batch,
    possibly_stored,
    split_at_deletes,
)
from materializer.sinks import DeadLetterWriter, EventStore, ProfileStore
from schemas.messages import DeadLetterMessage

T = TypeVar("T")

log = logging.getLogger(__name__)

# How many times a write that fails for a reason other than an unreachable store is retried
# before the batch is split to find the event no store accepts.
DATA_ERROR_RETRIES = 2


@dataclass
class BatchResult:
    consumed: int
    inserted: int
    dead_lettered: int


class Throughput:
    """Logs events/s and batch sizes every `every_s` seconds (operators' first question)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._reset()

    def _reset(self) -> None:
        self.started = time.monotonic()
        self.batches = self.events = self.inserted = self.dead_lettered = 0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.events += result.consumed + result.dead_lettered
        self.inserted += result.inserted
        self.dead_lettered += result.dead_lettered
        elapsed = time.monotonic() - self.started
        if elapsed >= self.every_s:
            log.info(
                "%d events in %d batches in %.1fs (%.0f events/s, %.0f per batch), "
                "%d inserted, %d dead-lettered",
                self.events,
                self.batches,
                elapsed,
                self.events / elapsed,
                self.events / self.batches,
                self.inserted,
                self.dead_lettered,
            )
            self._reset()


class BatchProcessor:
    def __init__(
        self,
        profiles: ProfileStore,
        events: EventStore,
        dead_letters: DeadLetterWriter,
        *,
        retry_max_s: float = 5.0,
        max_events: int = 5000,
        dedup_window_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`max_events`: the most events one write of both stores takes (a batch of more is
        written in chunks); `dedup_window_days`: how long Redis remembers a messageId after its
        event's day (processing.DedupWindow); `clock`: seconds since the epoch (tests move it)."""
        self._profiles = profiles
        self._events = events
        self._dead_letters = dead_letters
        self._retry_max_s = retry_max_s
        self._max_events = max_events
        self._window_days = dedup_window_days
        self._clock = clock
        self.throughput = Throughput()

    async def process(self, messages: Sequence[RawMessage]) -> BatchResult:
        consumed, dead = decode_batch(messages)
        inserted, refused = 0, []
        for chunk in chunks(consumed, self._max_events):
            for segment in split_at_deletes(chunk):
                segment_inserted, segment_refused = await self._write_isolating(segment)
                inserted += segment_inserted
                refused += segment_refused
        for letter in [*dead, *refused]:
            log.warning(
                "dead-lettering %s[%d]@%d: %s",
                letter.topic,
                letter.partition,
                letter.offset,
                letter.reason,
            )
            await self._retrying(
                "dead-letter produce", partial(self._dead_letters, letter), "dead_letter"
            )
        result = BatchResult(
            consumed=len(consumed) - len(refused),
            inserted=inserted,
            dead_lettered=len(dead) + len(refused),
        )
        self.throughput.add(result)
        metrics.record_batch(len(consumed) + len(dead), len(dead), len(refused), self._clock())
        return result

    async def _write_isolating(
        self, consumed: Sequence[Consumed], part_of_message: bool = False
    ) -> tuple[int, list[DeadLetterMessage]]:
        """Write the batch, retrying while a store is unreachable. A batch that keeps failing
        for another reason may hold an event no store accepts: halve it until that event is
        alone, and dead-letter it, so one bad event never stalls its partition. Halves are cut
        between messages while there are several; `part_of_message`: `consumed` is some of
        one message's events (they share its offset), so that offset stays in flight."""
        data_errors = 0

        def too_many_data_errors(exc: Exception) -> bool:
            nonlocal data_errors
            data_errors += not is_transient(exc)
            return data_errors > DATA_ERROR_RETRIES

        try:
            written = partial(self._write, consumed, part_of_message)
            return await self._retrying("write batch", written, "write", too_many_data_errors), []
        except Exception as exc:
            last_error = type(exc).__name__
        if len(consumed) == 1:
            item = consumed[0]
            reason = f"write refused after {DATA_ERROR_RETRIES + 1} attempts: {last_error}"
            key = item.event.profile_key.encode()
            return 0, [dead_letter(item.meta, key, as_message(item.event), reason)]
        middle, within_message = halving_point(consumed)
        part = part_of_message or within_message
        left_inserted, left_refused = await self._write_isolating(consumed[:middle], part)
        right_inserted, right_refused = await self._write_isolating(consumed[middle:], part)
        return left_inserted + right_inserted, left_refused + right_refused

    async def _write(self, consumed: Sequence[Consumed], part_of_message: bool = False) -> int:
        # Every step is idempotent, so a failure anywhere retries the whole batch from the top.
        window = DedupWindow.at(int(self._clock() * 1000), self._window_days)
        timer = StoreTimer()
        with timer.timing("redis"):
            applied, in_flight, definitions = await self._profiles.lookup(consumed)
        stored: dict[str, tuple[int, int]] = {}
        suspects = possibly_stored(consumed, in_flight, applied, window)
        if suspects:
            # A previous attempt may have inserted these before it died, or they are older
            # than Redis remembers: ask ClickHouse.
            with timer.timing("clickhouse"):
                stored = await self._events.stored(
                    [c.event.profile_key for c in suspects],
                    [c.event.message_id for c in suspects],
                )
        plan = plan_batch(
            consumed, applied, stored, in_flight, definitions, window, part_of_message
        )
        inserted = len(plan.columns)
        if inserted:
            with timer.timing("redis"):
                await self._profiles.mark_in_flight(plan)
            with timer.timing("clickhouse"):
                await self._events.insert(plan.columns)
            # Counted once: a retry finds these stored and does not insert them again.
            metrics.EVENTS_WRITTEN.inc(inserted)
        for user in plan.deleted:
            # A deletion request (alone in its batch): the events go before the profile.
            await self._events.delete_users(await self._profiles.stored_ids(user))
        with timer.timing("redis"):
            await self._profiles.apply(plan)
        received = (event.received_at for event in plan.columns.events)
        metrics.record_write(timer.seconds, received, self._clock())
        return inserted

    async def _retrying(
        self,
        what: str,
        step: Callable[[], Awaitable[T]],
        retry_step: str,
        give_up: Callable[[Exception], bool] | None = None,
    ) -> T:
        """`retry_step`: the label of the step's retries (metrics.RETRY_STEPS)."""
        return await retrying(
            what,
            step,
            delay_s=min(0.1, self._retry_max_s),
            max_delay_s=self._retry_max_s,
            give_up=give_up,
            on_retry=metrics.WRITE_RETRIES.labels(retry_step).inc,
        )


class StoreTimer:
    """The time one write spends in each store, summed over its steps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timing(self, store: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            self.seconds[store] = self.seconds.get(store, 0.0) + elapsed


async def retrying(
    what: str,
    step: Callable[[], Awaitable[T]],
    *,
    delay_s: float = 1.0,
    max_delay_s: float | None = None,
    give_up: Callable[[Exception], bool] | None = None,
    level: int = logging.WARNING,
    on_retry: Callable[[], object] | None = None,
) -> T:
    """`step()` until it returns, sleeping `delay_s` after a failure, doubled after each next one
    up to `max_delay_s` (default: a fixed delay). An exception `give_up` accepts is raised. Logs
    the exception's type only: its message could quote event contents. `on_retry` is called
    for each failure that is retried (a metric counts them)."""
    delay = delay_s
    ceiling = delay_s if max_delay_s is None else max_delay_s
    while True:
        try:
            return await step()
        except Exception as exc:  # not CancelledError (a BaseException): cancelling stops it
            if give_up is not None and give_up(exc):
                raise
            log.log(level, "%s failed (%s); retrying in %.1fs", what, type(exc).__name__, delay)
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(delay)
            delay = min(delay * 2, ceiling)


def halving_point(consumed: Sequence[Consumed]) -> tuple[int, bool]:
    """Where to halve a segment for isolation: the message boundary nearest the middle, or,
    when the segment is one message, its middle event (True: the halves split a message)."""
    middle = len(consumed) // 2
    boundaries = [i for i in range(1, len(consumed)) if consumed[i].meta != consumed[i - 1].meta]
    if not boundaries:
        return middle, True
    return min(boundaries, key=lambda i: abs(i - middle)), False


def is_transient(exc: BaseException) -> bool:
    """A store unreachable or busy: wait and retry, never give up on the data."""
    return isinstance(exc, (OSError, TimeoutError, *store_unavailable_errors()))
