"""The Kafka wire format. Every message carries a schema version `v`; consumers refuse versions
they do not know (they go to the dead-letter topic) instead of guessing.

The events topic carries two versions, and the worker reads both (materializer.decode):
- 1: one event (`EventMessage`) or one management command (`CommandMessage`) per message;
- 2: several events of one request that share a partition (`EventsMessage`), so that the costs
  paid per message (the broker's record, the consumer's bookkeeping, the offset marks) are
  shared. Per-user order holds: a user's events are in one partition, in request order inside
  the message. The key is the first event's user (it hashes to the same partition)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.commands import UserCommand
from schemas.events import Event

SCHEMA_VERSION: Literal[1] = 1


class EventMessage(BaseModel):
    """events topic; key = Event.profile_key."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["event"] = "event"
    event: Event


class CommandMessage(BaseModel):
    """events topic too; key = UserCommand.user_id, so a user's commands and events share a
    partition and are applied in one order."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["command"] = "command"
    command: UserCommand


class EventsMessage(BaseModel):
    """events topic, version 2: events of one partition, in order; key = the first event's
    Event.profile_key. Built by `events_message` from events already encoded one by one."""

    v: Literal[2] = 2
    kind: Literal["events"] = "events"
    events: list[Event]


# What the events topic carries, told apart by `kind`.
EventsTopicMessage = Annotated[
    EventMessage | CommandMessage | EventsMessage, Field(discriminator="kind")
]

# A message of several events stays under this many bytes (Kafka's default limit on a message is
# 1 MB); a request's events for one partition that are larger go in several messages.
MAX_EVENTS_MESSAGE_BYTES = 512 * 1024


_ENVELOPE = (b'{"v":2,"kind":"events","events":[', b"]}")


def events_message(encoded_events: list[bytes]) -> bytes:
    """The version 2 message holding these events (each `Event.model_dump_json()`), in order:
    what `EventsMessage(events=...).model_dump_json()` gives, without validating them again."""
    return _ENVELOPE[0] + b",".join(encoded_events) + _ENVELOPE[1]


def events_message_groups(encoded_events: list[bytes]) -> list[tuple[int, list[bytes]]]:
    """How these events fill as few version 2 messages as hold them under
    MAX_EVENTS_MESSAGE_BYTES each (an event is never split), in order: (index of each message's
    first event, its events)."""
    empty = len(_ENVELOPE[0]) + len(_ENVELOPE[1]) - 1  # the first event needs no comma
    groups: list[tuple[int, list[bytes]]] = []
    chunk: list[bytes] = []
    size = empty
    for index, encoded in enumerate(encoded_events):
        if chunk and size + len(encoded) + 1 > MAX_EVENTS_MESSAGE_BYTES:
            chunk, size = [], empty
        if not chunk:
            groups.append((index, chunk))
        chunk.append(encoded)
        size += len(encoded) + 1
    return groups


def events_messages(encoded_events: list[bytes]) -> list[bytes]:
    """The version 2 messages of `events_message_groups`, in order."""
    return [events_message(chunk) for _, chunk in events_message_groups(encoded_events)]


class FieldError(BaseModel):
    """One broken rule: a dotted field path and why."""

    field: str
    reason: str


class RejectionMessage(BaseModel):
    """rejections topic: an event ingest refused, where it came from and why, and (since issue
    15) the refused item itself, so that an integrator wiring an SDK sees what it really sent in
    the dashboard's live debugger. The body is user data, as accepted events are: the debugger
    shows it to the query API's operators (any role, as they read events), and it is kept only
    as long as the rejections topic keeps messages. Secrets are removed before it is produced:
    the item's top-level `writeKey` member, and any value equal to a write key; the
    Authorization header is never part of it. Messages written before it existed carry no
    body."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["rejection"] = "rejection"
    source: str
    endpoint: str
    index: int
    message_id: str | None = None
    errors: list[FieldError] = Field(default_factory=list)
    received_at: datetime
    # The refused item's JSON as received, secrets removed, cut to PS_MAX_EVENT_BYTES bytes
    # (then `body_truncated` is true and `body` may not parse); None when not recorded.
    body: str | None = None
    body_truncated: bool = False


class DeadLetterMessage(BaseModel):
    """dead-letter topic: a message the materializer could not decode."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["dead-letter"] = "dead-letter"
    topic: str
    partition: int
    offset: int
    reason: str
    key: str | None = None
    # The original bytes, base64: kept so an operator can repair and replay it.
    value_b64: str
