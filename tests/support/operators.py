"""A query app whose only store is a real Redis (Valkey), for the operators' tests: tokens, roles,
the audit log and the throttle need no broker or ClickHouse, so those stand in as objects that
fail any test that touches them."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from infra.settings import Settings
from query.app import create_app

ADMIN_TOKEN = "operators-test-admin-token"


class Unreachable:
    """Stands in for a store the request must not touch."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the {self.what} was used ({name})")


def settings_for_operators(**overrides: str) -> Settings:
    return Settings.from_environment(
        {"PS_ADMIN_TOKEN": ADMIN_TOKEN, "PS_AUTH_FAILURES_PER_MINUTE": "0", **overrides}
    )


def operators_app(redis: Any, settings: Settings | None = None) -> FastAPI:
    """The query app on `redis`; ClickHouse and the broker fail the test if used."""
    return create_app(
        settings or settings_for_operators(),
        redis,
        Unreachable("ClickHouse"),
        Unreachable("broker"),  # type: ignore[arg-type]
    )


def client_of(app: FastAPI, token: str | None = None, address: str = "127.0.0.1") -> Any:
    """An httpx.AsyncClient on `app`, seen as coming from `address`, sending `token`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://query",
        headers=headers,
    )


async def made_token(app: FastAPI, name: str, role: str) -> str:
    """A new stored token of `role`, made by the bootstrap admin through the API."""
    async with client_of(app, ADMIN_TOKEN) as admin:
        response = await admin.post("/v1/tokens", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def sign_in_as(page: Any, base: str, token: str) -> None:
    """Sign the dashboard in `page` in with `token`; returns once the users page shows."""
    page.goto(f"{base}/dashboard/")
    page.get_by_label("operator token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Users").wait_for()
