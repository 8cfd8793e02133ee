"""The materializer's Faust task: moves batches from the events topic to the BatchProcessor, and
acknowledges a batch's messages only after ClickHouse and Redis have it, so Faust's commits
never pass unwritten data. Batches arrive through `batches.BatchConductor` (see there why not
through an agent's stream)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.types import Message

from infra.settings import Settings
from infra.topic_ids import TopicId, TopicIds
from materializer.app import create_faust_app
from materializer.batches import BatchBuffer, BatchConductor, BatchConsumer
from materializer.pipeline import BatchProcessor
from materializer.processing import MessageMeta, RawMessage
from schemas.messages import DeadLetterMessage

log = logging.getLogger(__name__)


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


def create_materializer_app(settings: Settings) -> faust.App:
    """The Faust app with the batch conductor in place (it has to be there before anything
    asks for `app.topics`)."""
    app = create_faust_app(settings)
    # Faust's own extension points: the transport's classes
    app.transport.Conductor = BatchConductor  # type: ignore[misc]
    app.transport.Consumer = BatchConsumer  # type: ignore[misc]
    return app


def register_materializer(
    app: faust.App, settings: Settings, processor: BatchProcessor, topic_ids: TopicIds
) -> None:
    """`topic_ids` stamps each message with its topic's id (the life of the topic it was read
    from; infra.topic_ids); it is asked again after every assignment."""
    events_topic = declare_events_topic(app, settings)
    dead_letter_topic = app.topic(
        settings.dead_letter_topic, key_serializer="raw", value_serializer="raw"
    )
    if not isinstance(app.topics, BatchConductor):
        raise TypeError("create the app with create_materializer_app")
    buffer = BatchBuffer(capacity=settings.batch_max_events * 2)
    app.topics.deliver_in_batches(events_topic, buffer)

    async def send_dead_letter(letter: DeadLetterMessage) -> None:
        pending = await dead_letter_topic.send(
            key=letter.key.encode() if letter.key else None,
            value=letter.model_dump_json().encode(),
        )
        await pending  # wait for the broker's acknowledgement

    processor.set_dead_letter_writer(send_dead_letter)

    def log_assignment(_app: Any, *_: Any, signal: Any, **kwargs: Any) -> None:
        assigned = kwargs.get("assigned") or set()
        mine = sorted(tp.partition for tp in assigned if tp.topic == settings.events_topic)
        log.info("assigned %s partitions %s", settings.events_topic, mine)
        # A topic deleted and created again is assigned anew: ask its id again.
        topic_ids.forget()

    app.on_partitions_assigned.connect(log_assignment)  # type: ignore[arg-type]  # mode hint

    async def materialize() -> None:
        while True:
            taken = await buffer.take(settings.batch_max_events, settings.batch_within_s)
            # Messages fetched before a rebalance are dropped unacknowledged: the partition's
            # owner reads them again from the committed offset.
            generation = app.consumer_generation_id
            current = [m for m in taken if m.generation_id == generation]
            if not current:
                continue
            ids = await _topic_ids_of(topic_ids, current)
            if app.consumer_generation_id != generation:
                # Assigned anew while the broker was asked: the ids may be another life's.
                continue
            await _process_until_done(processor, _raw_batch(current, ids))
            ack = app.consumer.ack
            for message in current:
                ack(message)

    app.task(materialize)


async def _topic_ids_of(topic_ids: TopicIds, messages: list[Message]) -> dict[str, TopicId]:
    """The id of each topic the batch was read from, asked once for the whole batch (so a
    retry never stamps it with another life's id), retried until the broker answers."""
    while True:
        try:
            return await topic_ids.of({m.topic for m in messages})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(
                "asking the broker for topic ids failed (%s); retrying in 1s", type(exc).__name__
            )
            await asyncio.sleep(1)


def _raw_batch(messages: list[Message], ids: dict[str, TopicId]) -> list[RawMessage]:
    return [
        RawMessage(m.key, m.value, MessageMeta(m.topic, m.partition, m.offset, ids[m.topic]))
        for m in messages
    ]


async def _process_until_done(processor: BatchProcessor, batch: list[RawMessage]) -> None:
    """The processor retries unreachable stores and dead-letters bad events itself; anything
    else escaping it is a bug, and the batch is retried rather than skipped (it is not yet
    acknowledged, and every write is idempotent)."""
    while True:
        try:
            await processor.process(batch)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the type only: a message could quote event contents
            log.error("batch processing failed (%s); retrying it in 1s", type(exc).__name__)
            await asyncio.sleep(1)
