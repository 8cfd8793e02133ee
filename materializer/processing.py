"""Pure: Kafka bytes -> `Event`, `event -> row` for ClickHouse and `event -> profile change` for
Redis, and the batch plan that dedups by messageId. No I/O; every function here is unit-tested
with plain values."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import TypeAdapter, ValidationError

from infra.topic_ids import TopicId
from materializer.profile_ops import (
    Definitions,
    ProfileOps,
    command_operations,
    configs_served,
    trait_operations,
)
from profilestore.wire import Change
from schemas.commands import UserCommand
from schemas.events import Event
from schemas.messages import DeadLetterMessage, EventsTopicMessage

_topic_message: TypeAdapter[Any] = TypeAdapter(EventsTopicMessage)


# One partition of one life of a topic: (topic, partition, topic id). Offsets restart at 0 when
# a topic is created anew, so marks are kept per life (infra.topic_ids).
PartitionKey = tuple[str, int, TopicId]


class MessageMeta(NamedTuple):
    """Where a message came from: travels with the data so commits follow the writes. (Named
    tuples, here and below: one of each per event, and a frozen dataclass costs several times
    more to build.)"""

    topic: str
    partition: int
    offset: int
    topic_id: TopicId

    @property
    def partition_key(self) -> PartitionKey:
        return (self.topic, self.partition, self.topic_id)


class Consumed(NamedTuple):
    """One decoded event or management command with its position in the log (and its bytes,
    for a dead letter)."""

    event: Event | UserCommand
    meta: MessageMeta
    raw: bytes = b""


class UndecodableMessage(Exception):
    """The message is not a valid message of a version this worker knows."""


def decode_event(value: bytes | None) -> Event | UserCommand:
    if value is None:
        raise UndecodableMessage("empty message (tombstone)")
    try:
        message = _topic_message.validate_json(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = first["loc"]
        if len(loc) > 1 and loc[0] in ("event", "command"):
            loc = loc[1:]  # the union's tag (the message kind), not a field
        where = ".".join(str(p) for p in loc) or "message"
        raise UndecodableMessage(
            f"{exc.error_count()} validation error(s); first at {where}: {first['msg']}"
        ) from None
    decoded: Event | UserCommand = message.command if message.kind == "command" else message.event
    return decoded


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def event_row(event: Event, meta: MessageMeta) -> tuple[Any, ...]:
    """The ClickHouse row, in `infra.warehouse.EVENT_COLUMNS` order. An event with no traits of
    its own stores its profileOps in the traits column, so the user's sequence shows what the
    event did to the profile."""
    traits = event.traits or event.profile_ops or {}
    return (
        event.message_id,
        event.profile_key,
        event.anonymous_id or "",
        event.type,
        event.event_name,
        event.name or "",
        event.timestamp,
        event.received_at,
        _json(event.properties),
        _json(traits),
        _json(event.context),
        event.source,
        meta.partition,
        meta.offset,
    )


def _with_ops_and_rejections(change: Change, result: ProfileOps) -> Change:
    if result.clear_keeping is not None:
        change["ca"] = result.clear_keeping
    if result.ops:
        change["ops"] = result.ops
    if result.rejections:
        change["x"] = [{"f": f, "r": r} for f, r in result.rejections]
    return change


def profile_change(event: Event, definitions: Definitions | None = None) -> Change:
    """What the event does to its user's profile, in the wire format the Redis apply script
    reads (profilestore.wire).

    Property values are pre-encoded JSON strings so Lua never re-encodes user data (cjson would
    turn 1 into 1.0 and [] into {}).
    """
    timestamp = str(ms(event.timestamp))
    change: Change = {
        "m": event.message_id,
        "ts": timestamp,
        "n": event.event_name,
        "le": _json(
            {
                "message_id": event.message_id,
                "type": event.type,
                "name": event.event_name,
                "timestamp": timestamp,
            }
        ),
    }
    if event.user_id:
        change["kn"] = 1
    result = ProfileOps()
    defs = definitions or {}
    if event.type == "identify" and event.traits:
        trait_operations(event.traits, defs, "traits", result)
    if event.profile_ops:  # any event type, after an identify's traits
        trait_operations(event.profile_ops, defs, "profileOps", result)
    served = configs_served(event, result)
    if served:
        change["cfg"] = [text for pair in served.items() for text in pair]
    # identify/track/... carrying both ids, or an alias: fold the other profile into this one
    other = event.previous_id if event.type == "alias" else event.anonymous_id
    if event.user_id and other and other != event.user_id:
        change["mg"] = other
    return _with_ops_and_rejections(change, result)


def command_change(command: UserCommand) -> Change:
    """A management command, in the same shape (no event is counted)."""
    change: Change = {
        "m": command.command_id,
        "ts": str(ms(command.issued_at)),
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


def change_for(item: Event | UserCommand, definitions: Definitions | None) -> Change:
    if isinstance(item, UserCommand):
        return command_change(item)
    return profile_change(item, definitions)


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

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    changes_by_user: dict[str, list[Change]] = field(default_factory=dict)
    # partition -> highest offset in the batch (what the batch lets us mark as applied)
    last_offsets: dict[PartitionKey, int] = field(default_factory=dict)
    in_flight: dict[PartitionKey, OffsetRange] = field(default_factory=dict)
    # None: no mark left; a range: a previous, longer attempt's offsets not replayed yet
    in_flight_after: dict[PartitionKey, OffsetRange | None] = field(default_factory=dict)
    # users deleted by this batch (their merged anonymous ids are read from Redis)
    deleted: list[str] = field(default_factory=list)


def first_of_each_message_id(consumed: Iterable[Consumed]) -> list[Consumed]:
    """Drop repeats of a messageId within one batch (a client retry landing next to itself)."""
    seen: set[str] = set()
    unique: list[Consumed] = []
    for item in consumed:
        if item.event.message_id not in seen:
            seen.add(item.event.message_id)
            unique.append(item)
    return unique


def possibly_stored(
    consumed: Iterable[Consumed],
    in_flight: dict[PartitionKey, OffsetRange],
    already_applied: set[str],
) -> list[Consumed]:
    """Events a crashed attempt may have inserted into ClickHouse without applying them to
    Redis: their offsets fall in a partition's in-flight mark."""
    return [
        item
        for item in consumed
        if item.event.message_id not in already_applied
        and item.meta.offset in in_flight.get(item.meta.partition_key, ())
    ]


