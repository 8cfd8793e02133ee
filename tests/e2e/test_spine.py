"""The whole path on the real embedded parts: Segment-spec requests into ingest, through Tansu, the
Faust materializer, Valkey and chDB, out of the query API."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.support.queries import profile_when, uid
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_identify_and_tracks_reach_profile_sequence_and_daily_counts(
    ingest: httpx.Client, query: httpx.Client
) -> None:
    user = uid()
    response = ingest.post(
        "/v1/identify",
        json={"userId": user, "traits": {"email": "ada@example.com", "plan": "pro"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    for n in range(3):
        response = ingest.post(
            "/v1/track",
            json={"userId": user, "event": "Song Played", "properties": {"n": n}},
        )
        assert response.status_code == 200, response.text

    profile = profile_when(query, user, lambda p: p["event_count"] == 4)
    assert profile["email"] == "ada@example.com" and profile["custom"] == {"plan": "pro"}
    assert profile["event_totals"] == {"$identify": 1, "Song Played": 3}
    assert profile["last_event"]["name"] == "Song Played"
    assert profile["first_seen"] <= profile["last_seen"]

    page = query.get(f"/v1/users/{user}/events").json()
    names = [e["name"] for e in page["events"]]
    assert names == ["Song Played"] * 3 + ["$identify"]
    assert [e["properties"]["n"] for e in page["events"][:3]] == [2, 1, 0]
    stamps = [e["timestamp"] for e in page["events"]]
    assert stamps == sorted(stamps, reverse=True)

    daily = query.get(
        f"/v1/users/{user}/events/daily", params={"event": "Song Played", "days": 7}
    ).json()
    assert len(daily) == 7
    assert daily[-1] == {"date": today(), "count": 3}
    assert all(row["count"] == 0 for row in daily[:-1])

    everyone = query.get("/v1/events/daily", params={"event": "Song Played", "days": 1}).json()
    assert everyone[0]["date"] == today() and everyone[0]["count"] >= 3


def _batch(user: str, count: int) -> dict[str, Any]:
    return {
        "batch": [
            {
                "type": "track",
                "userId": user,
                "event": "Checkout",
                "messageId": f"{user}-m{i}",
                "properties": {"i": i},
            }
            for i in range(count)
        ]
    }


def _send_sentinel_and_wait(ingest: httpx.Client, query: httpx.Client, user: str) -> dict:
    """A sentinel on the same user lands in the same partition after everything sent before it:
    once it is applied, so is everything before it."""
    sentinel = f"{user}-sentinel-{uuid.uuid4().hex[:6]}"
    ingest.post(
        "/v1/track", json={"userId": user, "event": "Sentinel", "messageId": sentinel}
    ).raise_for_status()
    return profile_when(
        query, user, lambda p: p["last_event"] and p["last_event"]["message_id"] == sentinel
    )


def test_same_batch_twice_changes_nothing(ingest: httpx.Client, query: httpx.Client) -> None:
    user = uid()
    body = _batch(user, 25)
    assert ingest.post("/v1/batch", json=body).json()["accepted"] == 25
    first = profile_when(query, user, lambda p: p["event_count"] == 25)

    def snapshot() -> tuple[Any, ...]:
        events = query.get(f"/v1/users/{user}/events", params={"limit": 1000}).json()
        user_daily = query.get(
            f"/v1/users/{user}/events/daily", params={"event": "Checkout", "days": 3}
        ).json()
        return (events, user_daily)

    before = snapshot()
    all_before = query.get("/v1/events/daily", params={"event": "Checkout", "days": 3}).json()
    assert ingest.post("/v1/batch", json=body).json()["accepted"] == 25
    # Gzip-compressed retry too, as a Segment library would send it.
    response = ingest.post(
        "/v1/batch",
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text

    after_sentinel = _send_sentinel_and_wait(ingest, query, user)
    assert after_sentinel["event_count"] == first["event_count"] + 1
    assert after_sentinel["event_totals"]["Checkout"] == 25
    events, user_daily = snapshot()
    assert [e for e in events["events"] if e["name"] == "Checkout"] == before[0]["events"]
    assert user_daily == before[1]
    all_after = query.get("/v1/events/daily", params={"event": "Checkout", "days": 3}).json()
    assert all_after == all_before


def test_gzip_batch_with_context_and_clock_skew(ingest: httpx.Client, query: httpx.Client) -> None:
    user = uid()
    now = datetime.now(UTC)
    # The client clock is 1 hour behind: its timestamp and sentAt are both skewed.
    client_now = now - timedelta(hours=1)
    body = {
        "batch": [
            {
                "type": "track",
                "userId": user,
                "event": "Played",
                "timestamp": (client_now - timedelta(seconds=30)).isoformat(),
            }
        ],
        "sentAt": client_now.isoformat(),
        "context": {"library": {"name": "test"}},
    }
    response = ingest.post(
        "/v1/batch",
        content=gzip.compress(orjson.dumps(body)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    profile_when(query, user, lambda p: p["event_count"] == 1)
    event = query.get(f"/v1/users/{user}/events").json()["events"][0]
    corrected = datetime.fromisoformat(event["timestamp"])
    # receivedAt - (sentAt - originalTimestamp) = about now - 30 s, not an hour ago.
    assert abs((corrected - (now - timedelta(seconds=30))).total_seconds()) < 10


def test_segment_client_library(running_stack: RunningStack, query: httpx.Client) -> None:
    from segment.analytics import Client

    client = Client(
        write_key="test-write-key",
        host=running_stack.ingest_url,
        gzip=True,
        sync_mode=True,
        max_retries=1,
    )
    user = uid("lib")
    client.identify(user, {"name": "Grace", "plan": "team"})
    for n in range(3):
        client.track(user, "Report Built", {"n": n})
    client.flush()
    profile = profile_when(query, user, lambda p: p["event_count"] == 4)
    assert profile["custom"] == {"name": "Grace", "plan": "team"}
    assert profile["event_totals"] == {"$identify": 1, "Report Built": 3}
    daily = query.get(
        f"/v1/users/{user}/events/daily", params={"event": "Report Built", "days": 2}
    ).json()
    assert daily[-1]["count"] == 3


def test_rudderstack_client_library(running_stack: RunningStack, query: httpx.Client) -> None:
    """rudder-sdk-python, unchanged: it puts identify traits only in context.traits, gzips its
    batches to /v1/batch and sends originalTimestamp + sentAt."""
    from rudderstack.analytics.client import Client

    client = Client(
        write_key="test-write-key", host=running_stack.ingest_url, sync_mode=True, max_retries=1
    )
    user = uid("rudder")
    client.identify(user, {"email": "grace@example.com", "plan": "team"})
    for n in range(3):
        client.track(user, "Report Built", {"n": n})
    client.flush()
    profile = profile_when(query, user, lambda p: p["event_count"] == 4)
    assert profile["email"] == "grace@example.com"
    assert profile["custom"] == {"plan": "team"}
    assert profile["event_totals"] == {"$identify": 1, "Report Built": 3}
    events = query.get(f"/v1/users/{user}/events").json()["events"]
    assert len({e["messageId"] for e in events}) == 4


def test_mobile_sdk_batch_on_the_short_path(
    running_stack: RunningStack, query: httpx.Client
) -> None:
    """The body analytics-swift and analytics-kotlin post to /v1/b (read from their sources; no
    mobile SDK runs on this machine): writeKey and sentAt at the top, events without sentAt."""
    user = uid("mobile")
    body = {
        "writeKey": "test-write-key",
        "sentAt": datetime.now(UTC).isoformat(),
        "batch": [
            {
                "type": "screen",
                "name": "Home",
                "userId": user,
                "anonymousId": f"{user}-device",
                "messageId": f"{user}-1",
                "timestamp": datetime.now(UTC).isoformat(),
                "context": {"library": {"name": "analytics-kotlin", "version": "1.16.0"}},
            },
            {
                "type": "track",
                "event": "Opened App",
                "userId": user,
                "messageId": f"{user}-2",
                "timestamp": datetime.now(UTC).isoformat(),
            },
        ],
    }
    response = httpx.post(f"{running_stack.ingest_url}/v1/b", json=body, timeout=30)
    assert response.status_code == 200, response.text
    profile = profile_when(query, user, lambda p: p["event_count"] == 2)
    assert profile["event_totals"] == {"$screen": 1, "Opened App": 1}


def test_partial_batch_keeps_valid_events_and_reports_rejected(
    ingest: httpx.Client, query: httpx.Client, running_stack: RunningStack
) -> None:
    user = uid()
    bad_id = f"{user}-bad"
    body = {
        "batch": [
            {"type": "track", "userId": user, "event": "Good", "messageId": f"{user}-1"},
            {"type": "track", "userId": user, "messageId": bad_id},  # no event name
            {"type": "nonsense", "userId": user},
            {"type": "track", "userId": user, "event": "Good", "properties": [1]},
            {"type": "track", "userId": user, "event": "Good", "messageId": f"{user}-2"},
        ]
    }
    response = ingest.post("/v1/batch", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["success"] is True and payload["accepted"] == 2
    rejected = {r["index"]: r for r in payload["rejected"]}
    assert set(rejected) == {1, 2, 3}
    assert rejected[1]["messageId"] == bad_id
    assert rejected[1]["errors"][0]["field"] == "event"
    assert rejected[2]["errors"][0]["field"] == "type"
    assert rejected[3]["errors"][0]["field"] == "properties"
    profile = profile_when(query, user, lambda p: p["event_count"] == 2)
    assert profile["event_totals"] == {"Good": 2}
    _assert_rejection_recorded(running_stack, bad_id)


def _assert_rejection_recorded(running_stack: RunningStack, message_id: str) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def find() -> dict[str, Any] | None:
        consumer = AIOKafkaConsumer(
            running_stack.settings.rejections_topic,
            bootstrap_servers=running_stack.settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            for _ in range(20):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        value = orjson.loads(record.value)
                        if value["message_id"] == message_id:
                            return dict(value)
            return None
        finally:
            await consumer.stop()

    found = asyncio.run(find())
    assert found is not None, "rejection not on the rejections topic"
    assert found["source"] == "test-source"
    assert found["errors"][0]["field"] == "event"
    assert "properties" not in found  # carries no event contents


def test_newer_trait_wins_by_event_time(ingest: httpx.Client, query: httpx.Client) -> None:
    user = uid()
    now = datetime.now(UTC)
    newer = {"userId": user, "traits": {"plan": "pro"}, "timestamp": now.isoformat()}
    older = {
        "userId": user,
        "traits": {"plan": "free", "city": "Oslo"},
        "timestamp": (now - timedelta(days=1)).isoformat(),
    }
    ingest.post("/v1/identify", json=newer).raise_for_status()
    ingest.post("/v1/identify", json=older).raise_for_status()  # arrives late
    profile = profile_when(query, user, lambda p: p["event_count"] == 2)
    assert profile["custom"] == {"plan": "pro"} and profile["city"] == "Oslo"
    assert profile["first_seen"] < profile["last_seen"]


def test_anonymous_then_known(ingest: httpx.Client, query: httpx.Client) -> None:
    user, anon = uid(), uid("anon")
    ingest.post(
        "/v1/identify", json={"userId": user, "anonymousId": anon, "traits": {"a": 1}}
    ).raise_for_status()
    ingest.post("/v1/page", json={"anonymousId": anon, "name": "Home"}).raise_for_status()
    # the identify merged the anonymous id: its later events land on the known user
    known = profile_when(query, user, lambda p: p["event_count"] == 2)
    assert known["anonymous_ids"] == [anon]
    assert known["event_totals"] == {"$identify": 1, "$page": 1}
    assert query.get(f"/v1/users/{anon}").json()["user_id"] == user
    events = query.get(f"/v1/users/{user}/events").json()["events"]
    page = next(e for e in events if e["name"] == "$page")
    assert page["pageName"] == "Home"
    # where it came from: the write key's source; no third-party protocol on /v1
    assert (page["source"], page["protocol"]) == ("test-source", None)


def test_event_sequence_pagination(ingest: httpx.Client, query: httpx.Client) -> None:
    user = uid()
    start = datetime.now(UTC) - timedelta(hours=1)
    body = {
        "batch": [
            {
                "type": "track",
                "userId": user,
                "event": "Step",
                "messageId": f"{user}-{i:02d}",
                # two events share each timestamp: the cursor must break ties by messageId
                "timestamp": (start + timedelta(seconds=i // 2)).isoformat(),
                "properties": {"i": i},
            }
            for i in range(11)
        ]
    }
    ingest.post("/v1/batch", json=body).raise_for_status()
    profile_when(query, user, lambda p: p["event_count"] == 11)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 4}
        if cursor:
            params["before"] = cursor
        page = query.get(f"/v1/users/{user}/events", params=params).json()
        seen += [e["properties"]["i"] for e in page["events"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(range(10, -1, -1))
    assert pages == 3


def test_daily_counts_in_a_time_zone(ingest: httpx.Client, query: httpx.Client) -> None:
    user = uid()
    # 23:30 UTC two days ago is the next calendar day in Asia/Kolkata (UTC+5:30).
    day = datetime.now(UTC).date() - timedelta(days=2)
    late = datetime(day.year, day.month, day.day, 23, 30, tzinfo=UTC)
    ingest.post(
        "/v1/track", json={"userId": user, "event": "Late", "timestamp": late.isoformat()}
    ).raise_for_status()
    profile_when(query, user, lambda p: p["event_count"] == 1)
    params: dict[str, str | int] = {"event": "Late", "days": 5}
    utc = query.get(f"/v1/users/{user}/events/daily", params=params).json()
    kolkata = query.get(
        f"/v1/users/{user}/events/daily", params={**params, "tz": "Asia/Kolkata"}
    ).json()
    assert {r["date"]: r["count"] for r in utc}[day.isoformat()] == 1
    next_day = (day + timedelta(days=1)).isoformat()
    assert {r["date"]: r["count"] for r in kolkata}[next_day] == 1
    everyone = query.get("/v1/events/daily", params={**params, "tz": "Asia/Kolkata"}).json()
    assert {r["date"]: r["count"] for r in everyone}[next_day] >= 1
    assert len(everyone) == 5
