"""The /mixpanel routes with a recording publisher (no broker): every encoding the SDKs use
(form `data=` as JSON or base64, GET with `data=` in the query, raw JSON, NDJSON, gzip), the
replies each SDK reads (verbose JSON, text `1`, /import's counts and failed_records), the
project-token and server-secret checks, and bad input answered 4xx in Mixpanel's shape with
our `errors` list while the valid records of the same request are published."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from infra.settings import Settings
from tests.support.ingest_app import ingest_client, published_events, published_rejections
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment(
    {
        "PS_WRITE_KEYS": "mptoken123:py,mpjstoken:web,other-token:other",
        "PS_SOURCE_SECRETS": "projsecret:py,sa-secret:py",
    }
)
PY_EVENT: dict[str, Any] = {
    "event": "Signed Up",
    "properties": {
        "token": "mptoken123",
        "distinct_id": "user-1",
        "time": 1796161546.010078,
        "$insert_id": "2145d1849d59460195da0f4766a08e7d",
        "mp_lib": "python",
        "plan": "pro",
    },
}
IMPORT_EVENT: dict[str, Any] = {
    "event": "Old Event",
    "properties": {
        "token": "mptoken123",
        "distinct_id": "user-1",
        "time": 1795297546,
        "$insert_id": "61423803d002408388a2fbf5e4256153",
    },
}


JS_TOKEN = "mpjstoken"


def js_event(name: str, n: int, project: str = JS_TOKEN) -> dict[str, Any]:
    return {
        "event": name,
        "properties": {
            "token": project,
            "distinct_id": "$device:d-1",
            "$device_id": "d-1",
            "time": 1796161657.132 + n,
            "$insert_id": f"insert{n}",
            "mp_lib": "web",
        },
    }


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def py_form(data: Any) -> dict[str, str]:
    """What mixpanel-python posts: data=<JSON>&verbose=1&ip=0."""
    return {"data": json.dumps(data), "verbose": "1", "ip": "0"}


# --- /track, /engage, /groups ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/mixpanel/track", "/mixpanel/track/"])
async def test_python_form_json_is_answered_with_verbose_status(path: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(path, data=py_form(PY_EVENT))
    assert response.status_code == 200
    assert response.json() == {"status": 1, "error": None}
    (event,) = published_events(publisher)
    assert (event.event, event.user_id, event.source) == ("Signed Up", "user-1", "py")
    assert publisher.records[0][1] == b"user-1"


async def test_js_base64_batch_with_the_query_the_sdk_sends() -> None:
    publisher = RecordingPublisher(SETTINGS)
    batch = [js_event("A", 1), js_event("B", 2)]
    async with ingest_client(publisher) as http:
        response = await http.post(
            "/mixpanel/track/?verbose=1&ip=1&_=1796161660000",
            content=f"data={base64.b64encode(json.dumps(batch).encode()).decode()}".replace(
                "+", "%2B"
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200 and response.json() == {"status": 1, "error": None}
    assert [(e.event, e.anonymous_id, e.source) for e in published_events(publisher)] == [
        ("A", "d-1", "web"),
        ("B", "d-1", "web"),
    ]
    # `_` read as the send time
    assert all(e.sent_at is not None for e in published_events(publisher))


async def test_without_verbose_the_reply_is_text_1() -> None:
    async with ingest_client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post("/mixpanel/track", data={"data": b64(js_event("A", 1))})
    assert response.status_code == 200
    assert response.text == "1" and response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("path", ["/mixpanel/track", "/mixpanel/engage/", "/mixpanel/groups"])
async def test_get_with_data_in_the_query(path: str) -> None:
    record = {
        "/mixpanel/track": js_event("A", 1),
        "/mixpanel/engage/": {"$token": "mpjstoken", "$distinct_id": "u1", "$set": {"a": 1}},
        "/mixpanel/groups": {
            "$token": "mpjstoken",
            "$group_key": "company",
            "$group_id": "acme",
            "$set": {"a": 1},
        },
    }[path]
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.get(path, params={"data": b64(record), "verbose": "1"})
    assert response.status_code == 200 and response.json()["status"] == 1
    assert len(published_events(publisher)) == 1


async def test_raw_json_and_gzip_bodies() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        raw = await http.post("/mixpanel/track", json=[js_event("A", 1)])
        zipped = await http.post(
            "/mixpanel/track",
            content=gzip.compress(f"data={b64([js_event('B', 2)])}".encode()),
            headers={"Content-Encoding": "gzip"},
        )
        magic = await http.post(
            "/mixpanel/track", content=gzip.compress(json.dumps([js_event("C", 3)]).encode())
        )
    assert (raw.text, zipped.text, magic.text) == ("1", "1", "1")
    assert [e.event for e in published_events(publisher)] == ["A", "B", "C"]


async def test_engage_keeps_the_valid_records_and_lists_the_refused() -> None:
    publisher = RecordingPublisher(SETTINGS)
    records = [
        {"$token": "mptoken123", "$distinct_id": "u1", "$set": {"plan": "pro"}},
        {"$token": "mptoken123", "$distinct_id": "u1", "$delete": ""},
    ]
    async with ingest_client(publisher) as http:
        response = await http.post("/mixpanel/engage", data=py_form(records))
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error"]) == (1, None)
    assert body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["errors"][0]["field"] == "$delete"
    (event,) = published_events(publisher)
    assert event.traits == {"$set": {"plan": "pro"}}
    (rejection,) = published_rejections(publisher)
    assert (rejection.index, rejection.endpoint) == (1, "mixpanel/engage")


async def test_nothing_valid_is_400_with_status_0_and_the_fields() -> None:
    publisher = RecordingPublisher(SETTINGS)
    record = {"event": "E", "properties": {"token": "mptoken123", "distinct_id": "undefined"}}
    async with ingest_client(publisher) as http:
        response = await http.post("/mixpanel/track", data=py_form([record, record]))
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 0 and body["error"]
    assert [e["field"] for e in body["errors"]] == [
        "data.0.properties.distinct_id",
        "data.1.properties.distinct_id",
    ]
    assert published_events(publisher) == [] and len(published_rejections(publisher)) == 2


async def test_normalization_refusals_name_the_mixpanel_field() -> None:
    record = {"event": "E", "properties": {"token": "mptoken123", "time": 1796161546}}
    async with ingest_client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post("/mixpanel/track", data=py_form(record))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "properties.distinct_id"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (
            {**PY_EVENT, "properties": {**PY_EVENT["properties"], "token": "nope"}},
            "properties.token",
        ),
        ({**PY_EVENT, "properties": {"distinct_id": "u"}}, "properties.token"),
    ],
)
async def test_unknown_or_missing_token_is_401_in_mixpanels_shape(record: Any, field: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post("/mixpanel/track", data=py_form(record))
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error" and body["error"]
    assert body["errors"][0]["field"] == field
    assert publisher.records == []


async def test_engage_token_is_dollar_token() -> None:
    async with ingest_client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post(
            "/mixpanel/engage", data=py_form({"$token": "x", "$distinct_id": "u", "$set": {}})
        )
    assert response.status_code == 401 and response.json()["errors"][0]["field"] == "$token"


async def test_a_record_of_another_source_is_refused_the_others_kept() -> None:
    publisher = RecordingPublisher(SETTINGS)
    batch = [js_event("A", 1), js_event("B", 2, project="other-token"), js_event("C", 3, "nope")]
    async with ingest_client(publisher) as http:
        response = await http.post("/mixpanel/track", data={"data": b64(batch), "verbose": "1"})
    assert response.status_code == 200
    assert [e.event for e in published_events(publisher)] == ["A"]
    assert [(r["index"], r["errors"][0]["field"]) for r in response.json()["rejected"]] == [
        (1, "properties.token"),
        (2, "properties.token"),
    ]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("data=%%%not-base64%%%", "data"),
        ("data=" + base64.b64encode(b"{not json").decode(), "data"),
        ("data=", "data"),
        ("verbose=1", "data"),
        ("&".join(f"f{n}=1" for n in range(40)), "body"),
        ("data=" + b64([]), "data"),
        ("{not json", "body"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(content: str, field: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(
            "/mixpanel/track",
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == 0 and body["errors"][0]["field"] == field
    assert publisher.records == []


async def test_truncated_gzip_is_400() -> None:
    async with ingest_client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post(
            "/mixpanel/track", content=gzip.compress(b"data=" + b64(PY_EVENT).encode())[:-8]
        )
    assert response.status_code == 400 and response.json()["errors"]


async def test_over_2000_records_is_413_so_the_js_batcher_halves() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post("/mixpanel/track", json=[js_event("A", 1)] * 2001)
    assert response.status_code == 413
    assert response.json()["errors"] == [
        {"field": "data", "reason": "at most 2000 records per request"}
    ]
    assert publisher.records == []


async def test_a_body_over_10_mb_is_413() -> None:
    async with ingest_client(RecordingPublisher(SETTINGS)) as http:
        response = await http.post("/mixpanel/track", content=b"data=" + b"a" * (10 * 2**20))
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "body"


async def test_broker_not_acknowledging_is_503_with_retry_after() -> None:
    async with ingest_client(RecordingPublisher(SETTINGS, fail=True)) as http:
        track = await http.post("/mixpanel/track", data=py_form(PY_EVENT))
        imported = await http.post(
            "/mixpanel/import", data=py_form(IMPORT_EVENT), auth=("projsecret", "")
        )
    assert track.status_code == 503 and track.headers["Retry-After"]
    assert track.json()["status"] == 0 and track.json()["errors"]
    assert imported.status_code == 503 and imported.headers["Retry-After"]
    assert imported.json()["code"] == 503


async def test_unknown_paths_and_methods_answer_in_mixpanels_shape() -> None:
    async with ingest_client(RecordingPublisher(SETTINGS)) as http:
        missing = await http.post("/mixpanel/nothing")
        method = await http.get("/mixpanel/import")
    assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "path"
    assert method.status_code == 405 and method.json()["code"] == 405


# --- /import ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth", [("projsecret", ""), ("sa-user", "sa-secret")], ids=["api-secret", "service-account"]
)
async def test_python_import_with_a_secret_replies_status_1(auth: tuple[str, str]) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher, auth=auth) as http:
        response = await http.post(
            "/mixpanel/import?project_id=12345",
            data={**py_form(IMPORT_EVENT), "api_key": "apikey-legacy"},
        )
    assert response.status_code == 200
    assert response.json() == {
        "code": 200,
        "num_records_imported": 1,
        "status": 1,
        "error": None,
    }
    (event,) = published_events(publisher)
    assert (event.event, event.source) == ("Old Event", "py")


@pytest.mark.parametrize(
    "auth",
    [None, ("mptoken123", ""), ("wrong", ""), ("user", "wrong")],
    ids=["none", "project-token", "bad-secret", "bad-password"],
)
async def test_import_without_a_secret_is_401(auth: tuple[str, str] | None) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher, auth=auth) as http:
        response = await http.post("/mixpanel/import", data=py_form(IMPORT_EVENT))
    assert response.status_code == 401
    body = response.json()
    assert (body["code"], body["status"]) == (401, "Unauthorized")
    assert body["errors"][0]["field"] == "Authorization"
    assert publisher.records == []


async def test_import_json_body_replies_ok_with_the_count() -> None:
    publisher = RecordingPublisher(SETTINGS)
    second = {**IMPORT_EVENT, "properties": {**IMPORT_EVENT["properties"], "$insert_id": "x2"}}
    async with ingest_client(publisher, auth=("projsecret", "")) as http:
        response = await http.post(
            "/mixpanel/import",
            content=gzip.compress(json.dumps([IMPORT_EVENT, second]).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert response.status_code == 200
    assert response.json() == {"code": 200, "num_records_imported": 2, "status": "OK"}
    assert len(published_events(publisher)) == 2


def ndjson_with_a_bad_line() -> bytes:
    no_time = {"event": "E", "properties": {"distinct_id": "u1", "$insert_id": "nt1"}}
    lines = [json.dumps(IMPORT_EVENT), "{broken", json.dumps(no_time)]
    return "\n".join(lines).encode()


async def test_import_strict_reports_failed_records_and_imports_the_rest() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher, auth=("projsecret", "")) as http:
        response = await http.post(
            "/mixpanel/import?strict=1&project_id=1",
            content=ndjson_with_a_bad_line(),
            headers={"Content-Type": "application/x-ndjson"},
        )
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["status"], body["num_records_imported"]) == (400, "Bad Request", 1)
    assert [(r["index"], r["field"]) for r in body["failed_records"]] == [
        (1, "event"),
        (2, "properties.time"),
    ]
    assert body["failed_records"][1]["insert_id"] is None or body["failed_records"][1]["insert_id"]
    assert [e["field"] for e in body["errors"]] == ["data.1.event", "data.2.properties.time"]
    assert [e.event for e in published_events(publisher)] == ["Old Event"]
    assert len(published_rejections(publisher)) == 2


async def test_import_without_strict_imports_the_valid_and_lists_the_failed() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher, auth=("projsecret", "")) as http:
        response = await http.post("/mixpanel/import", content=ndjson_with_a_bad_line())
    assert response.status_code == 200
    body = response.json()
    assert (body["num_records_imported"], body["status"]) == (1, "OK")
    assert [r["index"] for r in body["failed_records"]] == [1, 2]


async def test_import_with_nothing_valid_is_400_with_failed_records() -> None:
    async with ingest_client(RecordingPublisher(SETTINGS), auth=("projsecret", "")) as http:
        response = await http.post("/mixpanel/import", data=py_form({"event": "E"}))
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["num_records_imported"]) == (400, 0)
    assert body["failed_records"][0]["index"] == 0
    assert body["status"] != 1  # mixpanel-python raises MixpanelException on it
    assert body["errors"]


async def test_merge_is_taken_on_import() -> None:
    publisher = RecordingPublisher(SETTINGS)
    merge = {"event": "$merge", "properties": {"$distinct_ids": ["u1", "d1"], "token": "t"}}
    async with ingest_client(publisher, auth=("projsecret", "")) as http:
        response = await http.post("/mixpanel/import", data=py_form(merge))
    assert response.json()["status"] == 1
    (event,) = published_events(publisher)
    assert (event.type, event.user_id, event.previous_id) == ("alias", "u1", "d1")


async def test_rate_limited_is_429_with_retry_after_and_nothing_published() -> None:
    limited = Settings.from_environment(
        {
            "PS_WRITE_KEYS": "mptoken123:py",
            "PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "1",
            "PS_INGEST_RATE_LIMIT_BURST": "2",
        }
    )
    publisher = RecordingPublisher(limited)
    async with ingest_client(publisher) as http:
        first = await http.post("/mixpanel/track", data=py_form([PY_EVENT] * 2))
        published = len(publisher.records)
        response = await http.post("/mixpanel/track", data=py_form([PY_EVENT] * 2))
    assert first.status_code == 200
    assert response.status_code == 429 and response.headers["Retry-After"]
    body = response.json()
    assert body["status"] == 0 and body["errors"]
    assert len(publisher.records) == published


async def test_a_token_limited_to_other_origins_is_403() -> None:
    limited = Settings.from_environment(
        {
            "PS_WRITE_KEYS": "mpjstoken:web",
            "PS_WRITE_KEY_ORIGINS": "mpjstoken=https://shop.example",
        }
    )
    async with ingest_client(RecordingPublisher(limited)) as http:
        response = await http.post(
            "/mixpanel/track",
            data={"data": b64([js_event("A", 1)])},
            headers={"Origin": "https://evil.example"},
        )
    assert response.status_code == 403
    body = response.json()
    assert body["status"] == "error" and body["errors"][0]["field"] == "Origin"
    assert response.headers["access-control-allow-origin"] == "https://evil.example"
