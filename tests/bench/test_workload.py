"""The realistic workload (bench/workload.py) has the shape issue 13 measures with, and ingest
accepts every event of it."""

from collections import Counter
from datetime import UTC, datetime

import orjson
from workload import Workload

from infra.clients import partition_for_key
from infra.settings import Settings
from ingest.accept import event_records
from ingest.normalize import normalize_event
from materializer.decode import MessageMeta, RawMessage, WireEvent, decode_batch

START = datetime(2026, 11, 1, tzinfo=UTC)
N = 20_000


def kind(event: dict) -> str:
    if event["type"] == "track" and event["event"] == "$config_served":
        return "config"
    return str(event["type"])


def test_same_seed_same_events_and_unique_message_ids() -> None:
    one, two = Workload(1000, start=START), Workload(1000, start=START)
    assert [one.event(i) for i in range(50)] == [two.event(i) for i in range(50)]
    assert one.event(1) != Workload(1000, seed=8, start=START).event(1)
    ids = {one.event(i)["messageId"] for i in range(2000)}
    assert len(ids) == 2000


def test_shares_of_event_types() -> None:
    load = Workload(10_000, start=START)
    kinds = Counter(kind(load.event(i)) for i in range(N))
    assert abs(kinds["identify"] / N - 0.20) < 0.02
    assert abs(kinds["page"] / N - 0.30) < 0.02
    assert abs(kinds["config"] / N - 0.05) < 0.01
    assert abs(kinds["track"] / N - 0.45) < 0.02


def test_a_tenth_of_the_users_send_half_the_events() -> None:
    users = 10_000
    load = Workload(users, start=START)
    senders = Counter(load.event(i)["userId"] for i in range(N))
    hot = sum(count for user, count in senders.items() if int(user.rsplit("u", 1)[1]) < users // 10)
    assert abs(hot / N - 0.5) < 0.03
    assert len(senders) > users * 0.6  # the other half spreads over most of the others


def test_context_is_about_a_kilobyte() -> None:
    load = Workload(1000, start=START)
    sizes = [len(orjson.dumps(load.event(i)["context"])) for i in range(200)]
    assert min(sizes) >= 800 and max(sizes) <= 1400


def test_ingest_accepts_every_event_and_the_worker_decodes_its_messages() -> None:
    settings = Settings()
    load = Workload(500, start=START)
    events = [normalize_event(raw, received_at=START, source="bench") for raw in load.batch(0, 300)]
    records = event_records(settings, events, 4)
    partitions = [0, 1, 2, 3]
    messages = [
        RawMessage(
            key,
            value,
            MessageMeta("events", partition_for_key(key, partitions, partitions), n, "t"),
        )
        for n, (_, key, value) in enumerate(records)
    ]
    consumed, dead = decode_batch(messages)
    assert not dead
    assert len(consumed) == 300
    assert {c.event.message_id for c in consumed if isinstance(c.event, WireEvent)} == {
        e.message_id for e in events
    }
    for item in consumed:
        assert isinstance(item.event, WireEvent)
        key = item.event.profile_key.encode()
        assert partition_for_key(key, partitions, partitions) == item.meta.partition
