"""What browser and mobile SDKs need of ingest's routes (unit level, fake publisher): Segment's
short paths and batch path, any Content-Type carrying JSON, RudderStack's beacon batch and
AnonymousId header, the settings document, CORS on every route (errors included), and write
keys limited to origins."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import httpx
import pytest

from infra.publisher import Position, Record
from infra.settings import Settings
from ingest.app import create_app
from ingest.auth import origin_problem
from ingest.routes import SHORT_PATHS, segment_settings
from schemas.events import Event
from tests.support.messages import produced_events
from tests.support.publishers import RecordingPublisher

SITE = "https://shop.example"
SETTINGS = Settings.from_environment(
    {
        "PS_WRITE_KEYS": "k1:web,k2:mobile",
        "PS_WRITE_KEY_ORIGINS": f"k1={SITE} http://127.0.0.1:9000",
        "PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "0",
    }
)


def client(publisher: RecordingPublisher, settings: Settings = SETTINGS) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings, publisher))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest")


def produced(publisher: RecordingPublisher) -> list[Event]:
    return produced_events(publisher.records, SETTINGS.events_topic)


@pytest.mark.parametrize(("short", "event_type"), sorted(SHORT_PATHS.items()))
async def test_segment_short_paths_are_the_typed_endpoints(short: str, event_type: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = {
        "userId": "ada",
        "event": "Clicked",
        "groupId": "g1",
        "previousId": "old",
        "writeKey": "k2",
    }
    async with client(publisher) as http:
        # analytics-next posts JSON as text/plain
        response = await http.post(
            f"/v1/{short}",
            content=httpx.Request("POST", "/", json=body).content,
            headers={"Content-Type": "text/plain"},
        )
    assert response.status_code == 200, response.text
    [event] = produced(publisher)
    assert event.type == event_type


async def test_the_short_batch_path_is_the_batch_endpoint() -> None:
    publisher = RecordingPublisher(SETTINGS)
    # the body analytics-next's batching mode and the mobile SDKs send
    body = {
        "writeKey": "k2",
        "sentAt": "2026-11-30T12:00:00.000Z",
        "batch": [
            {"type": "track", "userId": "ada", "event": "A", "messageId": "m1"},
            {"type": "screen", "userId": "ada", "name": "Home", "messageId": "m2"},
        ],
    }
    async with client(publisher) as http:
        response = await http.post("/v1/b", json=body)
    assert response.status_code == 200, response.text
    assert [e.message_id for e in produced(publisher)] == ["m1", "m2"]


async def test_rudderstack_beacon_takes_the_key_from_the_query_string() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = b'{"batch":[{"type":"track","anonymousId":"x","event":"B","messageId":"m3"}]}'
    async with client(publisher) as http:
        ok = await http.post(
            "/beacon/v1/batch?writeKey=k2", content=body, headers={"Content-Type": "text/plain"}
        )
        unknown = await http.post("/beacon/v1/batch?writeKey=nope", content=body)
        missing = await http.post("/beacon/v1/batch", content=body)
    assert ok.status_code == 200, ok.text
    assert (unknown.status_code, missing.status_code) == (401, 401)
    assert [e.source for e in produced(publisher)] == ["mobile"]


async def test_the_key_in_the_query_string_counts_only_for_beacons() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post("/v1/track?writeKey=k2", json={"userId": "u", "event": "E"})
    assert response.status_code == 401


async def test_rudderstack_anonymous_id_header_and_context_traits() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        response = await http.post(
            "/v1/identify",
            json={"userId": "ada", "context": {"traits": {"email": "a@example.com"}}},
            auth=("k2", ""),
            headers={"AnonymousId": base64.b64encode(b"anon-1").decode()},
        )
    assert response.status_code == 200, response.text
    [event] = produced(publisher)
    assert event.traits == {"email": "a@example.com"}
    assert event.anonymous_id == "anon-1"


async def test_the_settings_document_points_segment_sdks_here() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.get("/v1/projects/k2/settings")
        unknown = await http.get("/v1/projects/nope/settings")
    assert response.status_code == 200
    segment = response.json()["integrations"]["Segment.io"]
    assert (segment["apiKey"], segment["apiHost"], segment["protocol"]) == (
        "k2",
        "ingest/v1",
        "http",
    )
    assert response.json()["metrics"] == {"sampleRate": 0}
    assert set(response.json()["integrations"]) == {"Segment.io"}
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"


def test_the_settings_document_follows_the_public_url() -> None:
    segment = segment_settings("k", "https://ingest.example.com/collect/")["integrations"]
    assert segment["Segment.io"]["apiHost"] == "ingest.example.com/collect/v1"
    assert segment["Segment.io"]["protocol"] == "https"


async def test_a_configured_public_url_is_used_for_the_settings() -> None:
    settings = Settings.from_environment(
        {"PS_WRITE_KEYS": "k2", "PS_INGEST_PUBLIC_URL": "https://in.example.com"}
    )
    async with client(RecordingPublisher(settings), settings) as http:
        response = await http.get("/v1/projects/k2/settings")
    assert response.json()["integrations"]["Segment.io"]["apiHost"] == "in.example.com/v1"


# --- CORS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/track", "/v1/t", "/v1/b", "/v1/batch", "/beacon/v1/batch"])
async def test_preflight_is_answered_without_a_write_key(path: str) -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.options(
            path,
            headers={
                "Origin": "https://anywhere.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,anonymousid,sentat",
            },
        )
    assert 200 <= response.status_code < 300, response.text
    headers = response.headers
    assert headers["access-control-allow-origin"] == "https://anywhere.example"
    assert headers["access-control-allow-credentials"] == "true"
    # echoed, because a "*" never covers Authorization
    assert (
        headers["access-control-allow-headers"] == "authorization,content-type,anonymousid,sentat"
    )
    assert "POST" in headers["access-control-allow-methods"]
    assert int(headers["access-control-max-age"]) == SETTINGS.cors_max_age_s


@pytest.mark.parametrize(
    ("publisher", "body", "auth", "status"),
    [
        (RecordingPublisher(SETTINGS), {"userId": "u", "event": "E"}, ("k2", ""), 200),
        (RecordingPublisher(SETTINGS), {"userId": "u", "event": "E"}, None, 401),
        (RecordingPublisher(SETTINGS), {"userId": "u"}, ("k2", ""), 400),
        (RecordingPublisher(SETTINGS, fail=True), {"userId": "u", "event": "E"}, ("k2", ""), 503),
    ],
    ids=["200", "401", "400", "503"],
)
async def test_answers_and_errors_carry_cors_headers(
    publisher: RecordingPublisher, body: dict[str, str], auth: tuple[str, str] | None, status: int
) -> None:
    async with client(publisher) as http:
        response = await http.post(
            "/v1/track",
            json=body,
            auth=auth or httpx.USE_CLIENT_DEFAULT,  # the client has none
            headers={"Origin": "https://anywhere.example"},
        )
    assert response.status_code == status, response.text
    assert response.headers["access-control-allow-origin"] == "https://anywhere.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Retry-After" in response.headers["access-control-expose-headers"]
    assert "Origin" in response.headers["vary"]


class BrokenPublisher(RecordingPublisher):
    """A publisher with a bug: its error is none ingest expects, so the answer is a 500."""

    async def publish_with_positions(self, records: Sequence[Record]) -> list[Position]:
        raise RuntimeError("a bug")


async def test_an_internal_error_carries_cors_headers() -> None:
    # Starlette answers an unhandled error outside the middleware added by add_middleware; a
    # browser SDK must still be able to read the 500 (and retry) rather than see a CORS failure.
    transport = httpx.ASGITransport(
        app=create_app(SETTINGS, BrokenPublisher(SETTINGS)), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        response = await http.post(
            "/v1/track",
            json={"userId": "u", "event": "E"},
            auth=("k2", ""),
            headers={"Origin": "https://anywhere.example"},
        )
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "internal_error"
    assert response.headers["access-control-allow-origin"] == "https://anywhere.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in response.headers


async def test_oversized_and_rate_limited_answers_carry_cors_headers() -> None:
    limited = Settings.from_environment(
        {"PS_WRITE_KEYS": "k2", "PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "1"}
    )
    origin = {"Origin": "https://anywhere.example"}
    async with client(RecordingPublisher(limited), limited) as http:
        huge = await http.post(
            "/v1/track",
            content=b"x" * (limited.max_request_bytes + 1),
            auth=("k2", ""),
            headers=origin,
        )
        answers = [
            await http.post(
                "/v1/track", json={"userId": "u", "event": "E"}, auth=("k2", ""), headers=origin
            )
            for _ in range(4)
        ]
    assert huge.status_code == 413
    assert huge.headers["access-control-allow-origin"] == "https://anywhere.example"
    [too_many] = [r for r in answers if r.status_code == 429][:1]
    assert too_many.headers["access-control-allow-origin"] == "https://anywhere.example"
    assert too_many.headers["retry-after"]


# --- write keys limited to origins ------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "status"),
    [(SITE, 200), ("http://127.0.0.1:9000", 200), (None, 200), ("https://evil.example", 403)],
)
async def test_a_key_limited_to_origins(origin: str | None, status: int) -> None:
    publisher = RecordingPublisher(SETTINGS)
    headers = {"Origin": origin} if origin else {}
    async with client(publisher) as http:
        response = await http.post(
            "/v1/track", json={"userId": "u", "event": "E"}, auth=("k1", ""), headers=headers
        )
    assert response.status_code == status, response.text
    if status == 403:
        body = response.json()
        assert body["code"] == "forbidden"
        assert body["errors"] == [
            {
                "field": "Origin",
                "reason": "this write key is limited to other origins (PS_WRITE_KEY_ORIGINS)",
            }
        ]
        assert response.headers["access-control-allow-origin"] == origin  # readable by the page
        assert publisher.records == []


async def test_the_settings_document_of_a_limited_key_follows_its_origins() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        ok = await http.get("/v1/projects/k1/settings", headers={"Origin": SITE})
        refused = await http.get(
            "/v1/projects/k1/settings", headers={"Origin": "https://evil.example"}
        )
    assert (ok.status_code, refused.status_code) == (200, 403)


@pytest.mark.parametrize(
    ("origin", "allowed", "refused"),
    [
        (None, frozenset({SITE}), False),
        (SITE, None, False),
        (SITE, frozenset({"*"}), False),
        (SITE + "/", frozenset({SITE}), False),
        ("https://shop.example:8443", frozenset({SITE}), True),
        ("http://shop.example", frozenset({SITE}), True),
    ],
)
def test_origin_problem(origin: str | None, allowed: frozenset[str] | None, refused: bool) -> None:
    assert (origin_problem(origin, allowed) is not None) is refused


async def test_a_browser_gets_no_basic_challenge() -> None:
    # A challenge would make the browser prompt its user, then send what was typed by itself.
    async with client(RecordingPublisher(SETTINGS)) as http:
        from_page = await http.post(
            "/v1/track", json={"userId": "u", "event": "E"}, headers={"Origin": SITE}
        )
        from_server = await http.post("/v1/track", json={"userId": "u", "event": "E"})
    assert (from_page.status_code, from_server.status_code) == (401, 401)
    assert "www-authenticate" not in from_page.headers
    assert from_server.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("path", ["/v1/t", "/v1/b", "/beacon/v1/batch?writeKey=k1"])
async def test_origin_limits_hold_on_every_path(path: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = {"writeKey": "k1", "batch": [{"type": "track", "userId": "u", "event": "E"}]}
    body |= {"userId": "u", "event": "E"}
    async with client(publisher) as http:
        response = await http.post(path, json=body, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403, response.text
    assert publisher.records == []


async def test_the_beacon_route_keeps_the_size_limit() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post(
            "/beacon/v1/batch?writeKey=k2",
            content=b"x" * (SETTINGS.max_request_bytes + 1),
            headers={"Content-Type": "text/plain"},
        )
    assert response.status_code == 413


async def test_a_text_plain_batch_on_the_short_path() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = b'{"writeKey":"k2","batch":[{"type":"track","userId":"u","event":"E"}]}'
    async with client(publisher) as http:
        response = await http.post("/v1/b", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    assert len(produced(publisher)) == 1


async def test_the_settings_document_is_never_cached() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.get("/v1/projects/k2/settings")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("configured", "sent"),
    [
        ("HTTPS://Shop.Example:443/", "https://shop.example"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("https://shop.example", "https://SHOP.example:443"),
    ],
)
async def test_origins_match_however_they_are_written(configured: str, sent: str) -> None:
    settings = Settings.from_environment(
        {"PS_WRITE_KEYS": "k1", "PS_WRITE_KEY_ORIGINS": f"k1={configured}"}
    )
    async with client(RecordingPublisher(settings), settings) as http:
        response = await http.post(
            "/v1/track",
            json={"userId": "u", "event": "E"},
            auth=("k1", ""),
            headers={"Origin": sent},
        )
    assert response.status_code == 200, response.text
