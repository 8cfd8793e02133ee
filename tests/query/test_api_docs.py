"""The query service's API docs served locally (infra/api_docs.py): Swagger UI at /docs and
ReDoc at /redoc, public like the OpenAPI document, every asset from the service itself (no
CDN); the API routes they describe still want a token."""

from __future__ import annotations

from typing import Any

import httpx

from infra.settings import Settings
from query.app import create_app
from tests.support.api_docs import check_local_docs
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_ADMIN_TOKEN": "the-token"})


class Unreachable:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a store was used ({name})")


async def test_docs_and_redoc_load_every_asset_from_the_query_service() -> None:
    app = create_app(SETTINGS, Unreachable(), Unreachable(), RecordingPublisher(SETTINGS))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        checked = await check_local_docs(client)
        schema = (await client.get("/openapi.json")).json()
        refused = await client.get("/v1/users/ada")
    assert {
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/redoc.standalone.js",
        "/openapi.json",
    } <= set(checked)
    # Swagger UI's "Authorize" knows the bearer scheme the API asks for
    assert any(
        s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values()
    )
    assert refused.status_code == 401
