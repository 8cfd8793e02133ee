"""The profile management API on the real embedded stack: property definitions, create, update,
list, configs, delete, identity merge, read-your-writes, and SDK writes ordered by event time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.queries import profile_when, uid

pytestmark = pytest.mark.e2e


def assert_error(response: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and body["message"]
    named = [e["field"] for e in body["errors"]]
    for field in fields:
        assert field in named, body
    return body


def define(query: httpx.Client, **definition: Any) -> str:
    name = f"{definition.pop('prefix', 'p')}_{uuid.uuid4().hex[:8]}"
    response = query.post("/v1/properties", json={"name": name, **definition})
    assert response.status_code == 201, response.text
    return name


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_property_definitions_crud_and_checks(query: httpx.Client) -> None:
    name = define(query, type="enum", allowed_values=["free", "pro"], description="the plan")
    catalog = query.get("/v1/properties").json()
    assert {d["name"] for d in catalog["default"]} >= {"customer_id", "email", "phone"}
    custom = {d["name"]: d for d in catalog["custom"]}
    assert custom[name]["allowed_values"] == ["free", "pro"]
    assert_error(query.post("/v1/properties", json={"name": name, "type": "string"}), 409, "name")
    assert_error(query.post("/v1/properties", json={"name": "email", "type": "string"}), 409)
    bad = {"name": "seats", "type": "integer", "min": 5, "max": 1}
    assert_error(query.post("/v1/properties", json=bad), 400, "min")
    assert_error(
        query.post("/v1/properties", json={"name": "x", "type": "string", "pattern": "("}),
        400,
        "pattern",
    )
    assert_error(query.post("/v1/properties", json={"name": "x", "type": "colour"}), 400, "type")
    patched = query.patch(
        f"/v1/properties/{name}", json={"allowed_values": ["free", "pro", "team"]}
    )
    assert patched.status_code == 200 and patched.json()["allowed_values"][-1] == "team"
    assert query.delete(f"/v1/properties/{name}").status_code == 204
    assert_error(query.get(f"/v1/properties/{name}"), 404)


def test_create_user_checks_every_field_and_answers_with_the_profile(query: httpx.Client) -> None:
    plan = define(query, type="enum", allowed_values=["free", "pro"])
    seats = define(query, type="integer", min=1, max=100)
    bad = {"email": "nope", "birthday": "1990-13-01", "custom": {plan: "gold", seats: 0}}
    body = assert_error(
        query.post("/v1/users", json=bad),
        400,
        "email",
        "birthday",
        f"custom.{plan}",
        f"custom.{seats}",
        "customer_id",  # the only identity property given is not valid
    )
    assert len(body["errors"]) == 5
    assert_error(query.post("/v1/users", json={"first_name": "Ada"}), 400, "customer_id")
    assert_error(query.post("/v1/users", json={"email": "a@b.co", "shoe": 1}), 400, "shoe")

    customer = f"C-{uuid.uuid4().hex[:8]}"
    created = query.post(
        "/v1/users",
        json={
            "customer_id": customer,
            "email": "ada@example.com",
            "first_name": "Ada",
            "custom": {plan: "pro", seats: 3},
            "tags": ["vip"],
        },
    )
    assert created.status_code == 201, created.text
    profile = created.json()
    assert profile["customer_id"] == customer and profile["first_name"] == "Ada"
    assert profile["custom"] == {plan: "pro", seats: 3}
    assert profile["tags"] == ["vip"] and profile["status"] == "active"
    assert profile["user_id"] and profile["created_at"]
    # read-your-writes: the write's position, and a read that waits for it
    position = created.headers["X-Profilestream-Position"]
    again = query.get(f"/v1/users/{profile['user_id']}", params={"after": position})
    assert again.status_code == 200 and again.json()["custom"][plan] == "pro"
    assert_error(query.get("/v1/users/x", params={"after": "soon"}), 400, "after")
    # the customer id is unique
    dup = query.post("/v1/users", json={"customer_id": customer})
    assert_error(dup, 409, "customer_id")
    own_id = query.post("/v1/users", json={"user_id": profile["user_id"], "phone": "+4712345"})
    assert_error(own_id, 409, "user_id")


def test_update_status_properties_and_tags(query: httpx.Client) -> None:
    plan = define(query, type="enum", allowed_values=["free", "pro"])
    user = uid()
    created = query.post(
        "/v1/users", json={"user_id": user, "email": "grace@example.com", "tags": ["a", "b"]}
    )
    assert created.status_code == 201, created.text
    patched = query.patch(
        f"/v1/users/{user}",
        json={
            "status": "disabled",
            "last_name": "Hopper",
            "custom": {plan: "free"},
            "tags_add": ["c"],
            "tags_remove": ["a"],
        },
    )
    assert patched.status_code == 200, patched.text
    profile = patched.json()
    assert profile["status"] == "disabled" and profile["last_name"] == "Hopper"
    assert profile["tags"] == ["b", "c"] and profile["custom"] == {plan: "free"}
    assert_error(query.patch(f"/v1/users/{user}", json={"custom": {plan: "gold"}}), 400)
    assert_error(query.patch(f"/v1/users/{user}", json={"email": None}), 400, "customer_id")
    assert_error(query.patch(f"/v1/users/{user}", json={"status": "gone"}), 400, "status")
    assert_error(query.patch(f"/v1/users/{uid()}", json={"status": "active"}), 404)
    unset = query.patch(f"/v1/users/{user}", json={"last_name": None, "status": "active"})
    assert unset.json()["last_name"] is None and unset.json()["status"] == "active"


def test_list_search_filter_and_paginate(query: httpx.Client) -> None:
    tag = f"t{uuid.uuid4().hex[:6]}"
    users = []
    for i in range(5):
        user = uid()
        body = {
            "user_id": user,
            "customer_id": f"{tag}-{i}",
            "first_name": "Lin" if i % 2 else "Kay",
            "tags": [tag],
        }
        assert query.post("/v1/users", json=body).status_code == 201
        users.append(user)
    query.patch(f"/v1/users/{users[0]}", json={"status": "disabled"}).raise_for_status()

    listed = query.get("/v1/users", params={"tag": tag}).json()["users"]
    # most recently active first: creation order reversed
    assert [u["user_id"] for u in listed] == users[::-1]
    disabled = query.get("/v1/users", params={"tag": tag, "status": "disabled"}).json()
    assert [u["user_id"] for u in disabled["users"]] == [users[0]]
    by_customer = query.get("/v1/users", params={"q": f"{tag}-3"}).json()["users"]
    assert by_customer[0]["user_id"] == users[3]
    by_prefix = query.get("/v1/users", params={"q": tag.upper(), "tag": tag}).json()["users"]
    assert len(by_prefix) == 5

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"tag": tag, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = query.get("/v1/users", params=params).json()
        seen += [u["user_id"] for u in page["users"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == users[::-1]
    assert_error(query.get("/v1/users", params={"cursor": "junk"}), 400, "cursor")


def test_sdk_writes_are_ordered_by_event_time_and_violations_are_visible(
    ingest: httpx.Client, query: httpx.Client
) -> None:
    seats = define(query, type="integer", min=1, max=10)
    user = uid()
    now = datetime.now(UTC)
    batch = [
        {
            "type": "identify",
            "userId": user,
            "timestamp": iso(now),
            "traits": {"plan": "pro", "$set_once": {"source": "ads"}},
        },
        # older writes arriving later: they never replace the newer values
        {
            "type": "identify",
            "userId": user,
            "timestamp": iso(now - timedelta(hours=1)),
            "traits": {"plan": "free", "$set_once": {"source": "organic"}},
        },
        {
            "type": "identify",
            "userId": user,
            "timestamp": iso(now),
            "traits": {seats: 50, "$increment": {"logins": 2}, "$union": {"devices": ["ios"]}},
        },
    ]
    for event in batch:
        ingest.post("/v1/identify", json=event).raise_for_status()
    profile = profile_when(query, user, lambda p: p["event_count"] == 3)
    # set_once keeps the earliest set_once: the older one arrived later but wins
    assert profile["custom"] == {
        "plan": "pro",
        "source": "organic",
        "logins": 2,
        "devices": ["ios"],
    }
    assert [(r["field"], r["reason"]) for r in profile["rejections"]] == [
        (f"traits.{seats}", "is greater than max 10")
    ]
    assert len(query.get(f"/v1/users/{user}/events").json()["events"]) == 3


def test_configs_from_served_variations(ingest: httpx.Client, query: httpx.Client) -> None:
    user = uid()
    now = datetime.now(UTC)
    served = [
        ("$config_served", {"config": "checkout", "variation": "A"}, now - timedelta(hours=2)),
        ("$config_served", {"config": "checkout", "variation": "B"}, now - timedelta(hours=1)),
        ("Experiment Viewed", {"experiment_id": "exp-1", "variation_name": "big"}, now),
    ]
    for name, props, moment in served:
        body = {"userId": user, "event": name, "properties": props, "timestamp": iso(moment)}
        ingest.post("/v1/track", json=body).raise_for_status()
    profile_when(query, user, lambda p: p["event_count"] == 3)
    configs = {c["config"]: c for c in query.get(f"/v1/users/{user}/configs").json()}
    checkout = configs["checkout"]
    assert checkout["variation"] == "B" and checkout["times_served"] == 2
    assert [h["variation"] for h in checkout["history"]] == ["A", "B"]
    assert checkout["first_served"] < checkout["last_served"]
    assert configs["exp-1"]["variation"] == "big"


def test_merge_keeps_every_event_once_in_sequence_and_daily_counts(
    ingest: httpx.Client, query: httpx.Client
) -> None:
    user, anon = uid(), uid("anon")
    event_name = f"Viewed {uuid.uuid4().hex[:6]}"
    for _ in range(2):
        ingest.post("/v1/track", json={"anonymousId": anon, "event": event_name}).raise_for_status()
    profile_when(query, anon, lambda p: p["event_count"] == 2)
    ingest.post(
        "/v1/identify", json={"userId": user, "anonymousId": anon, "traits": {"email": "m@x.io"}}
    ).raise_for_status()
    ingest.post("/v1/track", json={"anonymousId": anon, "event": event_name}).raise_for_status()
    ingest.post("/v1/track", json={"userId": user, "event": event_name}).raise_for_status()
    profile = profile_when(query, user, lambda p: p["event_count"] == 5)
    assert profile["anonymous_ids"] == [anon] and profile["email"] == "m@x.io"
    events = query.get(f"/v1/users/{user}/events").json()["events"]
    assert len(events) == 5 and len({e["messageId"] for e in events}) == 5
    daily = query.get(f"/v1/users/{user}/events/daily", params={"event": event_name, "days": 2})
    assert sum(row["count"] for row in daily.json()) == 4
    everyone = query.get("/v1/events/daily", params={"event": event_name, "days": 2}).json()
    assert sum(row["count"] for row in everyone) == 4


def test_delete_removes_the_user_from_every_query(
    ingest: httpx.Client, query: httpx.Client
) -> None:
    user, anon = uid(), uid("anon")
    event_name = f"Deleted {uuid.uuid4().hex[:6]}"
    ingest.post("/v1/track", json={"anonymousId": anon, "event": event_name}).raise_for_status()
    ingest.post("/v1/identify", json={"userId": user, "anonymousId": anon}).raise_for_status()
    for _ in range(3):
        ingest.post("/v1/track", json={"userId": user, "event": event_name}).raise_for_status()
    keeper = uid()
    ingest.post("/v1/track", json={"userId": keeper, "event": event_name}).raise_for_status()
    profile_when(query, user, lambda p: p["event_count"] == 5)
    profile_when(query, keeper, lambda p: p["event_count"] == 1)
    everyone = query.get("/v1/events/daily", params={"event": event_name, "days": 2}).json()
    assert sum(row["count"] for row in everyone) == 5

    deleted = query.delete(f"/v1/users/{user}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": user}
    assert_error(query.get(f"/v1/users/{user}"), 404)
    assert_error(query.get(f"/v1/users/{anon}"), 404)
    assert_error(query.get(f"/v1/users/{user}/events"), 404)
    assert_error(query.get(f"/v1/users/{user}/events/daily"), 404)
    everyone = query.get("/v1/events/daily", params={"event": event_name, "days": 2}).json()
    assert sum(row["count"] for row in everyone) == 1
    listed = query.get("/v1/users", params={"q": user}).json()["users"]
    assert listed == []
    assert_error(query.delete(f"/v1/users/{user}"), 404)
