"""Pure: decoded events -> columns for ClickHouse and `event -> profile change` for Redis, and the
batch plan that dedups by messageId. No I/O; every function here is unit-tested with plain values.
(Kafka bytes -> events is materializer.decode.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import orjson

from materializer.decode import (
    Consumed,
    MessageMeta,
    PartitionKey,
    RawMessage,
    WireEvent,
    as_message,
    dead_letter,
    decode_batch,
)
from materializer.profile_ops import (
    Definitions,
    ProfileOps,
    command_operations,
    configs_served,
    trait_operations,
)
from profilestore.wire import Change
from schemas.commands import UserCommand

__all__ = [
    "BatchPlan",
    "Consumed",
    "DedupWindow",
    "EventColumns",
    "MessageMeta",
    "OffsetRange",
    "PartitionKey",
    "RawMessage",
    "as_message",
    "command_change",
    "dead_letter",
    "decode_batch",
    "plan_batch",
    "profile_change",
]

DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST_DAY = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH).days  # the day number of 0001-01-01

# Where a stored event's row came from: (Kafka partition, offset) as the events table has them.
StoredAt = tuple[int, int]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@dataclass(frozen=True)
class DedupWindow:
    """How long a messageId is remembered in Redis (profilestore: the user's ids hash): until
    `days` days after its event's day. An event whose day is already further back (an import,
    a replay of old data) is checked against ClickHouse instead, and remembered only until
    tomorrow ends (long enough for a crashed batch's replay). `today` is a day number (days
    since 1970-01-01, UTC)."""

    today: int
    days: int

    @classmethod
    def at(cls, now_ms: int, days: int) -> DedupWindow:
        return cls(today=now_ms // DAY_MS, days=days)

    def is_old(self, event_ms: int) -> bool:
        return event_ms // DAY_MS + self.days < self.today

    @cached_property
    def oldest_kept(self) -> datetime:
        """The start of the oldest day still inside the window: `is_old` for a datetime, without
        converting it to milliseconds first."""
        # a window reaching back before year 1 (NO_WINDOW) starts at the earliest datetime
        return EPOCH + timedelta(days=max(self.today - self.days, FIRST_DAY))

    def keep_until(self, event_ms: int) -> int:
        """The day until which the event's messageId stays in the user's ids hash."""
        return self.today + 1 if self.is_old(event_ms) else event_ms // DAY_MS + self.days


# For tests and tools that do not care about the window: nothing is old, ids are kept.
NO_WINDOW = DedupWindow(today=0, days=10**6)


class EventColumns:
    """The INSERT's columns, in `infra.warehouse.EVENT_COLUMNS` order: ClickHouse takes columns,
    and a comprehension per column is cheaper than a tuple per row. The JSON columns hold the
    bytes ingest wrote. An event with no traits of its own stores its profileOps in the traits
    column, so the user's sequence shows what the event did to the profile."""

    __slots__ = ("events", "metas")

    def __init__(self) -> None:
        self.events: list[WireEvent] = []
        self.metas: list[MessageMeta] = []

    def __len__(self) -> int:
        return len(self.events)

    def append(self, event: WireEvent, meta: MessageMeta) -> None:
        self.events.append(event)
        self.metas.append(meta)

    @property
    def columns(self) -> list[list[Any]]:
        events, metas = self.events, self.metas
        return [
            [e.message_id for e in events],
            [e.user_id or e.anonymous_id for e in events],
            [e.anonymous_id or "" for e in events],
            [e.type for e in events],
            [e.event_name for e in events],
            [e.name or "" for e in events],
            [e.timestamp for e in events],
            [e.received_at for e in events],
            [bytes(e.properties) for e in events],
            [_traits_text(e) for e in events],
            [bytes(e.context) for e in events],
            [e.source for e in events],
            [m.partition for m in metas],
            [m.offset for m in metas],
        ]

    def rows(self) -> list[tuple[Any, ...]]:
        """Row tuples (for tests and in-memory stores)."""
        return list(zip(*self.columns, strict=True))


def _traits_text(event: WireEvent) -> bytes:
    traits = bytes(event.traits)
    if traits == b"{}" and event.profile_ops:
        return orjson.dumps(event.profile_ops)
    return traits


def _with_ops_and_rejections(change: Change, result: ProfileOps) -> Change:
    if result.clear_keeping is not None:
        change["ca"] = result.clear_keeping
    if result.ops:
        change["ops"] = result.ops
    if result.rejections:
        change["x"] = [{"f": f, "r": r} for f, r in result.rejections]
    return change


