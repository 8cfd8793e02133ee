"""materializer/faust_source.py: the buffer between Faust's consumer and the worker (batch sizes,
waiting, back-pressure, clearing), how the source is wired into the Faust app (unit tests; the
real consumer path is covered by tests/e2e), and the canary for a faust-streaming upgrade: the
private parts of Faust the module relies on still exist and the upstream code it copied is
unchanged."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import time
import uuid
from types import SimpleNamespace
from typing import Any

import aiokafka
import faust
import pytest
from faust.transport import consumer as faust_consumer
from faust.transport.conductor import Conductor
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message

from infra.settings import Settings
from infra.topic_ids import TopicIds
from materializer.faust_source import (
    FAUST_VERIFIED,
    FETCH_MAX_WAIT_MS,
    BatchBuffer,
    BatchConductor,
    BatchConsumer,
    FaustBatchSource,
    ShortWaitConsumerThread,
    create_faust_app,
    create_materializer_app,
)

# --- the canary: what a faust-streaming upgrade must not change silently -----------------------

RECHECK = (
    "materializer/faust_source.py overrides private parts of faust-streaming (checked against "
    "{verified}). After an upgrade, compare the upstream code named here with our copy "
    "(BatchConsumer, ShortWaitConsumerThread, BatchConductor), port the upstream changes, run "
    "tests/e2e (test_faults, test_broker_restart, test_spine) and `make bench`, then update "
    "FAUST_VERIFIED and the hashes in this test."
)

# sha256 of `inspect.getsource` of the upstream methods faust_source.py copies
COPIED_UPSTREAM: dict[tuple[type, str], str] = {
    # BatchConsumer._drain_messages is this method, changed as faust_source's docstring says
    (faust_consumer.Consumer, "_drain_messages"): (
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
    ),
    # BatchConsumer._new_consumer_thread is this method with our thread class
    (faust_aiokafka.Consumer, "_new_consumer_thread"): (
        "0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9"
    ),
}

# The private attributes and methods faust_source.py uses, by the object that has them.
CONSUMER_INTERNALS = [
    "_read_offset",
    "_add_gap",
    "_n_acked",
    "_commit_every",
    "_stopped",
    "_thread",
    "callback",
    "commit",
    "track_message",
    "ack",
    "suspend_flow",
    "diag",
    "getmany",
    "should_stop",
    "consumer_stopped_errors",
    "wait_first",
    "sleep",
]
APP_INTERNALS = ["consumer_generation_id", "on_partitions_assigned", "flow_control"]
FLOW_CONTROL_INTERNALS = ["manage_queue", "acquire", "is_active"]


def recheck() -> str:
    return RECHECK.format(verified=FAUST_VERIFIED)


def test_faust_is_the_release_faust_source_was_checked_against() -> None:
    assert faust.__version__ == FAUST_VERIFIED, (
        f"faust-streaming is {faust.__version__}, not {FAUST_VERIFIED}. {recheck()}"
    )


@pytest.mark.parametrize(
    ("owner", "name"), list(COPIED_UPSTREAM), ids=lambda v: getattr(v, "__qualname__", v)
)
def test_the_upstream_code_we_copied_is_unchanged(owner: type, name: str) -> None:
    source = inspect.getsource(getattr(owner, name))
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == COPIED_UPSTREAM[owner, name], (
        f"{owner.__module__}.{owner.__qualname__}.{name} changed upstream. {recheck()}"
    )


def test_the_faust_internals_we_use_exist() -> None:
    app = create_materializer_app(Settings.from_environment({}))
    missing = [
        *(f"Consumer.{a}" for a in CONSUMER_INTERNALS if not hasattr(app.consumer, a)),
        *(f"App.{a}" for a in APP_INTERNALS if not hasattr(app, a)),
        *(f"FlowControl.{a}" for a in FLOW_CONTROL_INTERNALS if not hasattr(app.flow_control, a)),
        *(f"Message.{a}" for a in ("tracked", "generation_id") if a not in Message.__slots__),
        *(
            f"Conductor.{a}"
            for a in ("_build_handler", "acks_enabled_for", "add")
            if not hasattr(Conductor, a)
        ),
        *(
            f"AIOKafkaConsumerThread.{a}"
            for a in ("_create_worker_consumer",)
            if not hasattr(faust_aiokafka.AIOKafkaConsumerThread, a)
        ),
    ]
    assert not missing, f"gone from faust-streaming: {missing}. {recheck()}"
    assert inspect.iscoroutinefunction(faust_consumer.Consumer._drain_messages), recheck()


@pytest.mark.parametrize(
    ("method", "line"),
    [
        # FaustBatchSource.batches drops messages of an earlier generation: it relies on each
        # message being stamped with the generation it was fetched in ...
        (faust_aiokafka.Consumer._to_message, "generation_id=self.app.consumer_generation_id"),
        # ... and on the app's generation being the group's newest, set on each assignment.
        (
            faust_aiokafka.ConsumerRebalanceListener.on_partitions_assigned,
            "app.consumer_generation_id = generation",
        ),
    ],
    ids=["message-stamped", "assignment-sets-generation"],
)
def test_faust_still_tracks_the_consumer_generation(method: Any, line: str) -> None:
    assert line in inspect.getsource(method), (
        f"{method.__qualname__} no longer has `{line}`: the per-generation drop in "
        f"FaustBatchSource.batches may keep stale messages. {recheck()}"
    )


async def test_only_the_materializer_app_gets_the_short_fetch_wait() -> None:
    """Set on the aiokafka consumer our thread creates, before aiokafka's start() hands it to
    the fetcher; a plain Faust app keeps Faust's wait (no process-wide patch)."""
    settings = Settings.from_environment({})
    app = create_materializer_app(settings)
    assert isinstance(app.consumer._thread, ShortWaitConsumerThread)  # type: ignore[attr-defined]
    ours = app.consumer._thread._create_worker_consumer(app.transport)  # type: ignore[attr-defined]
    plain_app = create_faust_app(settings)
    plain = plain_app.consumer._thread._create_worker_consumer(plain_app.transport)  # type: ignore[attr-defined]
    try:
        assert ours._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
        assert plain._fetch_max_wait_ms != FETCH_MAX_WAIT_MS
    finally:
        await ours.stop()
        await plain.stop()
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.start
    ), f"aiokafka {aiokafka.__version__} no longer reads _fetch_max_wait_ms in start(). {recheck()}"


