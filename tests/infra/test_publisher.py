"""The publisher's positions name the life of the topic the records were stored in: asked of
the real embedded broker, and, when the topic is created anew during a produce, stored again so
the position is one a read can wait for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from infra.clients import ensure_topics, kafka_metadata_client
from infra.publisher import KafkaPublisher, Position, Record
from infra.settings import Settings
from infra.topic_ids import TopicIds
from profilestream.embedded import free_port, start_tansu


@pytest.mark.integration
async def test_positions_carry_the_topic_id_the_broker_gives(tmp_path: Path) -> None:
    settings = Settings.from_environment(
        {"PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "PS_DATA_DIR": str(tmp_path)}
    )
    broker = start_tansu(settings, tmp_path / "logs")
    publisher = KafkaPublisher(settings)
    try:
        await ensure_topics(settings)
        topic = settings.events_topic
        [expected] = (await TopicIds(kafka_metadata_client(settings)).of([topic])).values()
        records = [(topic, b"same-key", b"one"), (topic, b"same-key", b"two")]
        first, second = await publisher.publish_with_positions(records)
        assert first.topic_id == second.topic_id == expected
        assert (second.partition, second.offset) == (first.partition, first.offset + 1)
        assert await publisher.current_topic_id(topic) == expected
        await publisher.publish(records)  # events: no positions asked, none stamped
    finally:
        await publisher.close()
        broker.stop()


class RecreatedDuringFirstProduce(KafkaPublisher):
    """The broker's topic id is "a" when first asked and "b" from the first produce on."""

    def __init__(self) -> None:
        super().__init__(Settings.from_environment({}))
        self.produced: list[list[Record]] = []
        self.current = "a" * 32

        async def ask(topics: Sequence[str], node: int | None = None) -> dict[str, str]:
            return dict.fromkeys(topics, self.current)

        self._topic_ids = SimpleNamespace(of=ask, fresh=ask)  # type: ignore[assignment]

    async def _leader_of(self, stored: Any) -> int | None:
        return None

    async def _produce(self, records: Sequence[Record]) -> list[Any]:
        self.produced.append(list(records))
        self.current = "b" * 32
        offset = 10 * len(self.produced)
        return [SimpleNamespace(topic=t, partition=0, offset=offset) for t, _, _ in records]


async def test_a_topic_created_anew_during_a_produce_gets_the_records_again() -> None:
    publisher = RecreatedDuringFirstProduce()
    records = [("events", b"k", b"v")]
    positions = await publisher.publish_with_positions(records)
    assert publisher.produced == [records, records]  # the second copy dedups by messageId
    assert positions == [Position(0, 20, "b" * 32)]
