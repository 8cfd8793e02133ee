"""Pure: Kafka bytes -> the worker's events, with compiled decoders (msgspec Structs, made once).

The worker never builds a pydantic model per event: ingest validated the event before producing
it, so here a Struct checks the types and the few rules the stores rely on, and keeps
`properties`, `traits` and `context` as the raw JSON bytes ingest wrote. They go to ClickHouse as
they are; only what the profile needs is parsed (the traits of an identify, the properties of a
served config). On realistic events (a 1 KB context) this decodes an event in about 2
microseconds, against about 45 with the pydantic models.

Both message kinds of the events topic decode here (schemas.messages): version 1 (one event or
one management command per message) and version 2 (a request's events for one partition in one
message). A message that is not one of them is a dead letter with the reason; so is an event of
a version 2 message that fails on its own, without its neighbours."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import orjson
from pydantic import ValidationError

from infra.topic_ids import TopicId
from schemas.commands import UserCommand
from schemas.events import STORABLE_FROM, STORABLE_UNTIL, TYPE_EVENT_NAMES, EventType
from schemas.messages import DeadLetterMessage

EMPTY_OBJECT = msgspec.Raw(b"{}")
OPENING_BRACE = ord("{")  # the first byte of a JSON object (msgspec.Raw keeps no whitespace)


class WireEvent(msgspec.Struct, frozen=True, gc=False):
    """schemas.events.Event as the worker reads it: the same JSON fields (those it does not
    use, `integrations`, `original_timestamp` and `sent_at`, are skipped without being parsed).
    No reference cycles, so the garbage collector never scans them (`gc=False`)."""

    # never empty: "" is the ids hash's own field (profilestore.layout.IDS_META_FIELD)
    message_id: Annotated[str, msgspec.Meta(min_length=1)]
    type: EventType
    timestamp: datetime
    received_at: datetime
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    name: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    properties: msgspec.Raw = EMPTY_OBJECT
    traits: msgspec.Raw = EMPTY_OBJECT
    context: msgspec.Raw = EMPTY_OBJECT
    profile_ops: dict[str, Any] | None = None
    configs: dict[str, str] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        # What ingest guarantees, checked again because a poison message must not reach a
        # store: an id to key the profile by, a time ClickHouse can hold, JSON objects.
        if not (self.user_id or self.anonymous_id):
            raise ValueError("user_id or anonymous_id is required")
        for moment in (self.timestamp, self.received_at):
            if moment.tzinfo is None or not STORABLE_FROM <= moment <= STORABLE_UNTIL:
                raise ValueError("a time outside 1900..2299 or without a time zone")
        for raw in (self.properties, self.traits, self.context):
            if memoryview(raw)[0] != OPENING_BRACE:
                raise ValueError("properties, traits and context must be JSON objects")

    @property
    def profile_key(self) -> str:
        """The Kafka key and profile id: userId if present, else anonymousId."""
        return self.user_id or self.anonymous_id or ""

    @property
    def event_name(self) -> str:
        """`event` for track, `$<type>` otherwise."""
        if self.type == "track" and self.event:
            return self.event
        return TYPE_EVENT_NAMES[self.type]

    def properties_dict(self) -> dict[str, Any]:
        value = orjson.loads(bytes(self.properties))
        return value if isinstance(value, dict) else {}

    def traits_dict(self) -> dict[str, Any]:
        value = orjson.loads(bytes(self.traits))
        return value if isinstance(value, dict) else {}


class _EventMessage(msgspec.Struct, tag_field="kind", tag="event", gc=False):
    v: Literal[1]
    event: WireEvent


class _EventsMessage(msgspec.Struct, tag_field="kind", tag="events", gc=False):
    v: Literal[2]
    events: list[WireEvent]


class _CommandMessage(msgspec.Struct, tag_field="kind", tag="command", gc=False):
    v: Literal[1]
    command: msgspec.Raw  # validated by the pydantic model: commands are few


class _LooseEventsMessage(msgspec.Struct, tag_field="kind", tag="events", gc=False):
    """A version 2 message whose events are decoded one by one (after the whole failed)."""

    v: Literal[2]
    events: list[msgspec.Raw]


_message = msgspec.json.Decoder(_EventMessage | _EventsMessage | _CommandMessage)
_loose = msgspec.json.Decoder(_LooseEventsMessage)
_event = msgspec.json.Decoder(WireEvent)
_encode = msgspec.json.Encoder()


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


# One partition of one life of a topic: (topic, partition, topic id). Offsets restart at 0 when
# a topic is created anew, so marks are kept per life (infra.topic_ids).
PartitionKey = tuple[str, int, TopicId]


class RawMessage(NamedTuple):
    key: bytes | None
    value: bytes | None
    meta: MessageMeta


class Consumed(NamedTuple):
    """One decoded event or management command with its position in the log. The events of
    a version 2 message share their message's position."""

    event: WireEvent | UserCommand
    meta: MessageMeta


class UndecodableMessage(Exception):
    """The message is not a valid message of a version this worker knows."""


def _reason(exc: Exception) -> str:
    # msgspec names the path and the expected type, never the value.
    return f"validation error: {exc}"


def decode_message(value: bytes | None) -> list[WireEvent | UserCommand]:
    """Every event (or the command) of one message; raises UndecodableMessage."""
    if value is None:
        raise UndecodableMessage("empty message (tombstone)")
    try:
        message = _message.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise UndecodableMessage(_reason(exc)) from None
    if isinstance(message, _EventsMessage):
        return list(message.events)
    if isinstance(message, _EventMessage):
        return [message.event]
    try:
        return [UserCommand.model_validate_json(bytes(message.command))]
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "command"
        raise UndecodableMessage(
            f"{exc.error_count()} validation error(s); first at command.{where}: {first['msg']}"
        ) from None


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


def _event_message(event_json: bytes) -> bytes:
    return b'{"v":1,"kind":"event","event":' + event_json + b"}"


def as_message(item: WireEvent | UserCommand) -> bytes:
    """A version 1 message holding this one event or command: what a dead letter of one event
    keeps, so that it can be replayed alone."""
    if isinstance(item, UserCommand):
        return b'{"v":1,"kind":"command","command":' + item.model_dump_json().encode() + b"}"
    return _event_message(_encode.encode(item))


def _one_by_one(
    message: RawMessage, consumed: list[Consumed], dead: list[DeadLetterMessage]
) -> bool:
    """A version 2 message that failed as a whole: keep its good events, dead-letter each bad
    one alone. False if it is not a version 2 message at all."""
    try:
        loose = _loose.decode(message.value or b"")
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    for index, raw in enumerate(loose.events):
        try:
            consumed.append(Consumed(_event.decode(raw), message.meta))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            reason = f"event {index} of the message: {_reason(exc)}"
            dead.append(dead_letter(message.meta, message.key, _event_message(bytes(raw)), reason))
    return True


def decode_batch(messages: Sequence[RawMessage]) -> tuple[list[Consumed], list[DeadLetterMessage]]:
    """Decoded events in log order, and a dead letter (with the reason) for each message, or
    event of a version 2 message, that is not valid."""
    consumed: list[Consumed] = []
    dead: list[DeadLetterMessage] = []
    for message in messages:
        try:
            items = decode_message(message.value)
        except UndecodableMessage as exc:
            if not _one_by_one(message, consumed, dead):
                dead.append(dead_letter(message.meta, message.key, message.value, str(exc)))
            continue
        meta = message.meta
        consumed.extend(Consumed(item, meta) for item in items)
    return consumed, dead