def profile_change(
    event: WireEvent,
    definitions: Definitions | None = None,
    keep_until: int | None = None,
    event_ms: int | None = None,
) -> Change:
    """What the event does to its user's profile, in the wire format the Redis apply script
    reads (profilestore.wire). `keep_until`: the day until which its messageId is remembered
    (DedupWindow.keep_until; by default the window that never ends).

    Property values are pre-encoded JSON strings so Lua never re-encodes user data (cjson would
    turn 1 into 1.0 and [] into {}).
    """
    at = ms(event.timestamp) if event_ms is None else event_ms
    timestamp = str(at)
    name = event.event_name
    change: Change = {
        "m": event.message_id,
        "ts": timestamp,
        "kp": NO_WINDOW.keep_until(at) if keep_until is None else keep_until,
        "n": name,
        "le": _json(
            {
                "message_id": event.message_id,
                "type": event.type,
                "name": name,
                "timestamp": timestamp,
            }
        ),
    }
    if event.user_id:
        change["kn"] = 1
    result = ProfileOps()
    defs = definitions or {}
    if event.type == "identify":
        traits = event.traits_dict()
        if traits:
            trait_operations(traits, defs, "traits", result)
    if event.profile_ops:  # any event type, after an identify's traits
        trait_operations(event.profile_ops, defs, "profileOps", result)
    served = configs_served(event, result)
    if served:
        change["cfg"] = [text for pair in served.items() for text in pair]
    # identify/track/... carrying both ids, or an alias: fold the other profile into this one
    other = event.previous_id if event.type == "alias" else event.anonymous_id
    if event.user_id and other and other != event.user_id:
        change["mg"] = other
    if result.ops or result.rejections or result.clear_keeping is not None:
        return _with_ops_and_rejections(change, result)
    return change


def command_change(command: UserCommand, keep_until: int | None = None) -> Change:
    """A management command, in the same shape (no event is counted)."""
    at = ms(command.issued_at)
    change: Change = {
        "m": command.command_id,
        "ts": str(at),
        "kp": NO_WINDOW.keep_until(at) if keep_until is None else keep_until,
        "cmd": command.op,
    }
    if command.op == "delete":
        return change
    change["ops"] = command_operations(command)
    if command.tags_add:
        change["ta"] = command.tags_add
    if command.tags_remove:
        change["tr"] = command.tags_remove
    if command.status:
        change["st"] = command.status
    return change


def is_delete(item: Consumed) -> bool:
    return isinstance(item.event, UserCommand) and item.event.op == "delete"


def split_at_deletes(consumed: Sequence[Consumed]) -> list[list[Consumed]]:
    """Segments written one after the other, each delete command alone in its own: a delete
    removes the user's rows from ClickHouse, so it must run after the rows before it and
    before the rows after it, and once the merges before it are applied (its ids come from
    the profile in Redis, never from merges that may yet be refused)."""
    segments: list[list[Consumed]] = [[]]
    for item in consumed:
        if is_delete(item):
            segments += [[item], []]
        else:
            segments[-1].append(item)
    return [s for s in segments if s]


def chunks(consumed: Sequence[Consumed], max_events: int) -> list[Sequence[Consumed]]:
    """The batch in chunks of at most `max_events` events (more only for a single message
    that holds more), cut between messages: each chunk is one write of both stores, so a
    Lua run and an INSERT stay bounded however many events a fetch brought."""
    if len(consumed) <= max_events:
        return [consumed]
    result: list[Sequence[Consumed]] = []
    start = 0
    while start < len(consumed):
        end = min(start + max_events, len(consumed))
        # never cut inside a message: its events share one offset
        while end < len(consumed) and end > start and consumed[end].meta == consumed[end - 1].meta:
            end -= 1
        if end == start:  # one message larger than max_events: take it whole
            end = start + 1
            while end < len(consumed) and consumed[end].meta == consumed[start].meta:
                end += 1
        result.append(consumed[start:end])
        start = end
    return result


@dataclass(frozen=True)
class OffsetRange:
    first: int
    last: int

    def __contains__(self, offset: object) -> bool:
        return isinstance(offset, int) and self.first <= offset <= self.last


@dataclass
class BatchPlan:
    """What one batch writes: new rows for ClickHouse, changes per user for Redis, and the
    in-flight offset marks to set before the INSERT and to leave after the apply."""

    columns: EventColumns = field(default_factory=EventColumns)
    changes_by_user: dict[str, list[Change]] = field(default_factory=dict)
    # partition -> highest offset in the batch (what the batch lets us mark as applied)
    last_offsets: dict[PartitionKey, int] = field(default_factory=dict)
    in_flight: dict[PartitionKey, OffsetRange] = field(default_factory=dict)
    # None: no mark left; a range: a previous, longer attempt's offsets not replayed yet
    in_flight_after: dict[PartitionKey, OffsetRange | None] = field(default_factory=dict)
    # users deleted by this batch (their merged anonymous ids are read from Redis)
    deleted: list[str] = field(default_factory=list)
    # the day the batch was planned on (the apply script prunes ids kept until before it)
    today: int = 0

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """The INSERT's rows as tuples (for tests and in-memory stores)."""
        return self.columns.rows()


