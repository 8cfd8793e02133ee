"""Producing to Kafka, for ingest (events) and the query service (management commands): every
record is acknowledged by the broker (acks=all) before the request is answered, or the whole
request fails with `BrokerUnavailable`. Management writes also get each record's position,
which names the topic's id (see infra.topic_ids), so a read can wait until it is applied."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from infra.clients import kafka_producer
from infra.settings import Settings
from infra.topic_ids import TopicId, TopicIds

log = logging.getLogger(__name__)

Record = tuple[str, bytes, bytes]  # topic, key, value
T = TypeVar("T")


@dataclass(frozen=True)
class Position:
    """Where the broker stored a record: reads can wait until the materializer passed it. The
    topic id tells this life of the partition from another (offsets restart at 0 when a topic
    is created anew)."""

    partition: int
    offset: int
    topic_id: TopicId


class BrokerUnavailable(Exception):
    pass


class PublishObserver(Protocol):
    """Told of every publish call: how long it took and whether the broker acknowledged it
    (the services' metrics; infra.metrics.ProduceMetrics)."""

    def record_publish(self, seconds: float, acknowledged: bool) -> None: ...


class KafkaPublisher:
    """Owns one aiokafka producer, started lazily so ingest comes up (and answers 503) while
    the broker is down."""

    def __init__(
        self,
        settings: Settings,
        client_id: str = "profilestream",
        observer: PublishObserver | None = None,
    ) -> None:
        self._settings = settings
        self._client_id = client_id
        self._observer = observer
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._topic_ids = TopicIds(self._metadata_client)

    async def _metadata_client(self) -> Any:
        return (await self._ready_producer()).client

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._start_lock:
            if self._producer is None:
                producer = kafka_producer(self._settings, self._client_id)
                try:
                    await producer.start()
                except Exception as exc:
                    await producer.stop()
                    raise BrokerUnavailable(
                        f"cannot connect to Kafka: {type(exc).__name__}"
                    ) from exc
                self._producer = producer
            return self._producer

    async def publish(self, records: Sequence[Record]) -> None:
        """Return once the broker acknowledged every record; raise BrokerUnavailable otherwise."""
        if records:
            await self._observed(self._produce(records))

    async def publish_with_positions(self, records: Sequence[Record]) -> list[Position]:
        """`publish`, and where each record was stored, stamped with its topic's id."""
        if not records:
            return []
        return await self._observed(self._produce_and_locate(records))

    async def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (from the producer's metadata, refreshed by aiokafka
        when it changes); BrokerUnavailable if the broker cannot say. Asked just before a
        publish of events: its failure is told to the observer as a publish that failed."""
        started = time.perf_counter()
        try:
            producer = await self._ready_producer()
            partitions = await self._acknowledged(producer.partitions_for(topic))
        except BrokerUnavailable:
            self._report(started, acknowledged=False)
            raise
        return len(partitions)

    async def current_topic_id(self, topic: str) -> TopicId:
        """The topic's id as the broker has it now (BrokerUnavailable if it cannot say)."""
        ids = await self._acknowledged(self._topic_ids.fresh([topic]))
        return ids[topic]

    async def _produce(self, records: Sequence[Record]) -> list[Any]:
        producer = await self._ready_producer()
        futures = [
            await producer.send(topic, value=value, key=key) for topic, key, value in records
        ]
        return list(await asyncio.gather(*futures))

    async def _produce_and_locate(self, records: Sequence[Record]) -> list[Position]:
        topics = sorted({topic for topic, _, _ in records})
        expected = await self._topic_ids.of(topics)
        while True:
            stored = await self._produce(records)
            # The leader that acknowledged the records knows which life it appended them to;
            # another broker's metadata may lag behind a re-creation.
            current = await self._topic_ids.fresh(topics, await self._leader_of(stored[0]))
            if current == expected:
                # The id was the same before and after the records were stored, and an id is
                # never reused: they are in the log it names.
                return [Position(m.partition, m.offset, current[m.topic]) for m in stored]
            # The topic was created anew meanwhile, and the records may sit in the old log.
            # Store them again: their messageIds make a second copy harmless.
            log.warning("topic id changed during a produce; producing again")
            expected = current

    async def _leader_of(self, stored: Any) -> int | None:
        producer = await self._ready_producer()
        leader: int | None = producer.client.cluster.leader_for_partition(
            TopicPartition(stored.topic, stored.partition)
        )
        return leader if leader is not None and leader >= 0 else None

    async def _observed(self, produce: Awaitable[T]) -> T:
        """`_acknowledged`, its time and outcome told to the observer."""
        started = time.perf_counter()
        try:
            result = await self._acknowledged(produce)
        except BrokerUnavailable:
            self._report(started, acknowledged=False)
            raise
        # A cancelled call (the client went away) is neither: not reported.
        self._report(started, acknowledged=True)
        return result

    def _report(self, started: float, acknowledged: bool) -> None:
        if self._observer is not None:
            self._observer.record_publish(time.perf_counter() - started, acknowledged)

    async def _acknowledged(self, produce: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._settings.publish_timeout_s):
                return await produce
        except BrokerUnavailable:
            raise
        except Exception as exc:  # KafkaError, TimeoutError: either way not acknowledged
            log.warning("produce failed: %s", type(exc).__name__)
            raise BrokerUnavailable(
                f"the broker did not acknowledge: {type(exc).__name__}"
            ) from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
