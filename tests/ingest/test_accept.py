"""ingest/accept.py: one publish of the valid events and the rejections, NothingAccepted when no
item is valid, and a 503 (never a 2xx) when the broker does not acknowledge. Events go out as
version 2 messages, one per partition of the events topic per request (more if large)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.http import ApiError
from infra.settings import Settings
from ingest.accept import ItemResult, NothingAccepted, event_records, publish_results
from ingest.normalize import InvalidEvent, normalize_event
from schemas.events import Event
from schemas.messages import MAX_EVENTS_MESSAGE_BYTES, FieldError, RejectionMessage
from tests.support.messages import (
    grouping_problems,
    keyed_events,
    message_events,
    partition_of,
    produced_events,
)
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:web"})
AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def _event(user: str, message_id: str, **fields: object) -> list[Event]:
    raw = {"type": "track", "userId": user, "event": "E", "messageId": message_id, **fields}
    return [normalize_event(raw, received_at=AT, source="web")]


def _refused(field: str, message_id: str | None = None) -> ItemResult:
    return InvalidEvent([FieldError(field=field, reason="bad")], message_id)


async def test_valid_events_and_rejections_go_out_in_one_publish() -> None:
    publisher = RecordingPublisher(SETTINGS)
    results = [
        _event("ada", "m1"),
        _refused("event", "m2"),
        _event("bob", "m3") + _event("bob", "m4"),
    ]
    outcome = await publish_results(
        SETTINGS, publisher, results, source="web", endpoint="posthog", received_at=AT
    )
    assert (outcome.accepted, outcome.events) == (2, 3)
    assert [(r.index, r.messageId) for r in outcome.rejected] == [(1, "m2")]
    # ada and bob hash to different partitions: one message each, bob's two events together
    assert partition_of("ada", SETTINGS.topic_partitions) != partition_of("bob", 4)
    topics = [topic for topic, _, _ in publisher.records]
    assert topics == [SETTINGS.events_topic] * 2 + [SETTINGS.rejections_topic]
    assert [key for _, key, _ in publisher.records[:2]] == [b"ada", b"bob"]
    assert [[e.message_id for e in message_events(v)] for _, _, v in publisher.records[:2]] == [
        ["m1"],
        ["m3", "m4"],
    ]
    assert grouping_problems(publisher.records, SETTINGS.events_topic, 4) == []
    rejection = RejectionMessage.model_validate_json(publisher.records[2][2])
    assert (rejection.endpoint, rejection.index, rejection.source) == ("posthog", 1, "web")


# Users and the partition (of 4) each hashes to: two pairs share a partition.
USERS = {"ada": 1, "dan": 1, "bob": 2, "carol": 2, "eve": 0}


async def test_a_requests_events_go_out_one_message_per_partition_in_request_order() -> None:
    assert {u: partition_of(u, 4) for u in USERS} == USERS
    publisher = RecordingPublisher(SETTINGS)
    order = ["bob", "ada", "eve", "carol", "dan", "bob", "ada", "carol", "eve", "dan", "bob"]
    results = [_event(user, f"{user}-{n}") for n, user in enumerate(order)]
    outcome = await publish_results(
        SETTINGS, publisher, results, source="web", endpoint="batch", received_at=AT
    )
    assert (outcome.accepted, outcome.events) == (len(order), len(order))
    assert grouping_problems(publisher.records, SETTINGS.events_topic, 4) == []
    # one message per partition, in the order the partitions first appear in the request
    keys = [key for _, key, _ in publisher.records]
    assert keys == [b"bob", b"ada", b"eve"]
    partitions = [[e.profile_key for e in message_events(v)] for _, _, v in publisher.records]
    assert partitions == [
        ["bob", "carol", "bob", "carol", "bob"],
        ["ada", "dan", "ada", "dan"],
        ["eve", "eve"],
    ]
    # every event once, under a key of its partition, each user's in request order
    pairs = keyed_events(publisher.records, SETTINGS.events_topic)
    assert sorted(e.message_id for _, e in pairs) == sorted(f"{u}-{n}" for n, u in enumerate(order))
    assert all(partition_of(key, 4) == USERS[e.profile_key] for key, e in pairs)
    for user in USERS:
        sent = [e.message_id for _, e in pairs if e.profile_key == user]
        assert sent == [f"{u}-{n}" for n, u in enumerate(order) if u == user]


async def test_the_partition_count_comes_from_the_publisher() -> None:
    one = Settings.from_environment({"PS_WRITE_KEYS": "k1:web", "PS_TOPIC_PARTITIONS": "1"})
    publisher = RecordingPublisher(one)
    results = [_event(user, f"{user}-{n}") for n, user in enumerate(USERS)]
    await publish_results(one, publisher, results, source="web", endpoint="e", received_at=AT)
    [(_, key, value)] = publisher.records
    assert key == b"ada"
    assert [e.message_id for e in message_events(value)] == [
        f"{u}-{n}" for n, u in enumerate(USERS)
    ]


def test_a_partitions_events_over_the_message_limit_go_in_several_messages_in_order() -> None:
    # 30 events of about 24 KB for one user (600 KB): two messages, the first as full as fits
    big = "x" * (24 * 1024)
    events = [e for n in range(30) for e in _event("ada", f"m{n}", properties={"blob": big})]
    records = event_records(SETTINGS, [*events, *_event("bob", "b0")], 4)
    assert [key for _, key, _ in records] == [b"ada", b"ada", b"bob"]
    assert all(len(value) <= MAX_EVENTS_MESSAGE_BYTES for _, _, value in records)
    assert len(message_events(records[0][2])) > 15
    assert [e.message_id for e in produced_events(records, SETTINGS.events_topic)] == [
        *(f"m{n}" for n in range(30)),
        "b0",
    ]
    assert grouping_problems(records, SETTINGS.events_topic, 4) == []
    # the check itself fails on small events of one partition sent one message each
    one_by_one = [
        r
        for e in _event("ada", "s0") + _event("dan", "s1")
        for r in event_records(SETTINGS, [e], 4)
    ]
    assert grouping_problems(one_by_one, SETTINGS.events_topic, 4) != []


async def test_nothing_valid_records_the_rejections_and_raises_a_400_naming_each() -> None:
    publisher = RecordingPublisher(SETTINGS)
    with pytest.raises(NothingAccepted) as caught:
        await publish_results(
            SETTINGS,
            publisher,
            [_refused("userId"), _refused("event")],
            source="web",
            endpoint="batch",
            received_at=AT,
        )
    assert caught.value.status == 400
    assert [e.field for e in caught.value.errors] == ["batch.0.userId", "batch.1.event"]
    assert [r.index for r in caught.value.rejected] == [0, 1]
    assert [topic for topic, _, _ in publisher.records] == [SETTINGS.rejections_topic] * 2


async def test_a_single_event_request_names_its_fields_without_a_batch_index() -> None:
    with pytest.raises(NothingAccepted) as caught:
        await publish_results(
            SETTINGS,
            RecordingPublisher(SETTINGS),
            [_refused("userId")],
            source="web",
            endpoint="track",
            received_at=AT,
            single=True,
        )
    assert [e.field for e in caught.value.errors] == ["userId"]


async def test_an_unacknowledged_publish_is_a_503_with_retry_after() -> None:
    publisher = RecordingPublisher(SETTINGS, fail=True)
    with pytest.raises(ApiError) as caught:
        await publish_results(
            SETTINGS, publisher, [_event("ada", "m1")], source="web", endpoint="e", received_at=AT
        )
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": str(SETTINGS.retry_after_s)}
    # with nothing valid, the broker's state does not change the answer: still the 400
    with pytest.raises(NothingAccepted):
        await publish_results(
            SETTINGS, publisher, [_refused("event")], source="web", endpoint="e", received_at=AT
        )


async def test_an_item_with_nothing_to_store_is_accepted_beside_a_refused_one() -> None:
    publisher = RecordingPublisher(SETTINGS)
    outcome = await publish_results(
        SETTINGS, publisher, [[], _refused("$token")], source="web", endpoint="e", received_at=AT
    )
    assert (outcome.accepted, outcome.events, len(outcome.rejected)) == (1, 0, 1)
    assert [topic for topic, _, _ in publisher.records] == [SETTINGS.rejections_topic]
    nothing = await publish_results(
        SETTINGS, publisher, [[], []], source="web", endpoint="e", received_at=AT
    )
    assert (nothing.accepted, nothing.events) == (2, 0)
    assert len(publisher.records) == 1  # nothing more published