def plan_batch(
    consumed: Sequence[Consumed],
    already_applied: set[str],
    already_stored: set[str],
    in_flight: dict[PartitionKey, OffsetRange] | None = None,
    definitions: Definitions | None = None,
) -> BatchPlan:
    """Rows for events ClickHouse does not have yet, profile changes for events and commands
    Redis has not applied yet. `already_applied` implies stored: Redis is written after
    ClickHouse."""
    in_flight = in_flight or {}
    plan = BatchPlan()
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
        plan.in_flight_after[key] = OffsetRange(last + 1, mark_last) if mark_last > last else None
    for item in first_of_each_message_id(consumed):
        message_id = item.event.message_id
        if message_id in already_applied:
            continue
        user = item.event.profile_key
        change = change_for(item.event, definitions)
        if isinstance(item.event, Event) and message_id not in already_stored:
            plan.rows.append(event_row(item.event, item.meta))
        if change.get("cmd") == "delete":
            plan.deleted.append(user)
        plan.changes_by_user.setdefault(user, []).append(change)
    return plan


class RawMessage(NamedTuple):
    key: bytes | None
    value: bytes | None
    meta: MessageMeta


def dead_letter(
    meta: MessageMeta, key: bytes | None, value: bytes | None, reason: str
) -> DeadLetterMessage:
    return DeadLetterMessage(
        topic=meta.topic,
        partition=meta.partition,
        offset=meta.offset,
        reason=reason,
        key=key.decode("utf-8", "replace") if key else None,
        value_b64=base64.b64encode(value or b"").decode(),
    )


def decode_batch(messages: Sequence[RawMessage]) -> tuple[list[Consumed], list[DeadLetterMessage]]:
    """Decoded events, and a dead letter (with the reason) for each message that is not one."""
    consumed: list[Consumed] = []
    dead: list[DeadLetterMessage] = []
    for message in messages:
        try:
            event = decode_event(message.value)
        except UndecodableMessage as exc:
            dead.append(dead_letter(message.meta, message.key, message.value, str(exc)))
        else:
            consumed.append(Consumed(event, message.meta, message.value or b""))
    return consumed, dead
