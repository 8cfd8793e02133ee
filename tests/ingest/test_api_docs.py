"""Ingest's API docs served locally (infra/api_docs.py): Swagger UI at /docs and ReDoc at
/redoc, public, every script, stylesheet and icon from ingest itself (no CDN)."""

from __future__ import annotations

import httpx

from infra.settings import Settings
from ingest.app import create_app
from tests.support.api_docs import check_local_docs
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:web"})


async def test_docs_and_redoc_load_every_asset_from_ingest() -> None:
    transport = httpx.ASGITransport(app=create_app(SETTINGS, RecordingPublisher(SETTINGS)))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        checked = await check_local_docs(client)
        schema = (await client.get("/openapi.json")).json()
    assert {
        "/docs-assets/swagger-ui-bundle.js",
        "/docs-assets/swagger-ui.css",
        "/docs-assets/redoc.standalone.js",
        "/docs-assets/favicon.png",
        "/openapi.json",
    } <= set(checked)
    assert "/v1/batch" in schema["paths"]