def first_of_each_message_id(consumed: Iterable[Consumed]) -> list[Consumed]:
    """Drop repeats of a messageId within one batch (a client retry landing next to itself)."""
    seen: set[str] = set()
    unique: list[Consumed] = []
    for item in consumed:
        message_id = item_id(item.event)
        if message_id not in seen:
            seen.add(message_id)
            unique.append(item)
    return unique


def item_id(item: WireEvent | UserCommand) -> str:
    return item.command_id if isinstance(item, UserCommand) else item.message_id


def possibly_stored(
    consumed: Iterable[Consumed],
    in_flight: Mapping[PartitionKey, OffsetRange],
    already_applied: set[str],
    window: DedupWindow = NO_WINDOW,
) -> list[Consumed]:
    """Events ClickHouse must be asked about: those a crashed attempt may have inserted without
    applying them to Redis (their offsets fall in a partition's in-flight mark), and those
    outside the dedup window (Redis no longer remembers whether they were stored)."""
    return [
        item
        for item in consumed
        if isinstance(item.event, WireEvent)
        and item.event.message_id not in already_applied
        and (
            item.meta.offset in in_flight.get(item.meta.partition_key, ())
            or item.event.timestamp < window.oldest_kept
        )
    ]


def plan_batch(
    consumed: Sequence[Consumed],
    already_applied: set[str],
    already_stored: Mapping[str, StoredAt],
    in_flight: Mapping[PartitionKey, OffsetRange] | None = None,
    definitions: Definitions | None = None,
    window: DedupWindow = NO_WINDOW,
    part_of_message: bool = False,
) -> BatchPlan:
    """Rows for events ClickHouse does not have yet, profile changes for events and commands
    Redis has not applied yet. `already_applied` implies stored: Redis is written after
    ClickHouse. `already_stored`: the events of `possibly_stored` that ClickHouse has, with
    where their row came from.

    An event outside the dedup window that ClickHouse has is a resend of an event applied long
    ago, and is skipped, unless its row came from this very message and the message is in
    flight: then a crashed attempt inserted it, and it is applied now.

    `part_of_message`: the events are some of one message's (an isolation split): the mark
    stays as it is after the apply, since the message's other events share its offset."""
    in_flight = in_flight or {}
    plan = BatchPlan(today=window.today)
    first_offsets: dict[PartitionKey, int] = {}
    for item in consumed:
        key = item.meta.partition_key
        plan.last_offsets[key] = max(plan.last_offsets.get(key, -1), item.meta.offset)
        first_offsets[key] = min(first_offsets.get(key, item.meta.offset), item.meta.offset)
    for key, last in plan.last_offsets.items():
        marked = in_flight.get(key)
        first = first_offsets[key] if marked is None else min(first_offsets[key], marked.first)
        mark_last = last if marked is None else max(last, marked.last)
        plan.in_flight[key] = OffsetRange(first, mark_last)
        if part_of_message:
            plan.in_flight_after[key] = OffsetRange(first, mark_last)
        else:
            plan.in_flight_after[key] = (
                OffsetRange(last + 1, mark_last) if mark_last > last else None
            )
    changes_by_user = plan.changes_by_user
    for item in first_of_each_message_id(consumed):
        event = item.event
        if isinstance(event, UserCommand):
            if event.command_id in already_applied:
                continue
            at = ms(event.issued_at)
            change = command_change(event, window.keep_until(at))
            if event.op == "delete":
                plan.deleted.append(event.user_id)
            changes_by_user.setdefault(event.user_id, []).append(change)
            continue
        message_id = event.message_id
        if message_id in already_applied:
            continue
        at = ms(event.timestamp)
        stored_at = already_stored.get(message_id)
        if stored_at is None:
            plan.columns.append(event, item.meta)
        elif window.is_old(at) and not (
            stored_at == (item.meta.partition, item.meta.offset)
            and item.meta.offset in in_flight.get(item.meta.partition_key, ())
        ):
            continue  # stored by another message long ago: a resend, counted once
        change = profile_change(event, definitions, window.keep_until(at), at)
        user = event.user_id or event.anonymous_id or ""
        user_changes = changes_by_user.get(user)
        if user_changes is None:
            changes_by_user[user] = [change]
        else:
            user_changes.append(change)
    return plan
