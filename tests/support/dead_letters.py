"""What the export and dead-letter tests do to a running stack (run the `profilestream` command
against it, produce raw poison or repaired messages straight to the events topic, read the
dead letters of one key through the query API), and the unit tests' dead letters and a
dead-letter topic that holds them without a broker."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from query.dead_letters import (
    DeadLetterTopic,
    LetterId,
    StoredLetter,
    newest_first,
    stored_letter,
    without_value,
)
from schemas.events import Event
from schemas.messages import DeadLetterMessage, EventMessage
from tests.support.stack import RunningStack


def run_profilestream(
    stack: RunningStack, *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """`python -m profilestream ARGS...` with the stack's settings, as an operator runs it;
    stdin is not a terminal (empty unless given)."""
    return subprocess.run(
        [sys.executable, "-m", "profilestream", *args],
        env={**os.environ, **stack.env},
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def event_message(user: str, message_id: str, event: str, **changes: Any) -> dict[str, Any]:
    """A version 1 message of one track event (as JSON-ready data), with `changes` made to the
    event's fields afterwards (e.g. `type="not-a-type"` for a poison message)."""
    now = datetime.now(UTC)
    good = Event(
        message_id=message_id,
        type="track",
        user_id=user,
        event=event,
        properties={"fixed": True},
        timestamp=now,
        received_at=now,
        source="test-source",
    )
    message: dict[str, Any] = orjson.loads(EventMessage(event=good).model_dump_json())
    message["event"].update(changes)
    return message


def produce_raw(stack: RunningStack, key: str, value: bytes) -> None:
    """One record to the events topic, acknowledged, bypassing ingest's checks."""

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=stack.settings.kafka_bootstrap, acks="all", enable_idempotence=False
        )
        await producer.start()
        try:
            await producer.send_and_wait(stack.settings.events_topic, value, key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(produce())


def letters_of(query: httpx.Client, key: str) -> list[dict[str, Any]]:
    """The dead letters (the API's list, newest first) whose original had this key."""
    response = query.get("/v1/dead-letters", params={"limit": 1000})
    response.raise_for_status()
    return [letter for letter in response.json()["letters"] if letter["key"] == key]


def letter(
    letter_id: str,
    value: bytes,
    *,
    key: str | None = "user-1",
    reason: str = "validation error: Expected `str`, got `int` - at `$.event.type`",
    topic: str = "ps.events",
    at: datetime = datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
) -> StoredLetter:
    """A record of the dead-letter topic, as DeadLetterTopic reads it."""
    partition, offset = (int(part) for part in letter_id.split("-"))
    dead = DeadLetterMessage(
        topic=topic,
        partition=3,
        offset=offset + 100,
        reason=reason,
        key=key,
        value_b64=base64.b64encode(value).decode(),
    )
    return stored_letter(
        LetterId(partition, offset), int(at.timestamp() * 1000), dead.model_dump_json().encode()
    )


def unreadable_letter(letter_id: str) -> StoredLetter:
    partition, offset = (int(part) for part in letter_id.split("-"))
    return stored_letter(LetterId(partition, offset), 0, b"not a dead letter")


def fake_topic(letters: list[StoredLetter]) -> type[DeadLetterTopic]:
    """A DeadLetterTopic class (to patch into query.routes.dead_letters) that holds `letters`
    instead of reading a broker."""

    class FakeDeadLetterTopic(DeadLetterTopic):
        def __init__(self, settings: Settings) -> None:
            self.ranges = {}

        async def __aenter__(self) -> FakeDeadLetterTopic:
            return self

        async def __aexit__(self, *_: object) -> None:
            return None

        async def newest(self, limit: int) -> list[StoredLetter]:
            return newest_first(without_value(s) for s in letters)[:limit]

        async def letter(self, letter_id: LetterId) -> StoredLetter | None:
            return next((s for s in letters if s.id == letter_id), None)

        async def every_letter(self) -> AsyncGenerator[StoredLetter, None]:
            for stored in letters:
                yield stored

    return FakeDeadLetterTopic
