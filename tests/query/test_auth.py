"""Every API route of the query service refuses a request without the admin token (or with a
wrong one), while the dashboard's own files, which hold no data, are public."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from query.app import create_app

SETTINGS = Settings.from_environment({"PS_ADMIN_TOKEN": "the-token"})


class Unreachable:
    """Stands in for Redis, ClickHouse and Kafka: a route that got past auth would touch it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a store was used before authentication ({name})")


def api_routes() -> list[tuple[str, str]]:
    """Every (method, path) the OpenAPI document lists, path parameters filled in."""
    app = create_app(SETTINGS, Unreachable(), Unreachable(), Unreachable())  # type: ignore[arg-type]
    found = []
    for path, operations in app.openapi()["paths"].items():
        found += [(method.upper(), re.sub(r"\{[^}]+\}", "x", path)) for method in operations]
    return sorted(found)


ROUTES = api_routes()


def test_every_api_route_is_listed() -> None:
    assert len(ROUTES) >= 14
    assert ("DELETE", "/v1/users/x") in ROUTES and ("POST", "/v1/properties") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic dGhlLXRva2VuOg=="])
async def test_api_routes_refuse_missing_or_wrong_tokens(
    method: str, path: str, authorization: str | None
) -> None:
    app = create_app(SETTINGS, Unreachable(), Unreachable(), Unreachable())  # type: ignore[arg-type]
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://query"
    ) as client:
        response = await client.request(method, path, headers=headers, json={})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_dashboard_shell_is_public_and_locked_down() -> None:
    app = create_app(SETTINGS, Unreachable(), Unreachable(), Unreachable())  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://query"
    ) as client:
        root = await client.get("/")
        page = await client.get("/dashboard/")
        script = await client.get("/dashboard/app.js")
    assert root.status_code == 307 and root.headers["location"] == "/dashboard/"
    assert page.status_code == 200 and "<title>Profilestream</title>" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert script.status_code == 200 and "sessionStorage" in script.text


class EmptyTokenStore:
    """Redis as the token look-up sees it when no token matches: HGET answers None."""

    def __init__(self) -> None:
        self.lookups = 0

    async def hget(self, key: str, field: str) -> None:
        self.lookups += 1

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a store was used before authentication ({name})")


async def test_only_tokens_shaped_like_stored_ones_are_looked_up() -> None:
    store = EmptyTokenStore()
    app = create_app(SETTINGS, store, Unreachable(), Unreachable())  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://query"
    ) as client:
        shaped = await client.get("/v1/me", headers={"Authorization": "Bearer ps_" + "a" * 43})
        other = await client.get("/v1/me", headers={"Authorization": "Bearer the-tokem"})
        bootstrap = await client.get("/v1/me", headers={"Authorization": "Bearer the-token"})
    assert shaped.status_code == other.status_code == 401
    assert shaped.json()["message"] == other.json()["message"] == "invalid token"
    assert store.lookups == 1
    assert bootstrap.json() == {"name": "admin", "role": "admin"}


async def test_a_missing_token_says_how_to_send_one() -> None:
    app = create_app(SETTINGS, Unreachable(), Unreachable(), Unreachable())  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://query"
    ) as client:
        response = await client.get("/v1/users")
    assert response.status_code == 401
    assert response.json()["message"] == "missing token: send Authorization: Bearer <token>"
