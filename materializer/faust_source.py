"""The materializer's batches from Faust's consumer (`FaustBatchSource`), and every piece of Faust
the project touches beyond its public API: nothing else imports Faust's internals. Checked
against faust-streaming `FAUST_VERIFIED`; tests/materializer/test_faust_source.py fails when an
upgrade changes what is relied on here, and says what to re-check.

Why not an agent's stream: Faust hands every message through a channel queue, an Event, sensors
and a stream iterator before `take_events` groups them again; on this machine that path alone
capped the worker at about 5,600 events/s, more than the writes cost. The worker needs none of
it: it writes batches. So the conductor's handler for the events topic only tracks the message
(Faust still counts it as unacknowledged, so a rebalance waits for it and commits stop before it)
and appends it to a `BatchBuffer`; `FaustBatchSource.batches` takes batches from the buffer and
`commit` acknowledges each message after its batch is written. Group membership, fetching,
pausing during rebalances and the offset commits stay Faust's.

`BatchConsumer` removes the other per-message cost: Faust's drain loop runs each message's
handler as a task raced against a flow suspension (two tasks and an `asyncio.wait` per message,
a quarter of the worker's time). While flow is not suspended it now appends a message of a
batched topic to its buffer itself (what the conductor's handler would do), and awaits other
handlers directly. Waiting on a full buffer ends when the buffer is cleared on resume, so a
rebalance still cannot hang on it. It also shortens the fetch wait (`FETCH_MAX_WAIT_MS`) of the
aiokafka consumer it creates, so only an app built by `create_materializer_app` gets it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, cast

import faust
from faust.exceptions import ConsumerNotStarted
from faust.transport.conductor import Conductor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, Message

from infra.settings import Settings
from infra.topic_ids import TopicId, TopicIds
from materializer import metrics
from materializer.pipeline import retrying
from materializer.processing import MessageMeta, RawMessage
from materializer.source import Batch
from schemas.messages import DeadLetterMessage

log = logging.getLogger(__name__)

FAUST_VERIFIED = "0.15.3"  # the faust-streaming release the overrides below were checked against

# Faust hard-codes fetch_max_wait_ms=1500 for its consumer. When a partition is idle the broker
# holds the fetch that long, and an event arriving meanwhile waits for the next fetch: freshness
# suffered by most of a second. A short wait costs a few more idle fetches and nothing else.
FETCH_MAX_WAIT_MS = 50


def create_faust_app(settings: Settings) -> faust.App:
    """A plain Faust app with the materializer's settings (`create_materializer_app` adds the
    batch path)."""
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_commit_interval=0.5,
        broker_max_poll_records=settings.batch_max_events,
        stream_buffer_maxsize=settings.batch_max_events * 2,
        producer_acks=-1,
    )


def create_materializer_app(settings: Settings) -> faust.App:
    """The Faust app with the batch conductor and consumer in place (they have to be there
    before anything asks for `app.topics` or `app.consumer`)."""
    app = create_faust_app(settings)
    # Faust's own extension points: the transport's classes
    app.transport.Conductor = BatchConductor  # type: ignore[misc]
    app.transport.Consumer = BatchConsumer  # type: ignore[misc]
    return app


def declare_events_topic(app: faust.App, settings: Settings) -> Any:
    """Raw bytes in: decoding is ours (processing.decode_event), so a bad message is a dead
    letter with a reason instead of a Faust deserialization error."""
    return app.topic(
        settings.events_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )


class FaustBatchSource:
    """`source.BatchSource` over Faust's consumer group. A batch's messages are acknowledged by
    `commit`; Faust commits offsets only up to acknowledged messages."""

    def __init__(
        self, settings: Settings, topic_ids: TopicIds, *, app: faust.App | None = None
    ) -> None:
        """`topic_ids` stamps each message with its topic's id (the life of the topic it was
        read from; infra.topic_ids); it is asked again after every assignment."""
        self.app = app if app is not None else create_materializer_app(settings)
        if not isinstance(self.app.topics, BatchConductor):
            raise TypeError("create the app with create_materializer_app")
        self._settings = settings
        self._topic_ids = topic_ids
        self._buffer = BatchBuffer(capacity=settings.batch_max_events * 2)
        self.app.topics.deliver_in_batches(declare_events_topic(self.app, settings), self._buffer)
        self._dead_letter_topic = self.app.topic(
            settings.dead_letter_topic, key_serializer="raw", value_serializer="raw"
        )
        self.app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]

    def _on_assigned(self, _app: Any, *_: Any, signal: Any, **kwargs: Any) -> None:
        assigned = kwargs.get("assigned") or set()
        events_topic = self._settings.events_topic
        mine = sorted(tp.partition for tp in assigned if tp.topic == events_topic)
        log.info("assigned %s partitions %s", events_topic, mine)
        metrics.record_assignment(len(mine), time.time())
        # A topic deleted and created again is assigned anew: ask its id again.
        self._topic_ids.forget()

    def held_partitions(self) -> list[int]:
        """The partitions of the events topic assigned to this worker now (none before the
        consumer has started)."""
        try:
            assignment = self.app.consumer.assignment()
        except ConsumerNotStarted:
            return []
        topic = self._settings.events_topic
        return sorted(tp.partition for tp in assignment if tp.topic == topic)

    async def partition_lag(self) -> dict[int, int]:
        """For each partition of the events topic this worker holds: its log end offset (asked
        from the broker) minus the group's committed offset (what Faust last committed, or read
        at assignment; a partition with none starts at its earliest offset)."""
        consumer = self.app.consumer
        topic = self._settings.events_topic
        held = [TP(topic, partition) for partition in self.held_partitions()]
        if not held:
            return {}
        ends = await consumer.highwaters(*held)
        # Faust's record of its commits: a defaultdict (None: nothing committed, or offset 0)
        committed_by_tp = cast(dict[TP, int | None], consumer._committed_offset)  # type: ignore[attr-defined]
        committed = {tp.partition: committed_by_tp.get(tp) for tp in held}
        unknown = [tp for tp in held if committed[tp.partition] is None]
        earliest = await consumer.earliest_offsets(*unknown) if unknown else {}
        return metrics.lag_by_partition(
            {tp.partition: end for tp, end in ends.items()},
            committed,
            {tp.partition: offset for tp, offset in earliest.items()},
        )

    async def send_dead_letter(self, letter: DeadLetterMessage) -> None:
        """The `DeadLetterWriter` for the processor: returns once the broker has the letter."""
        pending = await self._dead_letter_topic.send(
            key=letter.key.encode() if letter.key else None,
            value=letter.model_dump_json().encode(),
        )
        await pending

    async def batches(self) -> AsyncGenerator[Batch, None]:
        app, settings = self.app, self._settings
        while True:
            taken = await self._buffer.take(settings.batch_max_events, settings.batch_within_s)
            # Messages fetched before a rebalance are dropped unacknowledged: the partition's
            # owner reads them again from the committed offset.
            generation = app.consumer_generation_id
            current = [m for m in taken if m.generation_id == generation]
            if not current:
                continue
            ids = await self._topic_ids_of(current)
            if app.consumer_generation_id != generation:
                # Assigned anew while the broker was asked: the ids may be another life's.
                continue
            yield Batch(_raw_messages(current, ids), receipt=current)

    async def _topic_ids_of(self, messages: list[Message]) -> dict[str, TopicId]:
        """The id of each topic the batch was read from, asked once for the whole batch (so a
        retry never stamps it with another life's id), retried until the broker answers."""
        topics = {m.topic for m in messages}
        return await retrying(
            "asking the broker for topic ids",
            lambda: self._topic_ids.of(topics),
            delay_s=1,
            level=logging.ERROR,
        )

    async def commit(self, batch: Batch) -> None:
        ack = self.app.consumer.ack
        for message in cast(list[Message], batch.receipt):
            ack(message)

    def run(
        self,
        tasks: Sequence[Callable[[], Awaitable[None]]],
        *,
        loglevel: str,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """Run the Faust worker with `tasks` on its event loop; blocks until it is stopped
        (SIGINT/SIGTERM)."""
        for task in tasks:
            self.app.task(_taking_no_app(task))
        faust.Worker(self.app, loop=loop, loglevel=loglevel).execute_from_commandline()


def _taking_no_app(task: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    # Faust passes the app to a task that takes an argument: take none.
    async def run_task() -> None:
        await task()

    return run_task


def _raw_messages(messages: list[Message], ids: dict[str, TopicId]) -> list[RawMessage]:
    return [
        RawMessage(m.key, m.value, MessageMeta(m.topic, m.partition, m.offset, ids[m.topic]))
        for m in messages
    ]


class BatchBuffer:
    """Messages waiting for the materializer, bounded: a full buffer makes the consumer wait,
    which stops fetching (back-pressure) instead of growing memory."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._messages: list[Message] = []
        self._batch_size = 1
        self._ready = asyncio.Event()  # at least `_batch_size` messages are waiting
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()

    def __len__(self) -> int:
        return len(self._messages)

    def offer(self, message: Message) -> bool:
        """Append if there is room (the consumer's fast path); False when full."""
        if len(self._messages) >= self.capacity:
            return False
        self._messages.append(message)
        self._not_empty.set()
        if len(self._messages) >= self._batch_size:
            self._ready.set()
        return True

    async def put(self, message: Message) -> None:
        while not self.offer(message):
            self._not_full.clear()
            await self._not_full.wait()

    async def take(self, max_messages: int, within_s: float) -> list[Message]:
        """Up to `max_messages`: as soon as that many wait, else what has arrived when the
        current `within_s` window closes. Windows run back to back from the call, as Faust's
        `take` does, so on a quiet stream a lone message waits half a window on average, not a
        whole one. Never an empty list."""
        called = time.monotonic()
        await self._not_empty.wait()
        if len(self._messages) < max_messages:
            self._batch_size = max_messages
            self._ready.clear()
            waited = time.monotonic() - called
            deadline = time.monotonic() + within_s - waited % within_s
            try:
                await asyncio.wait_for(self._ready.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pass
            finally:
                self._batch_size = 1
        taken = self._messages[:max_messages]
        del self._messages[:max_messages]
        if not self._messages:
            self._not_empty.clear()
        self._not_full.set()
        return taken

    def clear(self) -> None:
        """Drop what is buffered (Faust calls this when flow resumes after a rebalance: the
        consumer seeks back to the committed offsets, so nothing dropped is lost)."""
        self._messages.clear()
        self._not_empty.clear()
        self._not_full.set()


class BatchConductor(Conductor):
    """Faust's topic conductor, except that the topics given to `deliver_in_batches` go to a
    `BatchBuffer` instead of through channels and streams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch_buffers: dict[str, BatchBuffer] = {}

    def deliver_in_batches(self, topic: Any, buffer: BatchBuffer) -> None:
        for name in topic.topics:
            self._batch_buffers[name] = buffer
        self.app.flow_control.manage_queue(buffer)  # type: ignore[arg-type]  # has clear()
        self.add(topic)

    def _build_handler(self, tp: TP, channels: Any) -> Callable[[Message], Any]:
        buffer = self._batch_buffers.get(tp.topic)
        if buffer is None:
            return super()._build_handler(tp, channels)
        acquire_flow_control = self.app.flow_control.acquire
        track = self.app.consumer.track_message

        async def on_message(message: Message) -> None:
            await acquire_flow_control()  # suspended during a rebalance
            track_once(track, message)
            await buffer.put(message)

        return on_message

    @property
    def batch_buffers(self) -> dict[str, BatchBuffer]:
        return self._batch_buffers


def track_once(track: Callable[[Message], None], message: Message) -> None:
    """Count the message as unacknowledged with Faust (acknowledged by `consumer.ack`)."""
    if not message.tracked:
        message.tracked = True
        track(message)


class ShortWaitConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, creating its aiokafka consumer with `FETCH_MAX_WAIT_MS`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start(), which builds the fetcher: set before the start.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class BatchConsumer(Consumer):
    """Faust's aiokafka consumer with a cheaper drain loop: faust-streaming 0.15.3's
    `Consumer._drain_messages`, changed as the module docstring says (batched topics appended
    inline, other handlers awaited directly unless flow is suspended), and a short fetch wait."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        # faust-streaming 0.15.3's own, with our thread class
        return ShortWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        callback = self.callback
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspended = self.suspend_flow.is_set
        flowing = self.app.flow_control.is_active
        batch_buffers: dict[str, BatchBuffer] = getattr(self.app.topics, "batch_buffers", {})
        track = self.track_message
        since_yield = 0
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany can return at once, again and again
                if not self.should_stop:
                    async for tp, message in fetched:
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        read_offset = get_read_offset(tp)
                        if read_offset is not None and offset < read_offset:
                            continue  # already delivered
                        gap = read_offset is not None and offset - read_offset > 1
                        if gap and read_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, read_offset + 1, offset)
                        if self._commit_every is not None and self._n_acked >= self._commit_every:
                            self._n_acked = 0
                            await self.commit()
                        buffer = batch_buffers.get(tp.topic)
                        if buffer is not None and flowing() and not suspended():
                            # the conductor's handler, inline, while the buffer has room
                            track_once(track, message)
                            if not buffer.offer(message):
                                await buffer.put(message)
                        elif suspended():
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        else:
                            await callback(message)
                        set_read_offset(tp, offset)
                    self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)
