"""The live debugger: decoding, filtering, the ring and the rate bound (pure, no Kafka); the
reader's life with a fake consumer (starts on a request, reads from the end, stops idle); and
the route against the session stack: events sent to ingest appear, a refused one appears as
rejected with its reasons and its body without the write key."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest

from infra.settings import Settings
from query.debugger import (
    DebuggerFeed,
    Filters,
    RateBudget,
    RecordRing,
    accepted_record,
    matches,
    raw_events,
    rejected_record,
)
from schemas.debugger import DebuggerRecord
from schemas.redaction import REDACTED
from tests.support.debugger import (
    AT,
    FakeConsumer,
    ManualClock,
    command_message,
    debugger_page,
    event,
    records_until,
    rejection,
    v1_message,
    v2_message,
    wait_until_live,
)
from tests.support.stack import ADMIN_TOKEN, WRITE_KEY, RunningStack

SETTINGS = Settings.from_environment(
    {
        "PS_WRITE_KEYS": "secret-key:web",
        "PS_DEBUGGER_BUFFER_EVENTS": "10",
        "PS_DEBUGGER_MAX_EVENTS_PER_S": "20",
    }
)
SECRETS = ["secret-key"]


# --- decoding ------------------------------------------------------------------------------


def test_both_versions_of_the_events_topic_decode_and_commands_are_left_out() -> None:
    one, two = event(message_id="a"), event(message_id="b", user_id=None, anonymous_id="anon")
    assert [r["message_id"] for r in raw_events(v2_message(one, two))] == ["a", "b"]
    assert [r["message_id"] for r in raw_events(v1_message(one))] == ["a"]
    command = {"command_id": "c", "op": "delete", "user_id": "u", "issued_at": AT.isoformat()}
    assert raw_events(command_message(command)) == []
    assert raw_events(b"not json") == raw_events(b"[]") == raw_events(None) == []
    assert raw_events(b'{"v":3,"kind":"events","events":[{}]}') == []


def test_an_accepted_record_names_the_event_and_its_user_and_hides_secrets() -> None:
    raw = orjson.loads(
        event(
            message_id="a",
            user_id=None,
            anonymous_id="anon",
            properties={"key": "secret-key"},
        ).model_dump_json()
    )
    record = accepted_record(raw, SECRETS)
    assert record is not None
    assert (record.kind, record.type, record.event, record.user) == (
        "accepted",
        "track",
        "Clicked",
        "anon",
    )
    assert record.body["properties"] == {"key": REDACTED}
    page = accepted_record({**raw, "type": "page", "event": None, "name": "Home"}, SECRETS)
    assert page is not None and page.event == "Home"
    assert accepted_record({"message_id": "no timestamp"}, SECRETS) is None


def test_a_rejected_record_shows_reasons_and_the_body_without_secrets() -> None:
    body = orjson.dumps(
        {"writeKey": "secret-key", "type": "track", "userId": "ada", "context": {"k": "secret-key"}}
    ).decode()
    record = rejected_record(rejection(body=body), SECRETS)
    assert record is not None
    assert (record.kind, record.type, record.user, record.event) == (
        "rejected",
        "track",
        "ada",
        None,
    )
    assert record.reasons[0].field == "event" and record.endpoint == "batch"
    assert record.body == {"type": "track", "userId": "ada", "context": {"k": REDACTED}}
    assert "secret-key" not in record.model_dump_json()


def test_an_old_or_cut_rejection_still_shows() -> None:
    old = rejected_record(rejection(body=None), SECRETS)
    assert old is not None and old.body is None and old.type is None
    single = rejected_record(rejection(body='{"userId":"ada"}', endpoint="track"), SECRETS)
    assert single is not None and (single.type, single.user) == ("track", "ada")
    cut = rejected_record(rejection(body='{"type":"track","event":"E', truncated=True), SECRETS)
    assert cut is not None and cut.body == '{"type":"track","event":"E' and cut.body_truncated
    assert rejected_record(b"{}", SECRETS) is None


def record(**fields: Any) -> DebuggerRecord:
    values: dict[str, Any] = {"seq": 0, "kind": "accepted", "source": "web"}
    values.update(fields)
    return DebuggerRecord(**values)


def test_filters_match_kind_source_type_whole_and_event_and_user_in_part() -> None:
    one = record(type="track", event="Song Played", user="Ada-42")
    assert matches(one, Filters())
    assert matches(one, Filters(kind="accepted", source="web", type="track"))
    assert matches(one, Filters(event="song", user="ada"))
    assert not matches(one, Filters(kind="rejected"))
    assert not matches(one, Filters(source="we"))
    assert not matches(one, Filters(type="page"))
    assert not matches(one, Filters(event="Signed"))
    assert not matches(record(event=None), Filters(event="song"))


def test_the_ring_keeps_the_newest_and_answers_after_a_seq() -> None:
    ring = RecordRing(3)
    for n in range(5):
        ring.append(record(event=f"e{n}"))
    assert ring.last_seq == 5
    assert [r.seq for r in ring.newer(0, Filters(), 10)] == [3, 4, 5]  # only three kept
    assert [r.event for r in ring.newer(3, Filters(), 10)] == ["e3", "e4"]
    assert [r.seq for r in ring.newer(0, Filters(), 2)] == [4, 5]  # the newest of a limit
    assert [r.seq for r in ring.newer(0, Filters(event="e3"), 10)] == [4]
    assert [r.seq for r in ring.newer(99, Filters(), 10)] == [3, 4, 5]  # from another life
    ring.clear()
    ring.append(record())
    assert [r.seq for r in ring.newer(5, Filters(), 10)] == [6]


def test_the_rate_budget_grants_a_second_worth_and_refills() -> None:
    budget = RateBudget(10, now=0.0)
    assert budget.take(25, now=0.0) == 10
    assert budget.take(1, now=0.0) == 0
    assert budget.take(25, now=0.5) == 5
    assert budget.take(25, now=100.0) == 10  # never more than a second's worth


# --- the reader, with a fake consumer -------------------------------------------------------


def feed_with(consumer: FakeConsumer, clock: ManualClock) -> DebuggerFeed:
    return DebuggerFeed(
        SETTINGS, consumer_factory=lambda settings: consumer, idle_stop_s=60.0, clock=clock
    )


async def wait_for(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met")


async def test_the_reader_starts_on_a_request_reads_from_the_end_and_stops_idle() -> None:
    topics = {SETTINGS.events_topic: {0, 1}, SETTINGS.rejections_topic: {0}}
    consumer, clock = FakeConsumer(topics), ManualClock()
    feed = feed_with(consumer, clock)
    assert not consumer.started  # nothing until someone asks
    feed.touch()
    await wait_for(lambda: feed.live)
    assert {(tp.topic, tp.partition) for tp in consumer.sought_to_end} == {
        (SETTINGS.events_topic, 0),
        (SETTINGS.events_topic, 1),
        (SETTINGS.rejections_topic, 0),
    }
    assert consumer.assigned == consumer.sought_to_end
    consumer.queued += [
        (SETTINGS.events_topic, v2_message(event(message_id="a"), event(message_id="b"))),
        (SETTINGS.rejections_topic, rejection(body="{}")),
    ]
    await wait_for(lambda: feed.ring.last_seq == 3)
    page = feed.page(0, Filters(), 100)
    assert [(r.kind, r.message_id) for r in page.events] == [
        ("accepted", "a"),
        ("accepted", "b"),
        ("rejected", "bad-1"),
    ]
    assert (page.next, page.live, page.skipped) == (3, True, 0)

    clock.now += 61  # no request for a minute: the reader stops and forgets
    await wait_for(lambda: consumer.stopped)
    await wait_for(lambda: not feed.running)
    assert not feed.live and feed.page(0, Filters(), 100).events == []
    await feed.close()


async def test_the_rate_bound_counts_what_it_skips_and_the_ring_stays_bounded() -> None:
    consumer, clock = FakeConsumer({SETTINGS.events_topic: {0}}), ManualClock()
    feed = feed_with(consumer, clock)
    many = [event(message_id=f"m{n}") for n in range(50)]
    feed.take(SETTINGS.events_topic, v2_message(*many))  # 20 a second
    assert (feed.ring.last_seq, feed.skipped) == (20, 30)
    assert [r.message_id for r in feed.page(0, Filters(), 100).events] == [
        f"m{n}"
        for n in range(10, 20)  # the ring keeps 10
    ]
    feed.take(SETTINGS.rejections_topic, rejection())
    assert feed.skipped == 31
    clock.now += 1
    feed.take(SETTINGS.rejections_topic, rejection())
    assert (feed.ring.last_seq, feed.skipped) == (21, 31)


async def test_a_failed_reader_is_retried_on_a_later_request_not_every_one() -> None:
    consumer, clock = FakeConsumer({}, fail_on_start=True), ManualClock()
    feed = feed_with(consumer, clock)
    feed.touch()
    await wait_for(lambda: not feed.running)
    assert not feed.live and consumer.stopped
    consumer.fail_on_start, consumer.stopped = False, False
    feed.touch()  # too soon after the failure
    assert not feed.running
    clock.now += 6
    feed.touch()
    await wait_for(lambda: feed.live)
    await feed.close()
    assert consumer.stopped and not feed.running


# --- the route against the running stack --------------------------------------------------


def test_bad_parameters_are_400_naming_them(query: httpx.Client) -> None:
    for params, field in [
        ({"after": "-1"}, "after"),
        ({"kind": "maybe"}, "kind"),
        ({"type": "click"}, "type"),
        ({"limit": "0"}, "limit"),
        ({"event": "x" * 256}, "event"),
    ]:
        response = query.get("/v1/debugger/events", params=params)
        assert response.status_code == 400, (params, response.text)
        assert field in {e["field"].split(".")[-1] for e in response.json()["errors"]}


def test_an_unknown_token_is_refused(running_stack: RunningStack) -> None:
    url = f"{running_stack.query_url}/v1/debugger/events"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert ok.status_code == 200


@pytest.mark.e2e
def test_events_sent_to_ingest_appear_and_a_refused_one_with_reasons_and_body(
    ingest: httpx.Client, query: httpx.Client
) -> None:
    user = f"debugger-{uuid.uuid4().hex[:10]}"
    after = wait_until_live(query)
    good = {"type": "track", "userId": user, "event": "Debugged", "properties": {"n": 1}}
    bad = {"type": "track", "userId": user, "properties": {"n": 2}}  # no event name
    response = ingest.post(
        "/v1/batch", json={"writeKey": WRITE_KEY, "batch": [good, bad, {**good, "event": "Other"}]}
    )
    assert response.status_code == 200, response.text

    seen = records_until(query, after, lambda rs: len(rs) >= 3, user=user)
    by_kind = {(r["kind"], r["event"]) for r in seen}
    assert by_kind == {("accepted", "Debugged"), ("accepted", "Other"), ("rejected", None)}
    (refused,) = [r for r in seen if r["kind"] == "rejected"]
    assert refused["reasons"] == [{"field": "event", "reason": "event is required for track"}]
    assert refused["body"] == bad and refused["source"] == "test-source"
    accepted = next(r for r in seen if r["event"] == "Debugged")
    assert accepted["body"]["properties"] == {"n": 1} and accepted["user"] == user
    assert WRITE_KEY not in orjson.dumps(seen).decode()

    # the filters narrow what is answered
    page = debugger_page(query, after=after, user=user, event="debug")
    assert [r["event"] for r in page["events"]] == ["Debugged"]
    page = debugger_page(query, after=after, user=user, kind="rejected")
    assert [r["message_id"] for r in page["events"]] == [refused["message_id"]]
