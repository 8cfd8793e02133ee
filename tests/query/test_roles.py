"""Roles over every route the query app has (enumerated, so a new write route without a role
check fails here): an analyst is refused every write and the operators' own management with 403
naming the role needed, and gets every other read."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from query.app import create_app
from tests.support.operators import Unreachable, client_of, made_token, operators_app
from tests.support.stack import RunningStack

# Reads only admins may make: who the operators are and what they did.
ADMIN_READS = {"/v1/tokens", "/v1/audit"}


def api_routes() -> list[tuple[str, str]]:
    """Every (method, path template) of the OpenAPI document."""
    app = create_app(
        Settings.from_environment({}),
        Unreachable("Redis"),  # type: ignore[arg-type]
        Unreachable("ClickHouse"),
        Unreachable("broker"),  # type: ignore[arg-type]
    )
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    )


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


ROUTES = api_routes()
ADMIN_ROUTES = [(m, p) for m, p in ROUTES if m != "GET" or p in ADMIN_READS]
READ_ROUTES = [(m, p) for m, p in ROUTES if (m, p) not in ADMIN_ROUTES]


def test_the_enumeration_sees_the_writes_and_reads() -> None:
    assert {("POST", "/v1/users"), ("DELETE", "/v1/users/{user_id}")} <= set(ADMIN_ROUTES)
    assert {("PATCH", "/v1/properties/{name}"), ("POST", "/v1/tokens")} <= set(ADMIN_ROUTES)
    assert {("GET", "/v1/users"), ("GET", "/v1/me")} <= set(READ_ROUTES)


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_an_analyst_is_refused_every_write(redis: Any, method: str, path: str) -> None:
    """Refused before any store but the token's is touched (ClickHouse and the broker are
    objects that fail the test when used)."""
    app = operators_app(redis)
    token = await made_token(app, f"analyst-{uuid.uuid4().hex[:8]}", "analyst")
    async with client_of(app, token) as analyst:
        response = await analyst.request(method, filled(path), json={})
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == "forbidden" and "admin role" in body["message"]


@pytest.mark.e2e
def test_an_analyst_gets_every_read(running_stack: RunningStack, query: httpx.Client) -> None:
    name = f"reader-{uuid.uuid4().hex[:8]}"
    token = query.post("/v1/tokens", json={"name": name, "role": "analyst"}).json()["token"]
    with httpx.Client(
        base_url=running_stack.query_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as analyst:
        statuses = {path: analyst.get(filled(path)).status_code for _m, path in READ_ROUTES}
    refused = {path: status for path, status in statuses.items() if status in (401, 403)}
    assert refused == {}, statuses
    assert statuses["/v1/users"] == 200 and statuses["/v1/me"] == 200
