"""schemas/messages.py: the version 2 message of several events (EventsMessage), built by hand
from events encoded one by one (events_message, events_messages), and the events topic's union
of kinds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.events import Event
from schemas.messages import (
    MAX_EVENTS_MESSAGE_BYTES,
    CommandMessage,
    EventMessage,
    EventsMessage,
    EventsTopicMessage,
    events_message,
    events_messages,
)
from tests.support.messages import message_events, message_items

AT = datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
TOPIC: TypeAdapter[Any] = TypeAdapter(EventsTopicMessage)


def event(n: int, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "message_id": f"m{n}",
        "type": "track",
        "user_id": "ada",
        "event": "Played",
        "timestamp": AT,
        "received_at": AT,
        "properties": {"n": n},
    }
    return Event(**{**values, **fields})


def encoded(*events: Event) -> list[bytes]:
    return [e.model_dump_json().encode() for e in events]


def test_events_message_is_the_models_own_json() -> None:
    events = [event(0), event(1, type="identify", event=None, traits={"plan": "pro"})]
    built = events_message(encoded(*events))
    assert built == EventsMessage(events=events).model_dump_json().encode()
    assert EventsMessage.model_validate_json(built).events == events
    assert orjson.loads(built)["v"] == 2


def test_the_topics_union_tells_the_kinds_apart() -> None:
    one, two = event(0), event(1)
    assert isinstance(TOPIC.validate_json(events_message(encoded(one, two))), EventsMessage)
    assert isinstance(TOPIC.validate_json(EventMessage(event=one).model_dump_json()), EventMessage)
    assert message_events(events_message(encoded(one, two))) == [one, two]
    assert message_events(EventMessage(event=one).model_dump_json().encode()) == [one]
    command = {"command_id": "c", "op": "delete", "user_id": "ada", "issued_at": AT}
    value = orjson.dumps({"v": 1, "kind": "command", "command": command})
    [item] = message_items(value)
    assert item == CommandMessage.model_validate_json(value).command


@pytest.mark.parametrize(
    "body",
    [
        {"v": 1, "kind": "events", "events": []},  # a version the kind does not have
        {"v": 2, "kind": "event", "event": {}},
        {"v": 2, "kind": "events"},
    ],
)
def test_a_kind_with_another_version_or_no_events_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TOPIC.validate_json(orjson.dumps(body))


def test_events_messages_of_few_events_is_one_message() -> None:
    events = [event(n) for n in range(5)]
    assert events_messages(encoded(*events)) == [events_message(encoded(*events))]
    assert events_messages([]) == []


def test_events_messages_stay_under_the_limit_in_order_without_splitting_an_event() -> None:
    big = "x" * 20_000
    events = [event(n, properties={"blob": big, "n": n}) for n in range(60)]  # about 1.2 MB
    messages = events_messages(encoded(*events))
    assert len(messages) == 3
    assert all(len(m) <= MAX_EVENTS_MESSAGE_BYTES for m in messages)
    assert [e for m in messages for e in EventsMessage.model_validate_json(m).events] == events
    # each message but the last is as full as it can be: the next event would not have fitted
    for message, following in itertools.pairwise(messages):
        first_of_next = EventsMessage.model_validate_json(following).events[0]
        assert len(message) + len(first_of_next.model_dump_json()) + 1 > MAX_EVENTS_MESSAGE_BYTES


def test_an_event_over_the_limit_is_a_message_of_its_own() -> None:
    huge = event(1, properties={"blob": "x" * MAX_EVENTS_MESSAGE_BYTES})
    messages = events_messages(encoded(event(0), huge, event(2)))
    assert [[e.message_id for e in message_events(m)] for m in messages] == [
        ["m0"],
        ["m1"],
        ["m2"],
    ]
