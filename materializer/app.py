"""The Faust App, and nothing else."""

from __future__ import annotations

import faust

from infra.settings import Settings


def create_faust_app(settings: Settings) -> faust.App:
    return faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        # Faust's defaults make the first group join take 30 s on Tansu; these take 3 s.
        broker_rebalance_timeout=4,
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        broker_commit_interval=0.5,
        broker_max_poll_records=settings.batch_max_events,
        stream_buffer_maxsize=settings.batch_max_events * 2,
        producer_acks=-1,
    )
