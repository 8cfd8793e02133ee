"""The materializer's writers: what `BatchProcessor` needs of each store, one Protocol per seam.
Redis profiles (`redis.RedisProfileSink`) and ClickHouse events (`clickhouse.ClickHouseEventSink`)
implement them; tests pass in-memory fakes; the dead-letter writer comes from the batch source
(it owns the dead-letter topic)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from materializer.processing import BatchPlan, Consumed, EventColumns, OffsetRange, PartitionKey
from schemas.messages import DeadLetterMessage
from schemas.properties import PropertyDefinition


class ProfileStore(Protocol):
    """Profiles and the marks that make a replayed batch idempotent."""

    async def lookup(
        self, consumed: Sequence[Consumed]
    ) -> tuple[set[str], dict[PartitionKey, OffsetRange], dict[str, PropertyDefinition]]:
        """(messageIds already applied, in-flight offset range per partition, the custom
        property definitions)."""
        ...

    async def mark_in_flight(self, plan: BatchPlan) -> None:
        """Record the offsets about to be inserted, before the insert."""
        ...

    async def apply(self, plan: BatchPlan) -> None:
        """Apply the profile changes and move the applied/in-flight marks, in one step."""
        ...

    async def stored_ids(self, user: str) -> list[str]:
        """Every id the events of `user` are stored under: its own and the anonymous ids merged
        into it (what a deletion of `user` removes)."""
        ...


class EventStore(Protocol):
    """The append-only events table."""

    async def stored(
        self, user_ids: Sequence[str], message_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """Which of these messageIds are already stored, with the (Kafka partition, offset)
        their row came from."""
        ...

    async def insert(self, columns: EventColumns) -> None: ...

    async def delete_users(self, user_ids: Sequence[str]) -> None:
        """Delete every event stored under these ids, returning once it is done."""
        ...


class DeadLetterWriter(Protocol):
    """Produces a dead letter, returning once the broker has acknowledged it."""

    async def __call__(self, letter: DeadLetterMessage, /) -> None: ...
