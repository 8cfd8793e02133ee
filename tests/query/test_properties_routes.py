"""/v1/properties against a real Valkey: the catalog the dashboard renders the default
properties from (labels, identity, the constraint/type matrix), and custom definitions kept
through profilestore.definitions."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, get_args

import httpx
import pytest

from infra.settings import Settings
from query.app import create_app
from schemas.properties import (
    CONSTRAINT_TYPES,
    DEFAULT_PROPERTIES,
    IDENTITY_PROPERTIES,
    PropertyType,
)

pytestmark = pytest.mark.integration

TOKEN = "the-token"


class Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the properties routes touched ClickHouse or Kafka ({name})")


@pytest.fixture
async def api(redis: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_environment({"PS_ADMIN_TOKEN": TOKEN})
    unused: Any = Unused()
    app = create_app(settings, redis, unused, unused)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://q", headers=headers) as c:
        yield c


async def test_the_catalog_serves_the_default_properties_with_labels(
    api: httpx.AsyncClient,
) -> None:
    body = (await api.get("/v1/properties")).json()
    assert [d["name"] for d in body["default"]] == list(DEFAULT_PROPERTIES)
    assert {d["name"]: d["label"] for d in body["default"]}["first_name"] == "First name"
    assert [d["name"] for d in body["default"] if d["identity"]] == list(IDENTITY_PROPERTIES)
    assert body["constraints"] == {k: list(v) for k, v in CONSTRAINT_TYPES.items()}
    assert body["types"] == list(get_args(PropertyType))


async def test_one_default_property_keeps_its_label(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/properties/email")
    assert response.status_code == 200
    assert response.json()["label"] == "Email" and response.json()["identity"] is True


async def test_custom_definitions_round_trip(api: httpx.AsyncClient) -> None:
    name = f"plan{uuid.uuid4().hex[:8]}"
    created = await api.post(
        "/v1/properties", json={"name": name, "type": "enum", "allowed_values": ["a", "b"]}
    )
    assert created.status_code == 201, created.text
    again = await api.post("/v1/properties", json={"name": name, "type": "string"})
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "name"
    fetched = (await api.get(f"/v1/properties/{name}")).json()
    assert fetched["allowed_values"] == ["a", "b"] and "label" not in fetched
    patched = await api.patch(f"/v1/properties/{name}", json={"allowed_values": ["a", "b", "c"]})
    assert patched.json()["allowed_values"] == ["a", "b", "c"]
    listed = (await api.get("/v1/properties")).json()["custom"]
    assert any(d["name"] == name and d["allowed_values"] == ["a", "b", "c"] for d in listed)
    assert (await api.delete(f"/v1/properties/{name}")).status_code == 204
    assert (await api.get(f"/v1/properties/{name}")).status_code == 404
    assert (await api.delete(f"/v1/properties/{name}")).status_code == 404


async def test_a_default_property_cannot_be_redefined(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/properties", json={"name": "email", "type": "string"})
    assert response.status_code == 409
    assert (await api.patch("/v1/properties/email", json={"max_length": 5})).status_code == 400
