"""The Faust agent: moves `take_events` batches to the BatchProcessor. Faust acknowledges a batch
only after the loop body returns, i.e. after ClickHouse and Redis have it."""

from __future__ import annotations

import logging
from typing import Any

import faust

from infra.settings import Settings
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


def register_agents(app: faust.App, settings: Settings, processor: BatchProcessor) -> None:
    events_topic = declare_events_topic(app, settings)
    dead_letter_topic = app.topic(
        settings.dead_letter_topic, key_serializer="raw", value_serializer="raw"
    )

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

    app.on_partitions_assigned.connect(log_assignment)  # type: ignore[arg-type]  # mode hint

    async def materialize(stream: Any) -> None:
        async for batch in stream.take_events(
            settings.batch_max_events, within=settings.batch_within_s
        ):
            await processor.process(
                [
                    RawMessage(
                        key=event.message.key,
                        value=event.message.value,
                        meta=MessageMeta(
                            event.message.topic, event.message.partition, event.message.offset
                        ),
                    )
                    for event in batch
                ]
            )

    app.agent(events_topic, name="materialize")(materialize)
