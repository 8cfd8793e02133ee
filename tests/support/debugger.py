"""Helpers for the live debugger's tests: the messages its reader decodes, a consumer that
plays them without Kafka, and polling the query API's debugger endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import TopicPartition

from schemas.events import Event
from schemas.messages import (
    CommandMessage,
    EventMessage,
    FieldError,
    RejectionMessage,
    events_message,
)
from tests.support.polling import eventually

AT = datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC)


def event(**fields: Any) -> Event:
    values: dict[str, Any] = {
        "message_id": "m1",
        "type": "track",
        "user_id": "u1",
        "event": "Clicked",
        "timestamp": AT,
        "received_at": AT,
        "source": "web",
    }
    values.update(fields)
    return Event.model_validate(values)


def v2_message(*events: Event) -> bytes:
    return events_message([e.model_dump_json().encode() for e in events])


def v1_message(one: Event) -> bytes:
    return EventMessage(event=one).model_dump_json().encode()


def command_message(command: dict[str, Any]) -> bytes:
    return CommandMessage.model_validate({"command": command}).model_dump_json().encode()


def rejection(body: str | None = None, truncated: bool = False, **fields: Any) -> bytes:
    values: dict[str, Any] = {
        "source": "web",
        "endpoint": "batch",
        "index": 0,
        "message_id": "bad-1",
        "errors": [FieldError(field="event", reason="event is required for track")],
        "received_at": AT,
        "body": body,
        "body_truncated": truncated,
    }
    values.update(fields)
    return RejectionMessage(**values).model_dump_json().encode()


@dataclass
class Delivered:
    value: bytes


@dataclass
class FakeConsumer:
    """Plays `queued` (topic, value) pairs to the reader, a batch per `getmany`; records what
    the reader asked of it."""

    partitions: dict[str, set[int]]
    queued: list[tuple[str, bytes]] = field(default_factory=list)
    fail_on_start: bool = False
    started: bool = False
    stopped: bool = False
    assigned: list[TopicPartition] = field(default_factory=list)
    sought_to_end: list[TopicPartition] = field(default_factory=list)

    async def start(self) -> None:
        if self.fail_on_start:
            raise ConnectionError("no broker")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def topics(self) -> set[str]:
        return set(self.partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        self.sought_to_end = list(partitions)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Delivered]]:
        await asyncio.sleep(0.001)
        batch: dict[TopicPartition, list[Delivered]] = {}
        while self.queued:
            topic, value = self.queued.pop(0)
            batch.setdefault(TopicPartition(topic, 0), []).append(Delivered(value))
        return batch


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def debugger_page(query: httpx.Client, **params: Any) -> dict[str, Any]:
    response = query.get("/v1/debugger/events", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def wait_until_live(query: httpx.Client) -> int:
    """Starts the debugger's reader (if it is not running) and waits until it reads; returns
    the `next` to continue from."""
    page = eventually(lambda: (p := debugger_page(query))["live"] and p, timeout=30)
    return int(page["next"])


def records_until(
    query: httpx.Client,
    after: int,
    enough: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30.0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """Polls the debugger (as the dashboard does) from `after`, with `filters`, collecting the
    records until `enough` of them came."""
    seen: list[dict[str, Any]] = []
    position = after

    def probe() -> list[dict[str, Any]] | None:
        nonlocal position
        page = debugger_page(query, after=position, **filters)
        seen.extend(page["events"])
        position = page["next"]
        return seen if enough(seen) else None

    return eventually(probe, timeout=timeout, interval=0.3)
