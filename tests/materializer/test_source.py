"""materializer/source.py's contract and the worker loop over it (materializer.worker.materialize),
with an in-memory BatchSource: a batch is committed only after it is written, in order, and a
batch whose processing fails is processed again, never skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from materializer.processing import MessageMeta, RawMessage
from materializer.source import Batch, BatchSource
from materializer.worker import materialize
from tests.support.builders import TOPIC_ID


def raw(topic: str, partition: int, offset: int) -> RawMessage:
    return RawMessage(b"u", b"{}", MessageMeta(topic, partition, offset, TOPIC_ID))


class ListSource:
    def __init__(self, batches: list[Batch], log: list[str]) -> None:
        self._batches = batches
        self.log = log

    async def batches(self) -> AsyncIterator[Batch]:
        for batch in self._batches:
            yield batch

    async def commit(self, batch: Batch) -> None:
        self.log.append(f"commit {batch.offsets}")


def test_a_batch_commits_one_past_its_last_offset_per_partition() -> None:
    batch = Batch([raw("a", 0, 7), raw("a", 1, 3), raw("a", 0, 8), raw("b", 0, 0)])
    assert batch.offsets == {("a", 0): 9, ("a", 1): 4, ("b", 0): 1}


async def test_each_batch_is_committed_after_it_is_written() -> None:
    log: list[str] = []
    source: BatchSource = ListSource(
        [Batch([raw("a", 0, 0), raw("a", 0, 1)]), Batch([raw("a", 0, 2)])], log
    )

    async def process(messages: Sequence[RawMessage]) -> None:
        log.append(f"write {[m.meta.offset for m in messages]}")

    await materialize(source, process)
    assert log == [
        "write [0, 1]",
        "commit {('a', 0): 2}",
        "write [2]",
        "commit {('a', 0): 3}",
    ]


async def test_a_failing_batch_is_retried_not_skipped(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    source = ListSource([Batch([raw("a", 0, 0)]), Batch([raw("a", 0, 1)])], log)
    failures = [RuntimeError("a bug")]

    async def process(messages: Sequence[RawMessage]) -> None:
        if failures:
            raise failures.pop()
        log.append(f"write {[m.meta.offset for m in messages]}")

    await materialize(source, process)
    assert log == ["write [0]", "commit {('a', 0): 1}", "write [1]", "commit {('a', 0): 2}"]
    assert "batch processing failed (RuntimeError)" in caplog.text
