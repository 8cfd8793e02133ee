"""Which life of a topic a record belongs to.

Offsets start again at 0 when a topic is deleted and created again, and the embedded broker
(Tansu) keeps its logs in memory, so each of its restarts does the same to every topic. An
offset alone cannot tell one life of a partition from the next; the topic id can: Kafka gives a
topic a UUID when it creates it (KIP-516), and a new topic of the same name gets a new one
(Tansu too: a fresh id after each restart). The positions a write returns and the materializer's
applied and in-flight marks carry it, so a mark left by another life never vouches for a
position, and never sends a new life's events to a ClickHouse look-up.

aiokafka speaks Metadata up to v5, which has no topic ids: the v10 request and response are
declared here with the Kafka protocol's own field names. A broker older than Kafka 2.8 answers
no v10: every topic then has `NO_TOPIC_ID`, and marks compare offsets only, as before."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from io import BytesIO
from typing import Any

from aiokafka.errors import IncompatibleBrokerVersion, for_code
from aiokafka.protocol.abstract import AbstractType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

TopicId = str  # the topic's UUID as 32 lowercase hex digits
NO_TOPIC_ID: TopicId = uuid.UUID(int=0).hex  # Kafka's "no id" (Uuid.ZERO_UUID)


class UnknownTopic(Exception):
    """The broker does not know the topic (not created yet, or being re-created)."""


class _Uuid(AbstractType[uuid.UUID]):  # type: ignore[misc]  # aiokafka ships no type hints
    @classmethod
    def encode(cls, value: uuid.UUID | None) -> bytes:
        return (value or uuid.UUID(int=0)).bytes

    @classmethod
    def decode(cls, data: BytesIO) -> uuid.UUID:
        raw = data.read(16)
        if len(raw) != 16:
            raise ValueError("Buffer underrun decoding a UUID")
        return uuid.UUID(bytes=raw)


class MetadataResponse_v10(Response):  # type: ignore[misc]  # Kafka's names
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class MetadataRequest_v10(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 10
    RESPONSE_TYPE = MetadataResponse_v10
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_id", _Uuid),
                ("name", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class TopicIdsRequest(Request[MetadataRequest_v10]):  # type: ignore[misc]
    """Metadata for the named topics, never creating one."""

    API_KEY = 3

    def __init__(self, topics: Collection[str]) -> None:
        self._topics = sorted(topics)

    def build(self, request_struct_class: type[MetadataRequest_v10]) -> MetadataRequest_v10:
        return request_struct_class([(None, t, {}) for t in self._topics], False, False, False, {})


def topic_ids_from(response: Any, topics: Collection[str]) -> dict[str, TopicId]:
    """The id of each asked topic in a Metadata v10 response."""
    found: dict[str, TopicId] = {}
    for error_code, name, topic_id, *_ in response.topics:
        if error_code:
            raise UnknownTopic(f"{name}: {for_code(error_code).__name__}")
        found[name] = topic_id.hex
    missing = set(topics) - found.keys()
    if missing:
        raise UnknownTopic(f"no metadata for {sorted(missing)}")
    return {t: found[t] for t in topics}


async def fetch_topic_ids(
    client: Any, topics: Collection[str], node: int | None = None
) -> dict[str, TopicId]:
    """Ask a broker (`node`, else any) for each topic's id (`client`: a bootstrapped aiokafka
    AIOKafkaClient)."""
    if node is None:
        node = client.get_random_node()
    if node is None:
        raise UnknownTopic("no broker known yet")
    try:
        response = await client.send(node, TopicIdsRequest(topics))
    except (IncompatibleBrokerVersion, NotImplementedError):
        return dict.fromkeys(topics, NO_TOPIC_ID)
    return topic_ids_from(response, topics)


class TopicIds:
    """topic -> id, asked once and again after `forget()` (the worker forgets on each
    assignment: a topic deleted and created again is assigned anew)."""

    def __init__(self, client: Callable[[], Awaitable[Any]]) -> None:
        self._client = client
        self._known: dict[str, TopicId] = {}
        self._forgotten = 0  # counts forget() calls: an answer asked before one is not kept

    async def of(self, topics: Collection[str]) -> dict[str, TopicId]:
        known = {t: self._known[t] for t in topics if t in self._known}
        missing = [t for t in topics if t not in known]
        if missing:
            known.update(await self.fresh(missing))
        return {t: known[t] for t in topics}

    async def fresh(self, topics: Collection[str], node: int | None = None) -> dict[str, TopicId]:
        """Ask the broker now (`node`, else any), and remember the answer."""
        asked_at = self._forgotten
        current = await fetch_topic_ids(await self._client(), topics, node)
        if asked_at == self._forgotten:
            self._known.update(current)
        return current

    def forget(self) -> None:
        self._known.clear()
        self._forgotten += 1
