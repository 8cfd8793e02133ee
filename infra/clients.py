"""Client factories for Kafka, Redis and ClickHouse, configured only from `Settings`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from infra.settings import Settings

_clickhouse_lock = threading.Lock()
_clickhouse_clients: dict[str, Any] = {}


# aiokafka's murmur2 is pure Python and was 7% of ingest's CPU under load; user keys repeat, so
# cache the hash. Same partition as Kafka's Java default partitioner for every key.
_key_hash = lru_cache(maxsize=1 << 17)(murmur2)


def partition_for_key(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    partition: int = all_partitions[(_key_hash(key) & 0x7FFFFFFF) % len(all_partitions)]
    return partition


def kafka_producer(settings: Settings, client_id: str = "profilestream") -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=settings.kafka_idempotent_producer,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        linger_ms=2,
        max_batch_size=1024 * 1024,
        client_id=client_id,
        partitioner=partition_for_key,
    )


def kafka_metadata_client(settings: Settings) -> Callable[[], Awaitable[Any]]:
    """A getter of one bootstrapped aiokafka client for metadata requests (topic ids), made on
    first use on the caller's event loop and made again if its bootstrap failed."""
    client: Any = None

    async def ready_client() -> Any:
        nonlocal client
        if client is None:
            fresh = AIOKafkaClient(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id="profilestream-metadata",
                request_timeout_ms=settings.kafka_request_timeout_ms,
            )
            try:
                await fresh.bootstrap()
            except BaseException:
                await fresh.close()
                raise
            client = fresh
        return client

    return ready_client


async def ensure_topics(settings: Settings) -> None:
    """Create the topics if missing (idempotent; Kafka in production may pre-create them)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="profilestream-admin"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            settings.events_topic,
            settings.rejections_topic,
            settings.dead_letter_topic,
        ]
        missing = [
            NewTopic(name, settings.topic_partitions, settings.topic_replication)
            for name in wanted
            if name not in existing
        ]
        if missing:
            # Another process may create them first: fine either way.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


def store_unavailable_errors() -> tuple[type[Exception], ...]:
    """What Redis and ClickHouse raise when they are unreachable or busy (Valkey loading its
    AOF raises a ConnectionError too): the services answer 503, the worker waits and retries."""
    from clickhouse_connect.driver.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return (RedisConnectionError, RedisTimeoutError, OperationalError)


def redis_client(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.redis_url, decode_responses=False)


# The events table's typed properties (infra/warehouse.py) are filled by ClickHouse's JSON type,
# which by default reads a string that looks like a date or a time as one: "2026-11-03T10:00Z"
# became a DateTime, printed "2026-11-03 10:00:00" and shifted to UTC, so a filter on the text
# sent found nothing. For every session: the worker's INSERT, the upgrade's mutation, and the
# reads of old parts, where the column is computed as it is read.
TYPED_JSON_SETTINGS = {"input_format_try_infer_dates": 0, "input_format_try_infer_datetimes": 0}


def clickhouse_client(settings: Settings) -> Any:
    """One client per DSN per process. chDB allows a single owner of its data directory, so the
    embedded process shares this client between the materializer and the query service."""
    dsn = settings.clickhouse_dsn
    with _clickhouse_lock:
        client = _clickhouse_clients.get(dsn)
        if client is None:
            import clickhouse_connect

            if dsn.startswith("chdb://"):
                Path(dsn.removeprefix("chdb://")).mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(dsn=dsn, settings=TYPED_JSON_SETTINGS)
            else:
                # A server's HTTP session runs one query at a time, and this client is shared
                # by the request threads (and the readiness check): no session, none collide.
                client = clickhouse_connect.get_client(
                    dsn=dsn, settings=TYPED_JSON_SETTINGS, autogenerate_session_id=False
                )
            _clickhouse_clients[dsn] = client
        return client
