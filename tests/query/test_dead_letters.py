"""Dead letters: the pure parts of query/dead_letters.py (ids, what a letter shows, repaired
values, what a replay request may ask), and the routes of query/routes/dead_letters.py on a
real Valkey (the replay marks) with a dead-letter topic that holds its letters without a broker
and a publisher that records; and the topic reader (DeadLetterTopic) on an embedded broker of
this module's own. The whole path, with the worker, is tests/e2e/test_export_and_dead_letters.py."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from infra.settings import Settings
from query.app import create_app
from query.dead_letters import (
    BadLetterId,
    BadRepair,
    DeadLetterTopic,
    LetterId,
    ReplayRequest,
    letter_detail,
    letter_summary,
    mark_replayed,
    newest_first,
    original_value,
    parse_letter_id,
    repaired_value,
    replay_marks,
    replay_problems,
    replay_record,
    replayed_ids,
    stored_letter,
)
from query.routes import dead_letters as routes
from schemas.messages import DeadLetterMessage
from tests.support.dead_letters import fake_topic, letter, unreadable_letter
from tests.support.publishers import RecordingPublisher

TOKEN = "dead-letters-token"
POISON = b'{"v":1,"kind":"event","event":{"type":"nope"}}'


# --- pure ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"), [("0-0", LetterId(0, 0)), ("3-12345", LetterId(3, 12345))]
)
def test_parse_letter_id(text: str, expected: LetterId) -> None:
    assert parse_letter_id(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", ["", "3", "-1-2", "a-1", "1-2-3", "1 -2", "1-", "1234567-1"])
def test_parse_letter_id_refuses(text: str) -> None:
    with pytest.raises(BadLetterId, match="partition"):
        parse_letter_id(text)


def test_a_record_that_is_not_a_dead_letter_is_kept_unreadable() -> None:
    stored = unreadable_letter("1-2")
    assert stored.letter is None and stored.size == 0
    summary = letter_summary(stored, None)
    assert summary["id"] == "1-2" and summary["reason"].startswith("unreadable")
    assert letter_detail(stored, None)["value"] is None
    assert stored_letter(LetterId(0, 1), -1, None).time is None


def test_the_summary_shows_where_and_why_never_the_bytes() -> None:
    stored = letter("0-7", POISON, key="ada")
    summary = letter_summary(stored, {"at": "2026-05-02T00:00:00.000Z", "by": "ops"})
    assert summary == {
        "id": "0-7",
        "time": "2026-05-01T12:00:00.000Z",
        "reason": stored.letter.reason if stored.letter else None,
        "topic": "ps.events",
        "partition": 3,
        "offset": 107,
        "key": "ada",
        "size": len(POISON),
        "replayed": {"at": "2026-05-02T00:00:00.000Z", "by": "ops"},
    }
    assert "value" not in summary and "value_b64" not in str(summary)


def test_the_detail_gives_json_parsed_and_other_bytes_as_base64() -> None:
    as_json = letter_detail(letter("0-1", POISON), None)
    assert as_json["encoding"] == "json" and as_json["value"] == orjson.loads(POISON)
    binary = b"\xff\x00not json"
    as_base64 = letter_detail(letter("0-2", binary), None)
    assert as_base64["encoding"] == "base64"
    assert base64.b64decode(as_base64["value"]) == binary


def test_newest_first_by_time_then_offset() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    letters = [
        letter("0-1", b"a", at=early),
        letter("1-5", b"b", at=late),
        letter("2-9", b"c", at=early),
        unreadable_letter("3-0"),  # no time: oldest
    ]
    assert [str(s.id) for s in newest_first(letters)] == ["1-5", "2-9", "0-1", "3-0"]


def test_repaired_values() -> None:
    assert orjson.loads(repaired_value({"v": 1, "kind": "event"})) == {"v": 1, "kind": "event"}
    assert repaired_value(base64.b64encode(b"\x00raw").decode()) == b"\x00raw"
    for bad in ("not base64!", 12, None, [1]):
        with pytest.raises(BadRepair):
            repaired_value(bad)


def test_a_replay_record_is_the_original_with_its_key_to_its_topic() -> None:
    stored = letter("0-1", POISON, key="ada")
    assert stored.letter is not None
    assert replay_record(stored.letter) == ("ps.events", b"ada", POISON)
    assert replay_record(stored.letter, b"fixed") == ("ps.events", b"ada", b"fixed")
    keyless = letter("0-2", POISON, key=None).letter
    assert keyless is not None and replay_record(keyless)[1] is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"ids": ["0-1"]}, []),
        ({"all": True}, []),
        ({"ids": ["0-1"], "value": {"v": 1}}, []),
        ({}, ["ids"]),
        ({"ids": ["0-1"], "all": True}, ["ids"]),
        ({"ids": ["0-1", "0-2"], "value": {"v": 1}}, ["value"]),
        ({"all": True, "value": "eA=="}, ["value"]),
        ({"ids": ["0-1", "x"]}, ["ids.1"]),
    ],
)
def test_replay_problems(body: dict[str, Any], fields: list[str]) -> None:
    assert [field for field, _ in replay_problems(ReplayRequest(**body))] == fields


# --- replay marks on Valkey -----------------------------------------------------------------------


async def test_replay_marks_are_per_life_of_the_topic(redis: aioredis.Redis) -> None:
    life, next_life = uuid.uuid4().hex, uuid.uuid4().hex
    at = datetime(2026, 5, 1, tzinfo=UTC)
    await mark_replayed(redis, life, [LetterId(0, 1), LetterId(2, 3)], at, "ops")
    marks = await replay_marks(redis, life, [LetterId(0, 1), LetterId(0, 2)])
    assert marks == {LetterId(0, 1): {"at": "2026-05-01T00:00:00.000Z", "by": "ops"}}
    assert await replayed_ids(redis, life) == {"0-1", "2-3"}
    assert await replayed_ids(redis, next_life) == set()
    assert await replay_marks(redis, next_life, [LetterId(0, 1)]) == {}


# --- the routes -----------------------------------------------------------------------------------


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str]] = []

    async def __call__(self, _request: Any, operator: Any, action: str, target: str) -> None:
        self.entries.append((operator.name, action, target))


@pytest.fixture
async def api(
    valkey_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, RecordingPublisher, Audit]]:
    """The query app with the letters below, a recording publisher and a recorded audit. Each
    test gets a fresh dead-letter topic name, so its replay marks are its own."""
    settings = Settings.from_environment(
        {
            "PS_ADMIN_TOKEN": TOKEN,
            "PS_REDIS_URL": valkey_url,
            "PS_DEAD_LETTER_TOPIC": f"dl-{uuid.uuid4().hex[:8]}",
        }
    )
    letters = [
        letter("0-1", POISON, key="ada", at=datetime(2026, 5, 1, tzinfo=UTC)),
        letter("1-4", b"\xffraw", key="bob", at=datetime(2026, 5, 3, tzinfo=UTC)),
        unreadable_letter("2-0"),
        letter("3-2", POISON, key="cyd", at=datetime(2026, 5, 2, tzinfo=UTC)),
    ]
    monkeypatch.setattr(routes, "DeadLetterTopic", fake_topic(letters))
    audit = Audit()
    monkeypatch.setattr(routes, "record_audit", audit)
    # Replay marks are kept per topic id; the recording publisher's is fixed, so a fresh one.
    topic_id = uuid.uuid4().hex

    async def current_topic_id(_topic: str) -> str:
        return topic_id

    publisher = RecordingPublisher(settings)
    monkeypatch.setattr(publisher, "current_topic_id", current_topic_id)
    redis = aioredis.Redis.from_url(valkey_url)
    app = create_app(settings, redis, object(), publisher)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://query",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client, publisher, audit
    await redis.aclose()


Api = tuple[httpx.AsyncClient, RecordingPublisher, Audit]


async def test_list_is_newest_first_without_bytes(api: Api) -> None:
    client, _, _ = api
    answer = await client.get("/v1/dead-letters", params={"limit": 3})
    assert answer.status_code == 200, answer.text
    letters = answer.json()["letters"]
    assert [entry["id"] for entry in letters] == ["1-4", "3-2", "0-1"]
    assert letters[0]["key"] == "bob" and letters[0]["size"] == 4
    assert all("value" not in entry for entry in letters)
    assert (await client.get("/v1/dead-letters", params={"limit": 0})).status_code == 400


async def test_show(api: Api) -> None:
    client, _, _ = api
    shown = (await client.get("/v1/dead-letters/1-4")).json()
    assert shown["encoding"] == "base64" and base64.b64decode(shown["value"]) == b"\xffraw"
    assert (await client.get("/v1/dead-letters/0-1")).json()["value"] == orjson.loads(POISON)
    missing = await client.get("/v1/dead-letters/0-99")
    assert missing.status_code == 404 and missing.json()["success"] is False
    bad = await client.get("/v1/dead-letters/zero")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "letter_id"


async def test_replay_by_id_publishes_the_originals_and_is_audited(api: Api) -> None:
    client, publisher, audit = api
    answer = await client.post("/v1/dead-letters/replay", json={"ids": ["1-4", "0-1"]})
    assert answer.status_code == 200, answer.text
    assert publisher.records == [("ps.events", b"bob", b"\xffraw"), ("ps.events", b"ada", POISON)]
    assert [entry["id"] for entry in answer.json()["replayed"]] == ["1-4", "0-1"]
    assert audit.entries == [("admin", "dead_letters.replay", "1-4,0-1")]
    listed = (await client.get("/v1/dead-letters")).json()["letters"]
    assert {e["id"]: bool(e["replayed"]) for e in listed} == {
        "1-4": True,
        "3-2": False,
        "0-1": True,
        "2-0": False,
    }
    # Asked again by id, it is replayed again (the worker applies a messageId once).
    again = await client.post("/v1/dead-letters/replay", json={"ids": ["0-1"]})
    assert again.status_code == 200 and len(publisher.records) == 3


@pytest.mark.parametrize(
    ("value", "published"),
    [({"v": 1, "kind": "event"}, b'{"v":1,"kind":"event"}'), ("AP8=", b"\x00\xff")],
)
async def test_replay_a_repaired_value(api: Api, value: Any, published: bytes) -> None:
    client, publisher, _ = api
    answer = await client.post("/v1/dead-letters/replay", json={"ids": ["3-2"], "value": value})
    assert answer.status_code == 200, answer.text
    assert publisher.records == [("ps.events", b"cyd", published)]


async def test_replay_all_skips_what_was_replayed_before(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, publisher, audit = api
    monkeypatch.setattr(routes, "REPLAY_CHUNK", 2)  # several produce calls
    await client.post("/v1/dead-letters/replay", json={"ids": ["1-4"]})
    first = (await client.post("/v1/dead-letters/replay", json={"all": True})).json()
    assert [entry["id"] for entry in first["replayed"]] == ["0-1", "3-2"]
    assert first["skipped"] == 2  # 1-4 replayed before, 2-0 unreadable
    second = (await client.post("/v1/dead-letters/replay", json={"all": True})).json()
    assert second == {"replayed": [], "skipped": 4, "more": False}
    assert len(publisher.records) == 3
    assert [target for _, _, target in audit.entries] == ["1-4", "0-1,3-2"]


async def test_replay_all_is_bounded_per_call_and_says_there_is_more(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, publisher, _ = api
    monkeypatch.setattr(routes, "MAX_REPLAY_IDS", 2)  # three letters can be replayed
    first = (await client.post("/v1/dead-letters/replay", json={"all": True})).json()
    assert len(first["replayed"]) == 2 and first["more"] is True
    second = (await client.post("/v1/dead-letters/replay", json={"all": True})).json()
    assert len(second["replayed"]) == 1 and second["more"] is False
    replayed = {entry["id"] for entry in first["replayed"] + second["replayed"]}
    assert replayed == {"0-1", "1-4", "3-2"} and len(publisher.records) == 3


def test_the_audit_target_of_a_large_replay_names_the_count_and_the_ends() -> None:
    replayed = [{"id": f"0-{n}"} for n in range(11)]
    assert routes.audit_target(replayed[:2]) == "0-0,0-1"
    assert routes.audit_target(replayed) == "11 letters: 0-0 … 0-10"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"ids": ["0-99"]}, 404, "ids.0"),
        ({"ids": ["0-1", "2-0"]}, 409, "ids.1"),
        ({"ids": ["0-1", "nope"]}, 400, "ids.1"),
        ({"ids": ["0-1"], "value": "not base64!"}, 400, "value"),
        ({"ids": []}, 400, "ids"),
        ({}, 400, "ids"),
    ],
)
async def test_replay_refusals_publish_nothing(
    api: Api, body: dict[str, Any], status: int, field: str
) -> None:
    client, publisher, audit = api
    answer = await client.post("/v1/dead-letters/replay", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["errors"][0]["field"] == field
    assert publisher.records == [] and audit.entries == []


async def test_replay_while_the_broker_does_not_acknowledge(api: Api) -> None:
    client, publisher, audit = api
    publisher.fail = True
    answer = await client.post("/v1/dead-letters/replay", json={"ids": ["0-1"]})
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert audit.entries == []
    publisher.fail = False
    listed = (await client.get("/v1/dead-letters")).json()["letters"]
    assert not any(entry["replayed"] for entry in listed)


# --- reading a real broker ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """An embedded broker (Tansu, in memory) of this module's own, with the topics created."""
    from infra.clients import ensure_topics
    from profilestream.embedded import environment_on_free_ports, start_tansu

    data_dir = tmp_path_factory.mktemp("tansu")
    settings = Settings.from_environment(environment_on_free_ports(data_dir))
    process = start_tansu(settings, data_dir)
    try:
        asyncio.run(ensure_topics(settings))
        yield settings
    finally:
        process.stop()