# --- the buffer ----------------------------------------------------------------------------------


def message(offset: int) -> Any:
    return f"m{offset}"  # the buffer never looks inside a message


async def settle() -> None:
    """Let every task that can run do so until it waits (no timers: asyncio only)."""
    for _ in range(10):
        await asyncio.sleep(0)


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
    taking = asyncio.create_task(buffer.take(5, within_s=0.5))
    await settle()
    assert not taking.done()  # waiting for more
    await buffer.put(message(1))
    assert await taking == [message(0), message(1)]


async def test_filling_up_while_waiting_returns_the_batch_early() -> None:
    buffer = BatchBuffer(capacity=10)
    await buffer.put(message(0))
    started = time.monotonic()
    taking = asyncio.create_task(buffer.take(4, within_s=30))
    await settle()
    assert not taking.done()
    for offset in range(1, 4):
        await buffer.put(message(offset))
    taken = await taking
    assert taken == [message(o) for o in range(4)]
    assert time.monotonic() - started < 10


async def test_take_waits_for_the_first_message() -> None:
    buffer = BatchBuffer(capacity=10)
    waiting = asyncio.create_task(buffer.take(5, within_s=0.01))
    await settle()
    assert not waiting.done()
    await buffer.put(message(0))
    assert await asyncio.wait_for(waiting, 5) == [message(0)]


async def test_a_full_buffer_holds_the_producer_until_a_take() -> None:
    buffer = BatchBuffer(capacity=3)
    for offset in range(3):
        await buffer.put(message(offset))
    blocked = asyncio.create_task(buffer.put(message(3)))
    await settle()
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
    await settle()
    buffer.clear()
    if blocked is not None:
        await asyncio.wait_for(blocked, 5)  # appended after the clear: a stale message
        assert await buffer.take(5, within_s=0.01) == [message(2)]
    assert len(buffer) == 0
    waiting = asyncio.create_task(buffer.take(5, within_s=0.01))
    await settle()
    assert not waiting.done()  # nothing left to take
    waiting.cancel()


# --- the source in the Faust app -----------------------------------------------------------------


async def no_broker() -> None:
    raise AssertionError("these tests ask the broker nothing")


