"""BatchProcessor's failure handling, with in-memory fakes for the stores (unit level): an event
no store accepts is isolated and dead-lettered; an unreachable store is waited for, never
given up on. The real stores are exercised in test_pipeline_integration.py and tests/e2e."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from materializer.pipeline import BatchProcessor
from materializer.processing import (
    BatchPlan,
    Consumed,
    EventColumns,
    MessageMeta,
    OffsetRange,
    RawMessage,
)
from schemas.events import Event
from schemas.messages import DeadLetterMessage, EventMessage, events_message
from tests.support.builders import TOPIC_ID, make_model_event


class FakeProfiles:
    def __init__(self) -> None:
        self.applied: dict[str, list[str]] = {}

    async def lookup(
        self, consumed: Sequence[Consumed]
    ) -> tuple[set[str], dict[tuple[str, int, str], OffsetRange], dict[str, Any]]:
        done = {m for ids in self.applied.values() for m in ids}
        return {c.event.message_id for c in consumed} & done, {}, {}

    async def mark_in_flight(self, plan: BatchPlan) -> None:
        pass

    async def apply(self, plan: BatchPlan) -> None:
        for user, changes in plan.changes_by_user.items():
            self.applied.setdefault(user, []).extend(c["m"] for c in changes)

    async def stored_ids(self, user: str) -> list[str]:
        return [user]


class FakeEvents:
    def __init__(self, refuse: str | None = None, unreachable_times: int = 0) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.inserts: list[int] = []  # the size of each INSERT that went through
        self.refuse = refuse
        self.unreachable_times = unreachable_times

    async def stored(
        self, user_ids: Sequence[str], message_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        return {}

    async def insert(self, columns: EventColumns) -> None:
        rows = columns.rows()
        if self.unreachable_times:
            self.unreachable_times -= 1
            raise ConnectionRefusedError("clickhouse down")
        if any(row[0] == self.refuse for row in rows):
            raise ValueError("value out of range")  # a data error: retrying will not help
        self.rows.extend(rows)
        self.inserts.append(len(rows))

    async def delete_users(self, user_ids: Sequence[str]) -> None:
        self.rows = [row for row in self.rows if row[1] not in user_ids]


def messages(count: int) -> list[RawMessage]:
    out = []
    for i in range(count):
        event = Event(
            message_id=f"m{i}",
            type="track",
            user_id=f"u{i % 3}",
            event="E",
            timestamp=datetime(2026, 11, 1, tzinfo=UTC),
            received_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
        value = EventMessage(event=event).model_dump_json().encode()
        key = event.profile_key.encode()
        out.append(RawMessage(key, value, MessageMeta("events", 0, i, TOPIC_ID)))
    return out


def v2_messages(sizes: list[int]) -> list[RawMessage]:
    """Version 2 messages of these many events each, ids m0, m1, ... across them."""
    out, n = [], 0
    for offset, size in enumerate(sizes):
        events = [make_model_event(message_id=f"m{n + i}", user_id="u1") for i in range(size)]
        n += size
        value = events_message([e.model_dump_json().encode() for e in events])
        out.append(RawMessage(b"u1", value, MessageMeta("events", 0, offset, TOPIC_ID)))
    return out


def processor(
    events: FakeEvents, profiles: FakeProfiles, max_events: int = 5000
) -> tuple[BatchProcessor, list[DeadLetterMessage]]:
    letters: list[DeadLetterMessage] = []

    async def dead_letter(letter: DeadLetterMessage) -> None:
        letters.append(letter)

    return (
        BatchProcessor(profiles, events, dead_letter, retry_max_s=0.001, max_events=max_events),
        letters,
    )


async def test_an_event_no_store_accepts_is_isolated_and_dead_lettered() -> None:
    events, profiles = FakeEvents(refuse="m5"), FakeProfiles()
    batch, letters = processor(events, profiles)
    result = await batch.process(messages(8))
    assert (result.consumed, result.inserted, result.dead_lettered) == (7, 7, 1)
    assert sorted(row[0] for row in events.rows) == [f"m{i}" for i in range(8) if i != 5]
    assert sorted(m for ids in profiles.applied.values() for m in ids) == sorted(
        row[0] for row in events.rows
    )
    [letter] = letters
    assert letter.offset == 5 and "ValueError" in letter.reason
    assert (
        EventMessage.model_validate_json(base64.b64decode(letter.value_b64)).event.message_id
        == "m5"
    )


async def test_an_unreachable_store_is_waited_for_not_dead_lettered() -> None:
    events, profiles = FakeEvents(unreachable_times=6), FakeProfiles()
    batch, letters = processor(events, profiles)
    result = await batch.process(messages(4))
    assert (result.inserted, result.dead_lettered) == (4, 0)
    assert letters == []
    assert events.unreachable_times == 0


async def test_a_refused_event_of_a_version_2_message_is_dead_lettered_alone() -> None:
    events, profiles = FakeEvents(refuse="m3"), FakeProfiles()
    batch, letters = processor(events, profiles)
    result = await batch.process(v2_messages([3, 3]))
    assert (result.consumed, result.inserted, result.dead_lettered) == (5, 5, 1)
    assert sorted(row[0] for row in events.rows) == ["m0", "m1", "m2", "m4", "m5"]
    [letter] = letters
    assert letter.offset == 1
    # the letter holds the one event, as a version 1 message
    kept = EventMessage.model_validate_json(base64.b64decode(letter.value_b64)).event
    assert kept == make_model_event(message_id="m3", user_id="u1")


async def test_a_batch_is_written_in_chunks_of_whole_messages() -> None:
    events, profiles = FakeEvents(), FakeProfiles()
    batch, letters = processor(events, profiles, max_events=5)
    result = await batch.process(v2_messages([2, 2, 2, 7, 1]))
    assert (result.inserted, letters) == (14, [])
    assert events.inserts == [4, 2, 7, 1]
    assert [row[0] for row in events.rows] == [f"m{n}" for n in range(14)]
    assert profiles.applied["u1"] == [f"m{n}" for n in range(14)]


def test_isolation_halves_between_messages_and_splits_a_message_only_when_alone() -> None:
    from materializer.decode import decode_batch
    from materializer.pipeline import halving_point

    consumed, _ = decode_batch(v2_messages([3, 1, 2]))  # offsets 0 0 0 1 2 2
    assert halving_point(consumed) == (3, False)  # the boundary nearest the middle
    one, _ = decode_batch(v2_messages([4]))
    assert halving_point(one) == (2, True)  # one message: its halves share its offset
