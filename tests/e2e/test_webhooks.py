"""Forwarded streams on the real embedded stack: Segment's Webhooks destination (signed with
the test source's shared secret, one message a request and an Actions batch) and RudderStack's
webhook destination, checked through the query API (profile, sequence, daily counts, configs).

No official client library sends these requests: Segment and rudder-server do, as services. So
the requests are built by hand from the documented payloads (tests/support/webhooks.py), byte
for byte as those services send them: compact JSON, `X-Signature` = hex HMAC-SHA1 of the body
(of its first element when batched)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.queries import profile_when, uid
from tests.support.stack import SOURCE_SECRET, WRITE_KEY, RunningStack
from tests.support.webhooks import (
    RUDDERSTACK_PATH,
    SEGMENT_PATH,
    compact,
    rudderstack_event,
    segment_message,
    signed,
    signed_batch,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def forwarder(running_stack: RunningStack) -> Iterator[httpx.Client]:
    """A client as the forwarders are: no write key of ours unless a test sends one."""
    with httpx.Client(base_url=running_stack.ingest_url, timeout=30) as client:
        yield client


def seg(kind: str, message_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """A Segment message of this test's own user only (the documented example's anonymousId
    would merge every test's users)."""
    return segment_message(kind, message_id, at=at, **{"anonymousId": None, **fields})


