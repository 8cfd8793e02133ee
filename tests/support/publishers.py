"""The ingest unit tests' stand-in for Kafka: keeps what ingest produces, or fails as a broker
that does not acknowledge."""

from __future__ import annotations

from collections.abc import Sequence

from infra.publisher import BrokerUnavailable, KafkaPublisher, Record
from infra.settings import Settings


class RecordingPublisher(KafkaPublisher):
    def __init__(self, settings: Settings, fail: bool = False) -> None:
        super().__init__(settings)
        self.records: list[Record] = []
        self.fail = fail

    async def publish(self, records: Sequence[Record]) -> None:
        if self.fail:
            raise BrokerUnavailable("the broker did not acknowledge: KafkaTimeoutError")
        self.records.extend(records)
