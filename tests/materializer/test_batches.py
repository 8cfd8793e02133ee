"""The buffer between Faust's consumer and the materializer: batch sizes, waiting, back-pressure
and clearing (unit tests; the real consumer path is covered by tests/e2e)."""

from __future__ import annotations

import asyncio
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from infra.settings import Settings
from infra.topic_ids import TopicIds
from materializer.agents import create_materializer_app, register_materializer
from materializer.app import create_faust_app
from materializer.batches import BatchBuffer, BatchConductor, BatchConsumer
from materializer.pipeline import BatchProcessor


def message(offset: int) -> Any:
    return f"m{offset}"  # the buffer never looks inside a message


async def test_a_full_batch_is_taken_at_once() -> None:
    buffer = BatchBuffer(capacity=10)
    for offset in range(7):
        await buffer.put(message(offset))
    started = time.monotonic()
    taken = await buffer.take(5, within_s=30)
    assert taken == [message(o) for o in range(5)]
    assert time.monotonic() - started < 10  # did not wait for `within_s`
    assert await buffer.take(5, within_s=0.01) == [message(5), message(6)]
    assert len(buffer) == 0


async def test_a_short_batch_waits_for_more_until_within_s() -> None:
    buffer = BatchBuffer(capacity=10)
    await buffer.put(message(0))

    async def later() -> None:
        await asyncio.sleep(0.05)
        await buffer.put(message(1))

    task = asyncio.create_task(later())
    taken = await buffer.take(5, within_s=0.5)
    await task
    assert taken == [message(0), message(1)]


async def test_filling_up_while_waiting_returns_the_batch_early() -> None:
    buffer = BatchBuffer(capacity=10)
    await buffer.put(message(0))

    async def fill() -> None:
        for offset in range(1, 4):
            await asyncio.sleep(0.01)
            await buffer.put(message(offset))

    task = asyncio.create_task(fill())
    started = time.monotonic()
    taken = await buffer.take(4, within_s=30)
    await task
    assert taken == [message(o) for o in range(4)]
    assert time.monotonic() - started < 10


async def test_take_waits_for_the_first_message() -> None:
    buffer = BatchBuffer(capacity=10)
    waiting = asyncio.create_task(buffer.take(5, within_s=0.01))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await buffer.put(message(0))
    assert await asyncio.wait_for(waiting, 5) == [message(0)]


async def test_a_full_buffer_holds_the_producer_until_a_take() -> None:
    buffer = BatchBuffer(capacity=3)
    for offset in range(3):
        await buffer.put(message(offset))
    blocked = asyncio.create_task(buffer.put(message(3)))
    await asyncio.sleep(0.05)
    assert not blocked.done() and len(buffer) == 3
    assert await buffer.take(2, within_s=0.01) == [message(0), message(1)]
    await asyncio.wait_for(blocked, 5)
    assert await buffer.take(5, within_s=0.01) == [message(2), message(3)]


@pytest.mark.parametrize("blocked_producer", [False, True])
async def test_clear_drops_everything_and_releases_a_blocked_producer(
    blocked_producer: bool,
) -> None:
    buffer = BatchBuffer(capacity=2)
    await buffer.put(message(0))
    await buffer.put(message(1))
    blocked = asyncio.create_task(buffer.put(message(2))) if blocked_producer else None
    await asyncio.sleep(0.01)
    buffer.clear()
    if blocked is not None:
        await asyncio.wait_for(blocked, 5)  # appended after the clear: a stale message
        assert await buffer.take(5, within_s=0.01) == [message(2)]
    assert len(buffer) == 0
    waiting = asyncio.create_task(buffer.take(5, within_s=0.01))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # nothing left to take
    waiting.cancel()


async def no_broker() -> None:
    raise AssertionError("these tests ask the broker nothing")


def test_the_worker_app_uses_the_batch_path() -> None:
    """The e2e and fault tests run the worker built this way; this pins that it is."""
    settings = Settings.from_environment({})
    app = create_materializer_app(settings)
    register_materializer(
        app,
        settings,
        BatchProcessor(None, None),  # type: ignore[arg-type]
        TopicIds(no_broker),
    )
    assert isinstance(app.topics, BatchConductor)
    assert settings.events_topic in app.topics.batch_buffers
    assert isinstance(app.consumer, BatchConsumer)


def test_registering_on_a_plain_faust_app_is_refused() -> None:
    settings = Settings.from_environment({})
    with pytest.raises(TypeError, match="create_materializer_app"):
        register_materializer(
            create_faust_app(settings),
            settings,
            BatchProcessor(None, None),  # type: ignore[arg-type]
            TopicIds(no_broker),
        )


async def test_an_assignment_makes_the_worker_ask_the_topic_ids_again() -> None:
    settings = Settings.from_environment({})
    app = create_materializer_app(settings)
    asked: list[int] = []

    class Client:
        def get_random_node(self) -> int:
            return 1

        async def send(self, _node: int, request: Any) -> Any:
            asked.append(1)
            topics = [(0, t, uuid.UUID(int=len(asked)), False, [], 0, {}) for t in request._topics]
            return SimpleNamespace(topics=topics)

    async def client() -> Client:
        return Client()

    topic_ids = TopicIds(client)
    register_materializer(app, settings, BatchProcessor(None, None), topic_ids)  # type: ignore[arg-type]
    first = await topic_ids.of([settings.events_topic])
    assert await topic_ids.of([settings.events_topic]) == first and len(asked) == 1
    await app.on_partitions_assigned.send(assigned=set())
    assert await topic_ids.of([settings.events_topic]) != first and len(asked) == 2