def test_the_worker_app_uses_the_batch_path() -> None:
    """The e2e and fault tests run the worker built this way; this pins that it is."""
    settings = Settings.from_environment({})
    app = FaustBatchSource(settings, TopicIds(no_broker)).app
    assert isinstance(app.topics, BatchConductor)
    assert settings.events_topic in app.topics.batch_buffers
    assert isinstance(app.consumer, BatchConsumer)


def test_a_plain_faust_app_is_refused() -> None:
    settings = Settings.from_environment({})
    with pytest.raises(TypeError, match="create_materializer_app"):
        FaustBatchSource(settings, TopicIds(no_broker), app=create_faust_app(settings))


def topic_ids_answering(ids: list[uuid.UUID], on_ask: Any = None) -> TopicIds:
    """TopicIds over a fake broker: the n-th question is answered with ids[n]."""
    asked: list[int] = []

    class Client:
        def get_random_node(self) -> int:
            return 1

        async def send(self, _node: int, request: Any) -> Any:
            topic_id = ids[len(asked)]
            asked.append(1)
            if on_ask is not None:
                on_ask()
            topics: list[Any] = [(0, t, topic_id, False, [], 0, {}) for t in request._topics]
            return SimpleNamespace(topics=topics)

    async def client() -> Client:
        return Client()

    return TopicIds(client)


def fetched(topic: str, offset: int, generation: int) -> Message:
    return Message(topic, 0, offset, 0.0, 0, None, b"u", b"v", None, generation_id=generation)


async def test_a_batch_drops_an_earlier_generation_and_carries_topic_ids_and_offsets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_environment({})
    topic = settings.events_topic
    source = FaustBatchSource(settings, topic_ids_answering([uuid.UUID(int=7)]))
    source.app.consumer_generation_id = 2
    for offset, generation in [(0, 1), (1, 2), (2, 2)]:
        await source._buffer.put(fetched(topic, offset, generation))
    batches = source.batches()
    batch = await anext(batches)
    assert [(m.meta.offset, m.meta.topic_id) for m in batch.messages] == [
        (1, uuid.UUID(int=7).hex),
        (2, uuid.UUID(int=7).hex),
    ]
    assert batch.offsets == {(topic, 0): 3}
    acked: list[Message] = []
    monkeypatch.setattr(source.app.consumer, "ack", acked.append)
    await source.commit(batch)
    assert [m.offset for m in acked] == [1, 2]
    await batches.aclose()


async def test_a_batch_whose_generation_ends_while_ids_are_asked_is_dropped() -> None:
    """Assigned anew while the broker was asked: the ids may be another life's."""
    settings = Settings.from_environment({})
    topic = settings.events_topic
    source: FaustBatchSource

    def rebalance() -> None:
        if source.app.consumer_generation_id == 3:
            return  # once
        source.app.consumer_generation_id = 3
        source._topic_ids.forget()  # as on an assignment
        assert source._buffer.offer(fetched(topic, 5, 3))

    source = FaustBatchSource(
        settings, topic_ids_answering([uuid.UUID(int=1), uuid.UUID(int=2)], rebalance)
    )
    source.app.consumer_generation_id = 2
    await source._buffer.put(fetched(topic, 4, 2))
    batches = source.batches()
    batch = await anext(batches)
    assert [(m.meta.offset, m.meta.topic_id) for m in batch.messages] == [(5, uuid.UUID(int=2).hex)]
    await batches.aclose()


async def test_an_assignment_makes_the_worker_ask_the_topic_ids_again() -> None:
    settings = Settings.from_environment({})
    asked: list[int] = []

    class Client:
        def get_random_node(self) -> int:
            return 1

        async def send(self, _node: int, request: Any) -> Any:
            asked.append(1)
            topics: list[Any] = [
                (0, t, uuid.UUID(int=len(asked)), False, [], 0, {}) for t in request._topics
            ]
            return SimpleNamespace(topics=topics)

    async def client() -> Client:
        return Client()

    topic_ids = TopicIds(client)
    app = FaustBatchSource(settings, topic_ids).app
    first = await topic_ids.of([settings.events_topic])
    assert await topic_ids.of([settings.events_topic]) == first and len(asked) == 1
    await app.on_partitions_assigned.send(assigned=set())
    assert await topic_ids.of([settings.events_topic]) != first and len(asked) == 2