async def _produce_letters(settings: Settings, records: list[tuple[int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition, value in records:
            await producer.send_and_wait(settings.dead_letter_topic, value, partition=partition)
    finally:
        await producer.stop()


def _dead_letter(n: int) -> bytes:
    value = f'{{"v":1,"kind":"event","n":{n}}}'.encode()
    return (
        DeadLetterMessage(
            topic="ps.events",
            partition=0,
            offset=n,
            reason=f"reason {n}",
            key=f"user-{n}",
            value_b64=base64.b64encode(value).decode(),
        )
        .model_dump_json()
        .encode()
    )


@pytest.mark.integration
async def test_the_topic_reader_on_a_real_broker(broker: Settings) -> None:
    async with DeadLetterTopic(broker) as empty:
        assert await empty.newest(10) == []
        assert [s async for s in empty.every_letter()] == []
    # Partition 1: letters 0, 1, 2; partition 3: letter 3 and a record that is no letter.
    await _produce_letters(
        broker, [(1, _dead_letter(0)), (1, _dead_letter(1)), (3, _dead_letter(3))]
    )
    await _produce_letters(broker, [(1, _dead_letter(2)), (3, b"junk")])
    async with DeadLetterTopic(broker) as topic:
        assert topic.ranges == {0: (0, 0), 1: (0, 3), 2: (0, 0), 3: (0, 2)}
        every = [s async for s in topic.every_letter()]
        assert [str(s.id) for s in every] == ["1-0", "1-1", "1-2", "3-0", "3-1"]
        assert [s.letter.reason if s.letter else None for s in every] == [
            "reason 0",
            "reason 1",
            "reason 2",
            "reason 3",
            None,
        ]
        newest = await topic.newest(2)
        # The two newest of the last two of each partition; a list carries no bytes.
        assert {str(s.id) for s in newest} == {"1-2", "3-1"}
        assert all(s.letter is None or s.letter.value_b64 == "" for s in newest)
        one = await topic.letter(LetterId(1, 1))
        assert one is not None and one.letter is not None and one.letter.key == "user-1"
        assert original_value(one.letter) == b'{"v":1,"kind":"event","n":1}'
        assert await topic.letter(LetterId(1, 3)) is None  # past the end taken at the start
        assert await topic.letter(LetterId(9, 0)) is None
        # Read again after reading another partition: the reader moves between them.
        again = await topic.letter(LetterId(3, 0))
        assert again is not None and again.letter is not None and again.letter.offset == 3
