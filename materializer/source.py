"""Where the materializer's batches come from, and how their offsets go back: the seam between the
worker loop and the consumer (today `faust_source.FaustBatchSource`, Faust's consumer group).

As in arroyo, offsets travel with the data: a `Batch` carries what it may commit, and the worker
commits it only after both stores have its events, so a commit never passes unwritten data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from materializer.processing import RawMessage

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Batch:
    """Messages taken together, each stamped with its topic's id (`MessageMeta.topic_id`)."""

    messages: Sequence[RawMessage]
    # The source's own record of the batch, for its `commit` (Faust: the Messages to acknowledge).
    receipt: object = field(default=None, repr=False, compare=False)

    @cached_property
    def offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset a commit of this batch stores: one past its last message
        (Kafka's convention: the next offset to read). Computed when asked, not per batch."""
        offsets: dict[TopicPartition, int] = {}
        for message in self.messages:
            meta = message.meta
            key = (meta.topic, meta.partition)
            offsets[key] = max(offsets.get(key, 0), meta.offset + 1)
        return offsets


class BatchSource(Protocol):
    def batches(self) -> AsyncIterator[Batch]:
        """Batches, in offset order per partition, never empty. What is not committed is read
        again after a restart or a rebalance, by whichever worker then owns the partition."""
        ...

    async def commit(self, batch: Batch) -> None:
        """The batch is written: its offsets may be committed."""
        ...
