"""The live debugger's reader: what the dashboard's Debugger page shows (GET /v1/debugger/events).

While someone watches, a background task of the query process reads the events topic and the
rejections topic from their end (an aiokafka consumer of its own, no group: it commits nothing
and takes nothing from the worker), and keeps the newest records in a ring of
PS_DEBUGGER_BUFFER_EVENTS, recording at most PS_DEBUGGER_MAX_EVENTS_PER_S (the rest are counted
as skipped). It starts on the first request and stops when none came for IDLE_STOP_S, so an idle
dashboard costs nothing. Decoding uses the wire formats of schemas/ only; decoding, filtering,
the ring and the rate bound are pure and tested without Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from pydantic import ValidationError

from infra.settings import Settings
from schemas.debugger import DebuggerKind, DebuggerPage, DebuggerRecord
from schemas.events import EVENT_TYPES, Event
from schemas.messages import RejectionMessage
from schemas.redaction import without_secrets

log = logging.getLogger(__name__)

# No request for this long: the reader stops and forgets what it kept.
IDLE_STOP_S = 60.0
# After the reader failed (broker unreachable), requests wait this long before it is retried.
RETRY_AFTER_S = 5.0
POLL_TIMEOUT_MS = 500
MAX_RECORDS_PER_POLL = 2000


# --- decoding (pure) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What a request asks for; None matches anything. `event` and `user` match a part of the
    value, ignoring case; the others match it whole."""

    kind: DebuggerKind | None = None
    source: str | None = None
    type: str | None = None
    event: str | None = None
    user: str | None = None


def raw_events(value: bytes | None) -> list[Any]:
    """The events of an events-topic message (schemas.messages: version 1 holds one, version 2
    several; a management command none), not validated yet; [] for what does not decode."""
    try:
        message = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(message, dict):
        return []
    if message.get("kind") == "event" and message.get("v") == 1:
        return [message.get("event")]
    if message.get("kind") == "events" and message.get("v") == 2:
        events = message.get("events")
        return events if isinstance(events, list) else []
    return []


def accepted_record(raw: Any, secrets: Collection[str]) -> DebuggerRecord | None:
    """The record of one event of the events topic (seq 0 until the ring numbers it); None if
    it is not a valid `Event`."""
    try:
        event = Event.model_validate(raw)
    except ValidationError:
        return None
    return DebuggerRecord(
        seq=0,
        kind="accepted",
        received_at=event.received_at,
        source=event.source,
        type=event.type,
        event=event.event or event.name,
        user=event.user_id or event.anonymous_id,
        message_id=event.message_id,
        body=without_secrets(event.model_dump(mode="json"), secrets),
    )


def rejected_record(value: bytes | None, secrets: Collection[str]) -> DebuggerRecord | None:
    """The record of a rejections-topic message; None if it is not a `RejectionMessage`. Its
    body, when the message has one, is the refused item (parsed; its text if it was cut)."""
    try:
        message = RejectionMessage.model_validate_json(value or b"")
    except ValidationError:
        return None
    body: Any = None
    if message.body is not None:
        try:
            body = without_secrets(orjson.loads(message.body), secrets)
        except orjson.JSONDecodeError:
            body = message.body  # cut to the size bound: shown as the text it is
    item = body if isinstance(body, dict) else {}
    # A single-event route's item names no type: its endpoint does (/v1/track -> "track").
    kind = item.get("type", message.endpoint)
    return DebuggerRecord(
        seq=0,
        kind="rejected",
        received_at=message.received_at,
        source=message.source,
        type=kind if kind in EVENT_TYPES else None,
        event=_text(item.get("event")) or _text(item.get("name")),
        user=_first_text(item, ("userId", "anonymousId", "user_id", "distinct_id", "device_id")),
        message_id=message.message_id,
        endpoint=message.endpoint,
        reasons=message.errors,
        body=body,
        body_truncated=message.body_truncated,
    )


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value)[:255] or None
    return None


def _first_text(item: dict[str, Any], keys: Iterable[str]) -> str | None:
    for key in keys:
        found = _text(item.get(key))
        if found:
            return found
    return None


def matches(record: DebuggerRecord, filters: Filters) -> bool:
    def contains(value: str | None, part: str | None) -> bool:
        return part is None or (value is not None and part.casefold() in value.casefold())

    return (
        (filters.kind is None or record.kind == filters.kind)
        and (filters.source is None or record.source == filters.source)
        and (filters.type is None or record.type == filters.type)
        and contains(record.event, filters.event)
        and contains(record.user, filters.user)
    )


# --- the ring and the rate bound (pure) ---------------------------------------------------


