"""The browser SDK's routes (unit level, fake publisher): the versioned file with its cache
headers, the unversioned URL's redirect, unknown versions, and one version in both files.
Its behaviour in a browser is tested in test_sdk_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from infra.settings import Settings
from ingest import sdk
from ingest.app import create_app
from ingest.sdk import SDK_SOURCE, SDK_VERSION
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:web"})
SDK_FILE = Path(sdk.__file__).parent / "sdk" / "profilestream.js"


def client(publisher: RecordingPublisher | None = None) -> httpx.AsyncClient:
    app = create_app(SETTINGS, publisher or RecordingPublisher(SETTINGS))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")


async def test_the_versioned_file_is_javascript_cached_for_a_year_without_a_key() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        response = await http.get(f"/sdk/profilestream-{SDK_VERSION}.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == SDK_FILE.read_bytes() == SDK_SOURCE
    assert publisher.records == []


async def test_the_unversioned_url_redirects_to_the_current_version_for_five_minutes() -> None:
    async with client() as http:
        response = await http.get("/sdk/profilestream.js")
        assert response.status_code == 302
        assert response.headers["cache-control"] == "public, max-age=300"
        target = response.next_request
        assert target is not None
        assert target.url.path == f"/sdk/profilestream-{SDK_VERSION}.js"
        followed = await http.get("/sdk/profilestream.js", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.content == SDK_SOURCE
    assert followed.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_an_unknown_version_is_404() -> None:
    async with client() as http:
        other = await http.get("/sdk/profilestream-0.0.0-not-released.js")
        empty = await http.get("/sdk/profilestream-.js")
        sibling = await http.get("/sdk/other.js")
    assert (other.status_code, empty.status_code, sibling.status_code) == (404, 404, 404)
    assert other.json()["code"] == "not_found"
    assert SDK_VERSION in other.json()["message"]


async def test_the_sdk_routes_are_not_in_the_api_document() -> None:
    async with client() as http:
        schema = (await http.get("/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith("/sdk")]


def test_the_file_states_the_version_ingest_serves_it_under() -> None:
    found = re.findall(r'^\s*const VERSION = "([^"]+)";', SDK_FILE.read_text(), re.MULTILINE)
    assert found == [SDK_VERSION]
