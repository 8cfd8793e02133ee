"""ingest/providers/posthog/routes.py with a recording publisher (no broker): every path and
encoding the PostHog SDKs use, the token wherever PostHog looks for it, the replies the SDKs
need, errors in PostHog's shape with our `errors`, and valid events kept beside bad ones."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from infra.settings import Settings
from ingest.providers.posthog.routes import MAX_EVENTS
from tests.ingest.providers.posthog.captures import JS_SDK, PYTHON_SDK, batches, requests
from tests.support.ingest_app import ingest_client, published_events, published_rejections
from tests.support.publishers import RecordingPublisher

KEY = "phc_testkey123"
SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": f"{KEY}:web,phc_jskey:js,other-key:other"})
EVENT_PATHS = ["/e", "/i/v0/e", "/capture", "/track", "/engage", "/batch"]


def client(publisher: RecordingPublisher) -> httpx.AsyncClient:
    return ingest_client(publisher, base_url="http://ingest/posthog")


def one_event(**extra: Any) -> dict[str, Any]:
    return {
        "event": "clicked",
        "distinct_id": "u1",
        "uuid": "11111111-0000-0000-0000-0000000000a1",
    } | extra


def batch_body(*events: dict[str, Any], key: str = KEY) -> dict[str, Any]:
    return {"api_key": key, "batch": list(events), "sent_at": "2026-12-01T21:41:22Z"}


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": 1}


def assert_posthog_error(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert {"type", "code", "detail", "attr", "errors"} <= set(body), body
    assert any(e["field"] == field for e in body["errors"]), body
    assert all(e["reason"] for e in body["errors"])
    return dict(body)


# --- the captured SDK requests, replayed --------------------------------------------------------


async def test_posthog_js_gzip_as_text_plain_with_no_query_string() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        for body in batches(JS_SDK):
            raw = gzip.compress(json.dumps(body).encode())
            assert_ok(await http.post("/e/", content=raw, headers={"content-type": "text/plain"}))
    events = published_events(publisher)
    assert len(events) == 8 and {e.source for e in events} == {"js"}
    assert published_rejections(publisher) == []


async def test_posthog_python_gzip_batch() -> None:
    publisher = RecordingPublisher(SETTINGS)
    (body,) = batches(PYTHON_SDK)
    async with client(publisher) as http:
        response = await http.post(
            "/batch/",
            content=gzip.compress(json.dumps(body).encode()),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    assert_ok(response)
    events = published_events(publisher)
    assert [e.message_id for e in events] == [e["uuid"] for e in body["batch"]]
    assert {e.type for e in events} == {"track", "identify", "alias", "group"}


async def test_flags_calls_of_both_sdks_get_no_flags_and_no_quota_keys() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        for captured in requests(PYTHON_SDK) + requests(JS_SDK):
            if captured.path != "/flags/":
                continue
            response = await http.post(
                "/flags/",
                params={"v": captured.query["v"][0]},
                content=gzip.compress(json.dumps(captured.body).encode()),
                headers={"content-type": "text/plain"},
            )
            assert response.status_code == 200, response.text
            reply = response.json()
            assert reply["flags"] == {} and reply["featureFlags"] == {}
            assert reply["errorsWhileComputingFlags"] is False and reply["requestId"]
            assert not {k for k in reply if "quota" in k.lower()}
            assert "supportedCompression" not in reply


# --- paths, methods, encodings ------------------------------------------------------------------


@pytest.mark.parametrize("path", EVENT_PATHS)
@pytest.mark.parametrize("slash", ["", "/"])
async def test_every_capture_path_with_and_without_slash(path: str, slash: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        assert_ok(await http.post(path + slash, json=batch_body(one_event())))
        data = base64.b64encode(json.dumps(batch_body(one_event(uuid="g"))).encode()).decode()
        assert_ok(await http.get(path + slash, params={"data": data}))
    assert [e.message_id for e in published_events(publisher)] == [one_event()["uuid"], "g"]


async def test_whole_body_base64_and_base64_of_gzip() -> None:
    publisher = RecordingPublisher(SETTINGS)
    raw = json.dumps(batch_body(one_event())).encode()
    async with client(publisher) as http:
        assert_ok(await http.post("/e/", content=base64.b64encode(raw)))
        assert_ok(
            await http.post(
                "/e/",
                params={"compression": "base64"},
                content=base64.b64encode(gzip.compress(raw)),
            )
        )
    assert len(published_events(publisher)) == 2


async def test_short_base64_body_ending_in_padding_is_not_taken_for_a_form() -> None:
    publisher = RecordingPublisher(SETTINGS)
    raw = json.dumps({"event": "e", "distinct_id": "u", "token": KEY}).encode()
    encoded = base64.b64encode(raw + b" " * (-len(raw) % 3 + 1))  # ends in "="
    assert encoded.endswith(b"=")
    async with client(publisher) as http:
        assert_ok(await http.post("/e/", content=encoded))
    assert len(published_events(publisher)) == 1


async def test_beacon_form_with_base64_data() -> None:
    # posthog-js's sendBeacon: ?compression=base64, body data=<urlencoded base64(JSON)>
    publisher = RecordingPublisher(SETTINGS)
    data = base64.b64encode(json.dumps(batch_body(one_event())).encode()).decode()
    async with client(publisher) as http:
        response = await http.post(
            "/e/",
            params={"compression": "base64"},
            content=f"data={quote(data)}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert_ok(response)
        # a decoder that turned '+' into ' ' is forgiven, and so is a form sent as text/plain
        spaced = f"data={data.replace('+', ' ')}&compression=base64"
        assert_ok(await http.post("/e/", content=spaced, headers={"content-type": "text/plain"}))
    assert len(published_events(publisher)) == 2


async def test_legacy_bare_array_gzip_js_with_the_token_in_properties() -> None:
    publisher = RecordingPublisher(SETTINGS)
    events = [
        {"event": "a", "properties": {"distinct_id": "d", "token": KEY}, "offset": 20},
        {"event": "b", "properties": {"distinct_id": "d", "token": KEY}, "offset": 10},
    ]
    async with client(publisher) as http:
        response = await http.post(
            "/e/",
            params={"ip": "1", "_": "1796161410702", "ver": "1.39.0", "compression": "gzip-js"},
            content=gzip.compress(json.dumps(events).encode()),
            headers={"content-type": "text/plain"},
        )
    assert_ok(response)
    assert [e.event for e in published_events(publisher)] == ["a", "b"]


@pytest.mark.parametrize("where", ["token", "$token", "api_key"])
async def test_single_event_with_its_own_token(where: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        assert_ok(await http.post("/capture/", json=one_event(**{where: KEY})))
    assert [e.source for e in published_events(publisher)] == ["web"]


async def test_batch_token_key_instead_of_api_key() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        assert_ok(await http.post("/batch", json={"token": KEY, "batch": [one_event()]}))
    assert len(published_events(publisher)) == 1


async def test_beacon_query_is_answered_204() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        response = await http.post("/e/", params={"beacon": "1"}, json=batch_body(one_event()))
    assert response.status_code == 204 and response.content == b""
    assert len(published_events(publisher)) == 1


async def test_batch_takes_more_than_the_2_mb_of_the_event_paths() -> None:
    big = [one_event(uuid=f"id-{n}", properties={"pad": "x" * 20_000}) for n in range(150)]
    body = json.dumps(batch_body(*big)).encode()
    assert 2 * 1024 * 1024 < len(body) < 20 * 1024 * 1024
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        assert_ok(await http.post("/batch/", content=body))
        too_large = await http.post("/e/", content=body)
    assert_posthog_error(too_large, 413, "body")
    assert len(published_events(publisher)) == 150


async def test_more_events_than_a_request_may_carry_is_413_naming_the_batch() -> None:
    tiny = [{"event": "e", "distinct_id": "d"} for _ in range(MAX_EVENTS + 1)]
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        refused = await http.post("/batch/", json=batch_body(*tiny))
        assert_ok(await http.post("/batch/", json=batch_body(*tiny[:MAX_EVENTS])))
    assert_posthog_error(refused, 413, "batch")
    assert len(published_events(publisher)) == MAX_EVENTS


# --- tokens ---------------------------------------------------------------------------------


async def test_unknown_token_is_401_in_posthogs_shape() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        response = await http.post("/e/", json=batch_body(one_event(), key="phc_nope"))
    body = assert_posthog_error(response, 401, "api_key")
    assert body["type"] == "authentication_error" and body["detail"]
    assert publisher.records == []


async def test_missing_token_is_401() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post("/e/", json=[one_event()])
    assert_posthog_error(response, 401, "api_key")


async def test_events_with_different_tokens_are_refused_whole() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        response = await http.post(
            "/e/", json=[one_event(token=KEY), one_event(token="other-key", uuid="2")]
        )
    body = assert_posthog_error(response, 401, "token")
    assert body["code"] == "multiple_tokens"
    assert publisher.records == []


# --- bad input: 4xx in PostHog's shape, never 5xx, valid events kept ----------------------------


@pytest.mark.parametrize(
    ("content", "params", "field"),
    [
        (b"\x1f\x8b\x08\x00garbage", {}, "body"),  # bad gzip
        (gzip.compress(b'{"api_key": "k", "batch": [' + b"1," * 1000)[:-12], {}, "body"),
        (b"!!! not base64 !!!", {}, "body"),
        (b'{"api_key": ', {}, "body"),
        (base64.b64encode(b"{broken"), {}, "body"),
        (b"data=%%%", {}, "data"),
        (b"compression=base64&ver=1", {}, "body"),
        (b'{"batch": "x", "api_key": "k"}', {}, "batch"),
        (b'{"batch": [], "api_key": "k"}', {}, "batch"),
        (b"42", {}, "body"),
        (b"N4IgLgngDgpiBcIDGAbAhgZx", {"compression": "lz64"}, "compression"),
        (b"{}", {"compression": "brotli"}, "compression"),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(
    content: bytes, params: dict[str, str], field: str
) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        response = await http.post("/e/", content=content, params=params)
    assert_posthog_error(response, 400, field)
    assert publisher.records == []


async def test_gzip_bomb_is_413_not_inflated_past_the_limit() -> None:
    bomb = gzip.compress(b"[" + b" " * (30 * 1024 * 1024) + b"]")
    assert len(bomb) < 2 * 1024 * 1024
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post("/e/", content=bomb, headers={"content-type": "text/plain"})
    assert_posthog_error(response, 413, "body")


async def test_get_without_data_and_a_form_without_data_are_400() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.get("/e/")
        form = await http.post(
            "/e/",
            content="compression=base64&ver=1",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert_posthog_error(response, 400, "data")
    assert_posthog_error(form, 400, "data")


async def test_valid_events_are_published_beside_refused_ones_and_the_answer_is_200() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = batch_body(
        one_event(),
        {"event": "no id", "uuid": "bad-1"},
        {"event": "$snapshot", "distinct_id": "u1", "uuid": "bad-2"},
        one_event(uuid="ok-2", timestamp="not a time"),
        one_event(uuid="ok-3", event="second"),
    )
    async with client(publisher) as http:
        assert_ok(await http.post("/batch/", json=body))
    assert [e.message_id for e in published_events(publisher)] == [one_event()["uuid"], "ok-3"]
    refused = published_rejections(publisher)
    assert [(r.index, r.message_id, r.errors[0].field) for r in refused] == [
        (1, "bad-1", "distinct_id"),
        (2, "bad-2", "event"),
        (3, "ok-2", "timestamp"),
    ]
    assert {r.endpoint for r in refused} == {"posthog/batch"}


async def test_no_valid_event_is_400_with_each_items_errors() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        response = await http.post("/e/", json=batch_body({"event": "x"}, {"event": "y"}))
    body = assert_posthog_error(response, 400, "batch.0.distinct_id")
    assert [e["field"] for e in body["errors"]] == ["batch.0.distinct_id", "batch.1.distinct_id"]
    assert len(published_rejections(publisher)) == 2 and published_events(publisher) == []


async def test_broker_not_acknowledging_is_503_with_retry_after() -> None:
    async with client(RecordingPublisher(SETTINGS, fail=True)) as http:
        response = await http.post("/batch/", json=batch_body(one_event()))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(SETTINGS.retry_after_s)
    assert response.json()["type"] == "server_error"


async def test_rate_limit_is_429_in_posthogs_shape_with_retry_after() -> None:
    settings = Settings.from_environment(
        {"PS_WRITE_KEYS": f"{KEY}:web", "PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "1"}
    )
    publisher = RecordingPublisher(settings)
    async with client(publisher) as http:
        first = await http.post("/batch/", json=batch_body(one_event(), one_event(uuid="2")))
        response = await http.post("/batch/", json=batch_body(one_event(uuid="3")))
    assert_ok(first)
    body = assert_posthog_error(response, 429, "events")
    assert body["type"] == "throttled_error" and "Retry-After" in response.headers
    assert len(published_events(publisher)) == 2


async def test_session_replay_path_is_not_routed() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post("/s/", json=batch_body(one_event()))
    assert_posthog_error(response, 404, "path")


# --- flags and remote config ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/flags", "/flags/", "/decide", "/decide/"])
async def test_flags_and_decide_by_get_and_post(path: str) -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        posted = await http.post(path, params={"v": "4"}, json={"api_key": KEY, "distinct_id": "u"})
        got = await http.get(path, params={"v": "3", "token": KEY})
    for response in (posted, got):
        assert response.status_code == 200, response.text
        assert response.json()["featureFlags"] == {}
    # the legacy /decide (and /flags?config=true) carried the remote config too
    assert ("supportedCompression" in posted.json()) == path.startswith("/decide")


async def test_flags_with_an_unknown_or_no_token_is_401() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        unknown = await http.post("/flags/", json={"token": "nope", "distinct_id": "u"})
        missing = await http.post("/flags/", json={"distinct_id": "u"})
    assert_posthog_error(unknown, 401, "token")
    assert_posthog_error(missing, 401, "token")


async def test_remote_config_json_and_script_turn_every_optional_feature_off() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        config = await http.get(f"/array/{KEY}/config")
        script = await http.get(f"/array/{KEY}/config.js")
        unknown = await http.get("/array/phc_nope/config.js")
    assert config.status_code == 200
    body = config.json()
    assert body["supportedCompression"] == ["gzip", "gzip-js"]
    assert body["sessionRecording"] is False and body["surveys"] is False
    assert body["heatmaps"] is False and body["siteApps"] == []
    assert body["autocaptureExceptions"] is False and body["analytics"] == {"endpoint": "/e/"}
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    prefix = f'window._POSTHOG_REMOTE_CONFIG["{KEY}"]='
    assert prefix in script.text
    assigned = script.text.split(prefix, 1)[1].rsplit(";})();", 1)[0]
    assert json.loads(assigned)["config"] == body
    assert_posthog_error(unknown, 401, "token")