class RecordRing:
    """The newest `size` records, numbered 1, 2, … in arrival order (numbers never reused while
    the process lives, so a client's `after` stays meaningful across clears)."""

    def __init__(self, size: int) -> None:
        self._records: deque[DebuggerRecord] = deque(maxlen=size)
        self.last_seq = 0

    def append(self, record: DebuggerRecord) -> None:
        self.last_seq += 1
        self._records.append(record.model_copy(update={"seq": self.last_seq}))

    def clear(self) -> None:
        self._records.clear()

    def newer(self, after: int, filters: Filters, limit: int) -> list[DebuggerRecord]:
        """The newest `limit` records after `after` that match, oldest first. An `after` past
        the last number (from before the process restarted) counts as 0."""
        if after > self.last_seq:
            after = 0
        found: list[DebuggerRecord] = []
        for record in reversed(self._records):
            if record.seq <= after or len(found) == limit:
                break
            if matches(record, filters):
                found.append(record)
        found.reverse()
        return found


class RateBudget:
    """A token bucket: `rate` records a second, bursts of up to a second's worth."""

    def __init__(self, rate: float, now: float) -> None:
        self._rate = rate
        self._tokens = rate
        self._at = now

    def take(self, wanted: int, now: float) -> int:
        """How many of `wanted` records may be recorded at `now` (taken from the budget)."""
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted


# --- the reader (I/O) ---------------------------------------------------------------------


class Consumer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def topics(self) -> set[str]: ...
    def partitions_for_topic(self, topic: str) -> set[int] | None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    async def seek_to_end(self, *partitions: TopicPartition) -> Any: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> Any: ...


def kafka_consumer(settings: Settings) -> Consumer:
    consumer: Consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        client_id="profilestream-debugger",
        request_timeout_ms=max(settings.kafka_request_timeout_ms, 1000),
    )
    return consumer


class DebuggerFeed:
    """The ring, the rate bound and the background reader that fills them."""

    def __init__(
        self,
        settings: Settings,
        *,
        consumer_factory: Callable[[Settings], Consumer] = kafka_consumer,
        idle_stop_s: float = IDLE_STOP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._consumer_factory = consumer_factory
        self._idle_stop_s = idle_stop_s
        self._clock = clock
        self._secrets = settings.secrets()
        self.ring = RecordRing(settings.debugger_buffer_events)
        self._budget = RateBudget(settings.debugger_max_events_per_s, clock())
        self.skipped = 0
        self.live = False
        self._task: asyncio.Task[None] | None = None
        self._last_request = clock()
        self._failed_at: float | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def touch(self) -> None:
        """A request came: keep the reader running, starting it if needed (not within
        RETRY_AFTER_S of a failure)."""
        now = self._clock()
        self._last_request = now
        if self.running:
            return
        if self._failed_at is not None and now - self._failed_at < RETRY_AFTER_S:
            return
        self._task = asyncio.get_running_loop().create_task(self._read(), name="debugger")

    def page(self, after: int, filters: Filters, limit: int) -> DebuggerPage:
        return DebuggerPage(
            events=self.ring.newer(after, filters, limit),
            next=self.ring.last_seq,
            skipped=self.skipped,
            live=self.live,
        )

    def take(self, topic: str, value: bytes | None) -> None:
        """Record one message of `topic`, within the rate bound."""
        now = self._clock()
        if topic == self._settings.rejections_topic:
            if self._budget.take(1, now) == 0:
                self.skipped += 1
                return
            record = rejected_record(value, self._secrets)
            if record is not None:
                self.ring.append(record)
            return
        events = raw_events(value)
        granted = self._budget.take(len(events), now)
        self.skipped += len(events) - granted
        for raw in events[:granted]:  # only what is recorded is validated
            record = accepted_record(raw, self._secrets)
            if record is not None:
                self.ring.append(record)

    async def _read(self) -> None:
        consumer = self._consumer_factory(self._settings)
        stopped_idle = False
        try:
            await consumer.start()
            await consumer.topics()  # fetches the topics' metadata
            partitions = [
                TopicPartition(topic, partition)
                for topic in (self._settings.events_topic, self._settings.rejections_topic)
                for partition in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            self.live, self._failed_at = True, None
            log.info("debugger reading %d partitions", len(partitions))
            while self._clock() - self._last_request < self._idle_stop_s:
                batches = await consumer.getmany(
                    timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_RECORDS_PER_POLL
                )
                for tp, messages in batches.items():
                    for message in messages:
                        self.take(tp.topic, message.value)
            stopped_idle = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker went away: retried on a later request
            self._failed_at = self._clock()
            log.warning("debugger reader stopped: %s", type(exc).__name__)
        finally:
            self.live = False
            with contextlib.suppress(Exception):
                await consumer.stop()
            if stopped_idle:
                self.ring.clear()  # nobody watches: keep nothing
                self.skipped = 0
                log.info("debugger idle: reader stopped")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def feed_of(app: FastAPI) -> DebuggerFeed:
    """The app's debugger feed, made on first use."""
    feed: DebuggerFeed | None = getattr(app.state, "debugger", None)
    if feed is None:
        feed = app.state.debugger = DebuggerFeed(app.state.settings)
    return feed


async def close_debugger(app: FastAPI) -> None:
    """Stop the reader, if it runs (the app's shutdown)."""
    feed: DebuggerFeed | None = getattr(app.state, "debugger", None)
    if feed is not None:
        await feed.close()
