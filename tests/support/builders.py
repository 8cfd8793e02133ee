"""Builders the materializer's unit tests share: events and their positions in the log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from materializer.decode import WireEvent
from materializer.processing import Consumed, MessageMeta
from schemas.events import Event

TS = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
TS_MS = 1772600767890
RECEIVED = datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC)
# The id of the topic's current life, as the broker would give it (infra.topic_ids).
TOPIC_ID = "0190a1b2c3d4e5f60718293a4b5c6d7e"


def as_wire(event: Event) -> WireEvent:
    """The event as the worker decodes it from ingest's JSON."""
    return msgspec.json.decode(event.model_dump_json(), type=WireEvent)


def make_event(**fields: Any) -> WireEvent:
    """An event as the worker reads it (built and validated as ingest's `Event` first)."""
    return as_wire(make_model_event(**fields))


def make_model_event(**fields: Any) -> Event:
    values: dict[str, Any] = {
        "message_id": "m1",
        "type": "track",
        "user_id": "u1",
        "event": "Clicked",
        "timestamp": TS,
        "received_at": RECEIVED,
        "source": "web",
    }
    values.update(fields)
    return Event(**values)


def meta(
    offset: int = 0, partition: int = 0, topic: str = "events", topic_id: str = TOPIC_ID
) -> MessageMeta:
    return MessageMeta(topic=topic, partition=partition, offset=offset, topic_id=topic_id)


def consumed(message_id: str, offset: int, partition: int = 0, **fields: Any) -> Consumed:
    return Consumed(make_event(message_id=message_id, **fields), meta(offset, partition))
