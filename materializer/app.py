"""The Faust App, and nothing else."""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from infra.settings import Settings

# Faust hard-codes fetch_max_wait_ms=1500 for its consumer. When a partition is idle the broker
# holds the fetch that long, and an event arriving meanwhile waits for the next fetch: freshness
# suffered by most of a second. A short wait costs a few more idle fetches and nothing else.
FETCH_MAX_WAIT_MS = 50
_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def _create_worker_consumer_short_wait(self: Any, transport: Any) -> Any:
    consumer = _create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = (  # type: ignore[method-assign]
    _create_worker_consumer_short_wait
)


def create_faust_app(settings: Settings) -> faust.App:
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