def rud(kind: str, message_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return rudderstack_event(kind, message_id, at=at, **{"anonymousId": None, **fields})


def moment() -> datetime:
    """An event time a minute ago (the forwarder delivers late: it is kept, not our receipt)."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def post_segment(client: httpx.Client, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    # No write key: a Segment webhook proves its source by its signature alone.
    response = client.post(SEGMENT_PATH, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def events_of(query: httpx.Client, user: str) -> list[dict[str, Any]]:
    response = query.get(f"/v1/users/{user}/events")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def daily(query: httpx.Client, user: str, event: str) -> list[dict[str, Any]]:
    params: dict[str, str | int] = {"event": event, "days": 2, "tz": "UTC"}
    response = query.get(f"/v1/users/{user}/events/daily", params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def count_on(rows: list[dict[str, Any]], at: datetime) -> int:
    return sum(row["count"] for row in rows if row["date"] == at.date().isoformat())


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_signed_segment_messages_build_the_profile(
    forwarder: httpx.Client, query: httpx.Client
) -> None:
    user, anonymous, at = uid("seg"), uid("anon"), moment()
    messages = [
        seg("page", f"{user}-p", at, userId=None, anonymousId=anonymous,
                        name="Pricing", properties={"path": "/pricing"}),
        seg("identify", f"{user}-i", at + timedelta(seconds=1), userId=user,
                        anonymousId=anonymous, traits={"email": f"{user}@example.com",
                                                       "plan": "pro"}),
        seg("track", f"{user}-t1", at + timedelta(seconds=2), userId=user,
                        event="Order Completed", properties={"total": 25.5}),
        seg("track", f"{user}-t2", at + timedelta(seconds=3), userId=user,
                        event="Order Completed", properties={"total": 10}),
        seg("track", f"{user}-x", at + timedelta(seconds=4), userId=user,
                        event="Experiment Viewed",
                        properties={"experiment_id": "checkout", "variation_name": "B"}),
    ]  # fmt: skip
    for message in messages:
        answer = post_segment(forwarder, *signed(message, SOURCE_SECRET))
        assert answer == {"success": True, "accepted": 1, "rejected": []}

    profile = profile_when(query, user, lambda p: p["event_count"] == 5)
    assert profile["email"] == f"{user}@example.com" and profile["custom"]["plan"] == "pro"
    assert profile["anonymous_ids"] == [anonymous]
    assert profile["event_totals"] == {
        "$page": 1,
        "$identify": 1,
        "Order Completed": 2,
        "Experiment Viewed": 1,
    }
    sequence = events_of(query, user)
    assert [e["messageId"] for e in sequence] == [m["messageId"] for m in reversed(messages)]
    # Each stored at the time Segment says it happened, not when it reached us.
    assert [stamp(e["timestamp"]) for e in sequence] == [
        at + timedelta(seconds=n) for n in (4, 3, 2, 1, 0)
    ]
    assert count_on(daily(query, user, "Order Completed"), at) == 2
    configs = query.get(f"/v1/users/{user}/configs").json()
    assert [(c["config"], c["variation"]) for c in configs] == [("checkout", "B")]


def test_a_batched_actions_request_is_taken_and_a_delete_in_it_refused(
    forwarder: httpx.Client, query: httpx.Client
) -> None:
    user, at = uid("batch"), moment()
    messages = [
        seg("identify", f"{user}-0", at, userId=user, traits={"plan": "team"}),
        *(
            seg("track", f"{user}-{n}", at + timedelta(seconds=n), userId=user,
                            event="Report Built", properties={"rows": n})
            for n in (1, 2, 3)
        ),
        {"type": "delete", "userId": user, "messageId": f"{user}-delete"},
    ]  # fmt: skip
    answer = post_segment(forwarder, *signed_batch(messages, SOURCE_SECRET))
    assert answer["accepted"] == 4
    assert [(r["index"], r["errors"][0]["field"]) for r in answer["rejected"]] == [(4, "type")]

    profile = profile_when(query, user, lambda p: p["event_count"] == 4)
    assert profile["custom"]["plan"] == "team"
    assert profile["event_totals"] == {"$identify": 1, "Report Built": 3}
    assert count_on(daily(query, user, "Report Built"), at) == 3


def test_a_badly_signed_webhook_is_401_and_stores_nothing(
    forwarder: httpx.Client, query: httpx.Client
) -> None:
    user, at = uid("forged"), moment()
    forged = seg("track", f"{user}-forged", at, userId=user, event="Forged")
    body, headers = signed(forged, "a-secret-nobody-configured")
    response = forwarder.post(SEGMENT_PATH, content=body, headers=headers)
    assert response.status_code == 401
    assert [e["field"] for e in response.json()["errors"]] == ["X-Signature"]
    unsigned = forwarder.post(
        SEGMENT_PATH,
        content=body,
    )
    assert unsigned.status_code == 401
    # A write key is not a signature either.
    with_key = forwarder.post(SEGMENT_PATH, content=body, auth=(WRITE_KEY, ""))
    assert with_key.status_code == 401

    # A good message for the same user, after the forged ones, on the same partition: once it
    # is applied, anything of the forged ones would have been too.
    good = seg("track", f"{user}-good", at, userId=user, event="Genuine")
    post_segment(forwarder, *signed(good, SOURCE_SECRET))
    profile = profile_when(query, user, lambda p: p["event_count"] >= 1)
    assert profile["event_totals"] == {"Genuine": 1}
    assert [e["messageId"] for e in events_of(query, user)] == [f"{user}-good"]


def test_a_rudderstack_webhook_builds_the_profile(
    forwarder: httpx.Client, query: httpx.Client
) -> None:
    user, at = uid("rudder"), moment()
    identify = rud("identify", f"{user}-i", at, userId=user)
    identify["context"]["traits"] = {"email": f"{user}@example.com", "plan": "free"}
    tracks = [
        rud("track", f"{user}-t{n}", at + timedelta(seconds=n), userId=user,
                          event="Product Viewed", properties={"sku": f"SKU-{n}"})
        for n in (1, 2)
    ]  # fmt: skip
    # webhook_v2 batching: the array as a string, the write key as a Bearer token.
    body = {"batch": compact([identify, *tracks]).decode()}
    response = forwarder.post(
        RUDDERSTACK_PATH, json=body, headers={"Authorization": f"Bearer {WRITE_KEY}"}
    )
    assert response.json() == {"success": True, "accepted": 3, "rejected": []}
    # The webhook destination: one event, unmodified, the key in the URL.
    page = rud("page", f"{user}-p", at + timedelta(seconds=3), userId=user,
                             name="Shop")  # fmt: skip
    response = forwarder.post(
        RUDDERSTACK_PATH,
        json=page,
        params={"writeKey": WRITE_KEY},
    )
    assert response.status_code == 200, response.text

    profile = profile_when(query, user, lambda p: p["event_count"] == 4)
    assert profile["email"] == f"{user}@example.com" and profile["custom"]["plan"] == "free"
    assert profile["event_totals"] == {"$identify": 1, "Product Viewed": 2, "$page": 1}
    sequence = events_of(query, user)
    assert [e["messageId"] for e in sequence] == [f"{user}-{s}" for s in ("p", "t2", "t1", "i")]
    assert sequence[0]["pageName"] == "Shop"
    assert stamp(sequence[-1]["timestamp"]) == at
    assert count_on(daily(query, user, "Product Viewed"), at) == 2


def test_a_resent_body_counts_once(forwarder: httpx.Client, query: httpx.Client) -> None:
    """Segment retries a 5xx for up to four hours, rudder-server too: the same body again,
    with the same messageIds, is stored once."""
    user, at = uid("resend"), moment()
    single = seg("track", f"{user}-1", at, userId=user, event="Paid")
    batch = [seg("track", f"{user}-{n}", at, userId=user, event="Paid") for n in (2, 3)]
    rudder = rud("track", f"{user}-4", at, userId=user, event="Paid")
    for _ in range(2):
        post_segment(forwarder, *signed(single, SOURCE_SECRET))
        post_segment(forwarder, *signed_batch(batch, SOURCE_SECRET))
        response = forwarder.post(RUDDERSTACK_PATH, json=[rudder], params={"writeKey": WRITE_KEY})
        assert response.status_code == 200, response.text
    # After the resends, on the same partition: once it is applied, so are they.
    last = seg("track", f"{user}-last", at, userId=user, event="Done")
    post_segment(forwarder, *signed(last, SOURCE_SECRET))

    profile = profile_when(query, user, lambda p: p["event_totals"].get("Done") == 1)
    assert profile["event_totals"] == {"Paid": 4, "Done": 1}
    assert len(events_of(query, user)) == 5
    assert count_on(daily(query, user, "Paid"), at) == 4
