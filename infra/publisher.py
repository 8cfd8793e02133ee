"""Producing to Kafka, for ingest (events) and the query service (management commands): every
record is acknowledged by the broker (acks=all) before the request is answered, or the whole
request fails with `BrokerUnavailable`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from infra.clients import kafka_producer
from infra.settings import Settings

log = logging.getLogger(__name__)

Record = tuple[str, bytes, bytes]  # topic, key, value


@dataclass(frozen=True)
class Position:
    """Where the broker stored a record: reads can wait until the materializer passed it."""

    partition: int
    offset: int


class BrokerUnavailable(Exception):
    pass


class KafkaPublisher:
    """Owns one aiokafka producer, started lazily so ingest comes up (and answers 503) while
    the broker is down."""

    def __init__(self, settings: Settings, client_id: str = "profilestream") -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()

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

    async def publish(self, records: Sequence[Record]) -> list[Position]:
        """Return once the broker acknowledged every record; raise BrokerUnavailable otherwise."""
        if not records:
            return []
        try:
            async with asyncio.timeout(self._settings.publish_timeout_s):
                producer = await self._ready_producer()
                futures = [
                    await producer.send(topic, value=value, key=key)
                    for topic, key, value in records
                ]
                stored = await asyncio.gather(*futures)
                return [Position(m.partition, m.offset) for m in stored]
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
