"""Topic ids from the real embedded broker (Tansu), through the Metadata v10 request this module
declares: stable within one life of a topic, new after the broker restarts (its logs are in
memory) — which is what positions and applied marks rely on."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.settings import Settings
from infra.topic_ids import TopicIds, UnknownTopic, fetch_topic_ids
from profilestream.embedded import free_port, start_tansu

pytestmark = pytest.mark.integration

HEX32 = re.compile(r"[0-9a-f]{32}")


def broker_settings(data_dir: Path) -> Settings:
    return Settings.from_environment(
        {"PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "PS_DATA_DIR": str(data_dir)}
    )


async def _ids_after_creating(settings: Settings, topics: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 2, 1) for t in topics])
    finally:
        await admin.close()
    client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap)
    await client.bootstrap()
    try:
        first = await fetch_topic_ids(client, topics)
        assert await fetch_topic_ids(client, topics) == first  # the same life, the same id
        return first
    finally:
        await client.close()


async def test_each_topic_has_an_id_and_a_restarted_broker_gives_new_ones(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path)
    broker = start_tansu(settings, tmp_path / "logs")
    try:
        before = await _ids_after_creating(settings, ["alpha", "beta"])
    finally:
        broker.stop()
    assert all(HEX32.fullmatch(i) for i in before.values()), before
    assert before["alpha"] != before["beta"]

    # The same broker address again, logs empty: the topics are created anew.
    broker = start_tansu(settings, tmp_path / "logs")
    try:
        after = await _ids_after_creating(settings, ["alpha", "beta"])
    finally:
        broker.stop()
    assert after["alpha"] != before["alpha"] and after["beta"] != before["beta"]


async def test_an_unknown_topic_is_refused(tmp_path: Path) -> None:
    settings = broker_settings(tmp_path)
    broker = start_tansu(settings, tmp_path / "logs")
    client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        await client.bootstrap()
        with pytest.raises(UnknownTopic):
            await fetch_topic_ids(client, ["never-created"])
    finally:
        await client.close()
        broker.stop()


class CountingClient:
    """Answers Metadata with fixed ids and counts the requests (the cache's behaviour only)."""

    def __init__(self, ids: dict[str, str]) -> None:
        self.ids = ids
        self.requests = 0

    def get_random_node(self) -> int:
        return 1

    async def send(self, _node: int, request: Any) -> Any:
        self.requests += 1

        class Response:
            topics: list[tuple[Any, ...]] = [
                (0, name, uuid.UUID(hex=self.ids[name]), False, [], 0, {})
                for name in request._topics
            ]

        return Response()


async def test_the_cache_asks_once_until_it_forgets() -> None:
    client = CountingClient({"events": "a" * 32})

    async def get_client() -> CountingClient:
        return client

    cache = TopicIds(get_client)
    assert await cache.of(["events"]) == {"events": "a" * 32}
    assert await cache.of(["events"]) == {"events": "a" * 32}
    assert client.requests == 1
    client.ids["events"] = "b" * 32  # the topic was created anew
    assert await cache.of(["events"]) == {"events": "a" * 32}  # not asked: still cached
    cache.forget()
    assert await cache.of(["events"]) == {"events": "b" * 32}
    assert await cache.fresh(["events"]) == {"events": "b" * 32}
    assert client.requests == 3


async def test_an_answer_asked_before_a_forget_is_not_kept() -> None:
    """The worker forgets on assignment; a fetch still in flight then must not refill the
    cache with what may be the previous life's id."""
    client = CountingClient({"events": "a" * 32})
    cache: TopicIds

    async def get_client() -> CountingClient:
        cache.forget()  # an assignment lands while the broker is being asked
        return client

    cache = TopicIds(get_client)
    assert await cache.of(["events"]) == {"events": "a" * 32}  # this call gets its answer
    client.ids["events"] = "b" * 32
    assert await cache.of(["events"]) == {"events": "b" * 32}  # asked again: nothing kept
