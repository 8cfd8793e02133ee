"""What produced records hold, whatever the message version: ingest sends its events as version 2
messages (schemas.messages.EventsMessage: a request's events for one partition in one message),
management writes and older producers as version 1 (one event or command per message). Tests
read the events through here, and check the grouping with `grouping_problems`."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter

from infra.clients import partition_for_key
from infra.publisher import Record
from schemas.commands import UserCommand
from schemas.events import Event
from schemas.messages import (
    MAX_EVENTS_MESSAGE_BYTES,
    CommandMessage,
    EventMessage,
    EventsMessage,
    EventsTopicMessage,
)

_topic_message: TypeAdapter[Any] = TypeAdapter(EventsTopicMessage)


def message_items(value: bytes) -> list[Event | UserCommand]:
    """The events (or the command) of one events-topic message, in order."""
    message = _topic_message.validate_json(value)
    if isinstance(message, EventsMessage):
        return list(message.events)
    if isinstance(message, CommandMessage):
        return [message.command]
    assert isinstance(message, EventMessage)
    return [message.event]


def message_events(value: bytes) -> list[Event]:
    """The events of one events-topic message, in order (a command is a test failure)."""
    items = message_items(value)
    assert all(isinstance(i, Event) for i in items), "a command where events were expected"
    return [i for i in items if isinstance(i, Event)]


def keyed_events(records: Iterable[Record], topic: str) -> list[tuple[bytes, Event]]:
    """(record key, event) for every event the records of `topic` hold, in record order."""
    return [(key, e) for t, key, value in records if t == topic for e in message_events(value)]


def produced_events(records: Iterable[Record], topic: str) -> list[Event]:
    """Every event the records of `topic` hold, in record order (which is request order per
    partition, so per user; not across partitions)."""
    return [event for _, event in keyed_events(records, topic)]


def partition_of(key: str | bytes, partitions: int) -> int:
    """The partition Kafka's producer (infra.clients.partition_for_key) sends `key` to."""
    raw = key.encode() if isinstance(key, str) else key
    every = list(range(partitions))
    return partition_for_key(raw, every, every)


def grouping_problems(records: Sequence[Record], topic: str, partitions: int) -> list[str]:
    """What breaks ingest's grouping in the records of ONE request: every message of `topic` is
    a version 2 message keyed by its first event's user, holding only events of its key's
    partition; a partition has several messages only when the next one's first event would not
    have fitted in the previous one (MAX_EVENTS_MESSAGE_BYTES)."""
    problems: list[str] = []
    by_partition: dict[int, list[tuple[int, list[Event]]]] = defaultdict(list)
    for index, (t, key, value) in enumerate(records):
        if t != topic:
            continue
        message = _topic_message.validate_json(value)
        if not isinstance(message, EventsMessage):
            problems.append(f"record {index} is a version {message.v} {message.kind} message")
            continue
        if not message.events:
            problems.append(f"record {index} holds no event")
            continue
        if key != message.events[0].profile_key.encode():
            problems.append(f"record {index} is keyed {key!r}, not by its first event's user")
        partition = partition_of(key, partitions)
        strays = [
            e.message_id
            for e in message.events
            if partition_of(e.profile_key, partitions) != partition
        ]
        if strays:
            problems.append(f"record {index} holds events of other partitions: {strays[:5]}")
        by_partition[partition].append((len(value), message.events))
    for partition, messages in by_partition.items():
        for (size, _), (_, following) in itertools.pairwise(messages):
            if size + len(following[0].model_dump_json()) + 1 <= MAX_EVENTS_MESSAGE_BYTES:
                problems.append(f"partition {partition} has a message its next one fitted in")
    return problems
