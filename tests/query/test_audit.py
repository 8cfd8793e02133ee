"""The audit log: each kind of management write that succeeded leaves one entry naming the
token, the action, the target and the request's id; refused writes leave none; admins read it
newest first, page by page. Real Valkey (users' writes need the broker: the session stack)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from profilestore.layout import AUDIT_LOG
from query.audit import append_entry
from tests.support.operators import ADMIN_TOKEN, client_of, made_token, operators_app
from tests.support.stack import RunningStack


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def entries_for(admin: Any, target: str) -> list[dict[str, Any]]:
    """Every audit entry on `target`, newest first (read through the API, all pages)."""
    found: list[dict[str, Any]] = []
    before: str | None = None
    while True:
        params = {"limit": 500, **({"before": before} if before else {})}
        page = (await admin.get("/v1/audit", params=params)).json()
        found += [e for e in page["entries"] if e["target"] == target]
        before = page["next"]
        if before is None:
            return found


def request_id_of(response: httpx.Response) -> str:
    """The id the service gave the request (infra.http.install_request_ids)."""
    request_id: str = response.headers["X-Request-ID"]
    return request_id


async def test_property_and_token_writes_leave_one_entry_each(redis: Any) -> None:
    app = operators_app(redis)
    operator = unique("auditor")
    token = await made_token(app, operator, "admin")
    prop = unique("plan")
    made = unique("made")
    async with client_of(app, token) as admin:
        headers = {"X-Request-ID": unique("req")}
        writes = [
            (
                "property.create",
                prop,
                await admin.post(
                    "/v1/properties",
                    json={"name": prop, "type": "string", "description": "SECRET-BODY"},
                    headers=headers,
                ),
            ),
            (
                "property.update",
                prop,
                await admin.patch(
                    f"/v1/properties/{prop}", json={"max_length": 9}, headers=headers
                ),
            ),
            ("property.delete", prop, await admin.delete(f"/v1/properties/{prop}")),
            (
                "token.create",
                made,
                await admin.post("/v1/tokens", json={"name": made, "role": "analyst"}),
            ),
            ("token.revoke", made, await admin.delete(f"/v1/tokens/{made}")),
        ]
        for action, target, response in writes:
            assert response.is_success, (action, response.text)
            [entry] = [e for e in await entries_for(admin, target) if e["action"] == action]
            assert entry["operator"] == operator and entry["role"] == "admin"
            assert entry["request_id"] == request_id_of(response)
            if action.startswith("property.") and action != "property.delete":
                assert entry["request_id"] == headers["X-Request-ID"]  # the caller's own id
            assert entry["time"].endswith("+00:00")
            assert set(entry) == {
                "id",
                "time",
                "operator",
                "role",
                "action",
                "target",
                "request_id",
            }
        newest_first = [e["action"] for e in await entries_for(admin, prop)]
        assert newest_first == ["property.delete", "property.update", "property.create"]

    stored = b"".join(b"".join(f.values()) for _id, f in await redis.xrange(AUDIT_LOG))
    assert b"SECRET-BODY" not in stored
    made_token_value = writes[3][2].json()["token"]
    assert made_token_value.encode() not in stored


async def test_refused_writes_leave_no_entry(redis: Any) -> None:
    app = operators_app(redis)
    async with client_of(app, ADMIN_TOKEN) as admin:
        target = unique("nothing")
        refused = [
            await admin.patch(f"/v1/properties/{target}", json={"max_length": 3}),  # 404
            await admin.delete(f"/v1/properties/{target}"),  # 404
            await admin.post("/v1/properties", json={"name": target, "type": "nope"}),  # 400
            await admin.delete(f"/v1/tokens/{target}"),  # 404
        ]
        assert all(r.status_code in (400, 404) for r in refused), [r.text for r in refused]
        assert await entries_for(admin, target) == []


async def test_the_log_pages_newest_first(redis: Any) -> None:
    app = operators_app(redis)
    async with client_of(app, ADMIN_TOKEN) as admin:
        names = [unique(f"page{i}") for i in range(5)]
        for name in names:
            created = await admin.post("/v1/tokens", json={"name": name, "role": "analyst"})
            assert created.status_code == 201
        seen: list[dict[str, Any]] = []
        before = None
        while True:
            params = {"limit": 2, **({"before": before} if before else {})}
            page = (await admin.get("/v1/audit", params=params)).json()
            assert len(page["entries"]) <= 2
            seen += page["entries"]
            before = page["next"]
            if before is None:
                break
    ids = [tuple(map(int, e["id"].split("-"))) for e in seen]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    mine = [e["target"] for e in seen if e["target"] in names]
    assert mine == list(reversed(names))


@pytest.mark.parametrize("before", ["x", "1-", "-1", "1-2-3", "9" * 30 + "-0"])
async def test_a_bad_before_names_the_field(redis: Any, before: str) -> None:
    async with client_of(operators_app(redis), ADMIN_TOKEN) as admin:
        response = await admin.get("/v1/audit", params={"before": before})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["before"]


async def test_the_log_is_trimmed_near_its_cap(redis: Any) -> None:
    fields = {"time": "t", "operator": "o", "role": "admin", "action": "a", "target": "t"}
    for _ in range(300):
        await append_entry(redis, 50, {**fields, "request_id": ""})
    # Trimmed approximately (whole blocks of entries, cheap for Redis): near the cap, not at it
    assert 50 <= await redis.xlen(AUDIT_LOG) < 300


@pytest.mark.e2e
def test_user_writes_leave_one_entry_each(running_stack: RunningStack, query: httpx.Client) -> None:
    operator = unique("user-admin")
    token = query.post("/v1/tokens", json={"name": operator, "role": "admin"}).json()["token"]
    user_id = unique("audited")
    with httpx.Client(
        base_url=running_stack.query_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as admin:
        writes = [
            (
                "user.create",
                admin.post(
                    "/v1/users", json={"user_id": user_id, "email": f"{user_id}@example.com"}
                ),
            ),
            ("user.update", admin.patch(f"/v1/users/{user_id}", json={"first_name": "Ada"})),
            ("user.delete", admin.delete(f"/v1/users/{user_id}")),
        ]
    page = query.get("/v1/audit", params={"limit": 500}).json()
    entries = [e for e in page["entries"] if e["target"] == user_id]
    assert [e["action"] for e in entries] == ["user.delete", "user.update", "user.create"]
    for (action, response), entry in zip(writes, reversed(entries), strict=True):
        assert response.is_success, (action, response.text)
        assert entry["action"] == action and entry["operator"] == operator
        assert entry["request_id"] == request_id_of(response)
    refused = query.post("/v1/users", json={"user_id": user_id, "email": "not an email"})
    assert refused.status_code == 400
    after = query.get("/v1/audit", params={"limit": 500}).json()["entries"]
    assert len([e for e in after if e["target"] == user_id]) == 3
