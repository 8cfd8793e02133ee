"""The unit tests' stand-in for Kafka: keeps what ingest or the query service produces, or fails
as a broker that does not acknowledge. Management writes get positions as if from one partition
of a topic whose id is `TOPIC_ID`."""

from __future__ import annotations

from collections.abc import Sequence

from infra.publisher import BrokerUnavailable, KafkaPublisher, Position, Record
from infra.settings import Settings
from infra.topic_ids import TopicId

TOPIC_ID: TopicId = "0190a1b2c3d4e5f60718293a4b5c6d7e"


class RecordingPublisher(KafkaPublisher):
    def __init__(self, settings: Settings, fail: bool = False) -> None:
        super().__init__(settings)
        self.settings = settings
        self.records: list[Record] = []
        self.fail = fail

    async def publish(self, records: Sequence[Record]) -> None:
        await self.publish_with_positions(records)

    async def publish_with_positions(self, records: Sequence[Record]) -> list[Position]:
        if self.fail:
            raise BrokerUnavailable("the broker did not acknowledge: KafkaTimeoutError")
        start = len(self.records)
        self.records.extend(records)
        return [Position(0, start + n, TOPIC_ID) for n in range(len(records))]

    async def partition_count(self, topic: str) -> int:
        if self.fail:
            raise BrokerUnavailable("the broker did not acknowledge: KafkaTimeoutError")
        return self.settings.topic_partitions

    async def current_topic_id(self, topic: str) -> TopicId:
        return TOPIC_ID
