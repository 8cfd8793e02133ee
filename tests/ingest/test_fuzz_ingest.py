"""Property-based fuzzing of ingest: the pure `normalize_event`, the routes with arbitrary bodies,
and schemathesis against ingest's own OpenAPI document. Why: the corpus holds the inputs we
thought of; these look for the ones we did not. Every run tests the same examples
(derandomize=True, no example database), so CI stays stable."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from infra.settings import Settings
from ingest.app import create_app
from ingest.normalize import BatchDefaults, InvalidEvent, normalize_event
from ingest.providers.webhooks.signature import sign
from ingest.routes import EVENT_SCHEMA
from schemas.events import EVENT_TYPES, STORABLE_FROM, STORABLE_UNTIL, Event
from schemas.messages import EventMessage, EventsMessage, events_message
from tests.support.messages import grouping_problems, keyed_events, partition_of, produced_events
from tests.support.provider_corpus import (
    PROTOCOLS,
    encoders_for,
    provider_error_problems,
    valid_event,
)
from tests.support.publishers import RecordingPublisher

WRITE_KEY = "fuzz-write-key"
SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": f"{WRITE_KEY}:fuzz"})
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
PATHS = [f"/v1/{t}" for t in EVENT_TYPES] + ["/v1/batch"]
RECEIVED = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

# Whole batches of generated valid events are slow to draw: fewer of them.
FUZZ_BATCHES = settings(FUZZ, max_examples=50)

# --- strategies ---------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def iso_timestamps(first_year: int, last_year: int) -> st.SearchStrategy[str]:
    """ISO 8601 strings, naive or with any whole-minute UTC offset."""
    moments = st.datetimes(
        min_value=datetime(first_year, 1, 1),
        max_value=datetime(last_year, 12, 31, 23, 59, 59),
        timezones=st.one_of(st.none(), offsets),
    )
    return moments.map(lambda d: d.isoformat())


FIELDS = (
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "event",
    "name",
    "groupId",
    "previousId",
    "properties",
    "traits",
    "context",
    "integrations",
    "timestamp",
    "originalTimestamp",
    "sentAt",
)


def event_shaped(timestamps: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with the schema's field names and values of every plausible and implausible
    kind: far likelier to reach deep into normalize_event than arbitrary JSON."""
    values = (
        json_values
        | st.sampled_from([*EVENT_TYPES, "Track", ""])
        | st.text(min_size=1, max_size=300)
        | timestamps
        | st.integers(min_value=-(10**13), max_value=10**14)
    )
    return st.dictionaries(st.sampled_from(FIELDS), values, max_size=12)


# Years whose offsets and ±300-year clock-skew corrections stay inside datetime's range.
safe_event_shaped = event_shaped(iso_timestamps(1900, 2200))
# Any year datetime can hold, the first and last days (where offsets matter) drawn often.
any_timestamps = iso_timestamps(1, 9999) | iso_timestamps(1, 1) | iso_timestamps(9999, 9999)

ids = st.text(min_size=1, max_size=40) | st.integers(min_value=0, max_value=10**15)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event the service must accept (its messageId is set by the test)."""
    kind = draw(st.sampled_from(EVENT_TYPES))
    event: dict[str, Any] = {"type": kind, "userId": draw(ids)}
    if draw(st.booleans()):
        event["anonymousId"] = draw(ids)
    if kind == "track":
        event["event"] = draw(st.text(min_size=1, max_size=40))
    elif kind == "group":
        event["groupId"] = draw(ids)
    elif kind == "alias":
        event["previousId"] = draw(ids)
    elif draw(st.booleans()):
        event["name"] = draw(st.text(max_size=40))
    for container in ("properties", "traits", "context"):
        if draw(st.booleans()):
            event[container] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    if draw(st.booleans()):
        event["timestamp"] = draw(iso_timestamps(2001, 2025))
    return event


@st.composite
def events_of_any_year(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event but for its timestamps, which may be of any year: each must be accepted
    or rejected naming the timestamp, whatever the clock-skew correction makes of it."""
    stamps = draw(
        st.dictionaries(
            st.sampled_from(["timestamp", "originalTimestamp", "sentAt"]),
            any_timestamps,
            min_size=1,
        )
    )
    return {**draw(valid_events()), **stamps}


# --- helpers --------------------------------------------------------------------------------------


APP_PUBLISHER = RecordingPublisher(SETTINGS)
APP = create_app(SETTINGS, APP_PUBLISHER)


class Client:
    """A synchronous face on an in-process httpx client, for hypothesis' synchronous tests."""

    def __init__(self, app: Any = APP) -> None:
        self.runner = asyncio.Runner()
        # raise_app_exceptions=False: a crash must show as the 500 a client would get.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://ingest")

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.request("POST", path, body, headers)

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        return self.runner.run(self.http.request(method, path, content=body, headers=headers))

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.close()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    http = Client()
    yield http
    http.close()


def post(client: Client, path: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    APP_PUBLISHER.records.clear()
    return client.post(path, body, {**AUTH, **(headers or {})})


def published_events() -> list[Event]:
    """The produced events, each re-validated as the schema's Event (round trip included), and
    grouped as ingest groups them (one message per partition, keyed in that partition)."""
    records = APP_PUBLISHER.records
    assert grouping_problems(records, SETTINGS.events_topic, SETTINGS.topic_partitions) == []
    events = []
    for key, event in keyed_events(records, SETTINGS.events_topic):
        assert Event.model_validate(event.model_dump()) == event
        partitions = SETTINGS.topic_partitions
        assert partition_of(key, partitions) == partition_of(event.profile_key, partitions)
        events.append(event)
    return events


def assert_sound(response: Any) -> None:
    """No 5xx; a 4xx is a proper error body; a 200 produced exactly what it counts."""
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        assert body["success"] is False and body["code"] and body["message"], body
        assert all(e["field"] is not None and e["reason"] for e in body["errors"]), body
    else:
        assert response.status_code == 200, response.text
        assert body["accepted"] == len(published_events()) >= 1


def assert_normalizes_or_explains(
    raw: Any, event_type: str | None, defaults: BatchDefaults
) -> None:
    """An Event that round-trips and can be stored, or InvalidEvent naming fields: any other
    exception (an OverflowError at the edges of datetime's range, say) fails the test."""
    try:
        event = normalize_event(
            raw, received_at=RECEIVED, source="fuzz", event_type=event_type, defaults=defaults
        )
    except InvalidEvent as exc:
        assert exc.errors and all(e.field and e.reason for e in exc.errors)
        return
    again = EventMessage.model_validate_json(EventMessage(event=event).model_dump_json()).event
    assert again == event
    # the version 2 message ingest builds from the encoded event, without validating it again
    v2 = EventsMessage.model_validate_json(events_message([event.model_dump_json().encode()]))
    assert v2.events == [event]
    assert STORABLE_FROM <= event.timestamp <= STORABLE_UNTIL
    assert event.profile_key and 1 <= len(event.message_id) <= 100


batch_defaults = st.builds(
    BatchDefaults,
    context=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    sent_at=st.none() | iso_timestamps(1900, 2200) | json_values,
)

# --- normalize_event ----------------------------------------------------------------------------


@FUZZ
@given(
    raw=json_values, event_type=st.none() | st.sampled_from(EVENT_TYPES), defaults=batch_defaults
)
def test_normalize_arbitrary_json_is_an_event_or_field_errors(
    raw: Any, event_type: str | None, defaults: BatchDefaults
) -> None:
    assert_normalizes_or_explains(raw, event_type, defaults)


@FUZZ
@given(
    raw=safe_event_shaped,
    event_type=st.none() | st.sampled_from(EVENT_TYPES),
    defaults=batch_defaults,
)
def test_normalize_event_shaped_input_is_an_event_or_field_errors(
    raw: Any, event_type: str | None, defaults: BatchDefaults
) -> None:
    assert_normalizes_or_explains(raw, event_type, defaults)


@FUZZ
@given(raw=events_of_any_year(), event_type=st.none() | st.sampled_from(EVENT_TYPES))
def test_normalize_timestamps_of_any_year_are_an_event_or_field_errors(
    raw: Any, event_type: str | None
) -> None:
    assert_normalizes_or_explains(raw, event_type, BatchDefaults())


@FUZZ
@given(event=valid_events())
def test_valid_events_always_normalize(event: dict[str, Any]) -> None:
    normalized = normalize_event(event, received_at=RECEIVED, source="fuzz")
    assert normalized.type == event["type"]
    assert normalized.user_id == str(event["userId"])


# --- routes -------------------------------------------------------------------------------------


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values | safe_event_shaped)
def test_arbitrary_json_bodies_never_5xx(client: Client, path: str, value: Any) -> None:
    assert_sound(post(client, path, orjson.dumps(value)))


@FUZZ
@given(items=st.lists(json_values | safe_event_shaped, max_size=8), extra=json_values)
def test_arbitrary_batches_never_5xx(client: Client, items: list[Any], extra: Any) -> None:
    body = {"batch": items, "context": extra, "sentAt": extra}
    assert_sound(post(client, "/v1/batch", orjson.dumps(body)))


@FUZZ
@given(path=st.sampled_from(PATHS), body=st.binary(max_size=300), gzipped=st.booleans())
def test_arbitrary_bytes_never_5xx(client: Client, path: str, body: bytes, gzipped: bool) -> None:
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    assert_sound(post(client, path, body, headers))


def _mix(valid: list[dict[str, Any]], junk: list[Any], order: list[int]) -> list[Any]:
    """`valid` (messageIds set) and `junk` interleaved as `order` says; each junk item that is
    a dict gets a messageId of its own so it can never pass for a valid one."""
    items: list[Any] = []
    pending_valid, pending_junk = iter(valid), iter(junk)
    for n in order:
        picked = next(pending_valid, None) if n % 2 else next(pending_junk, None)
        if picked is not None:
            items.append(picked)
    items += list(pending_valid) + list(pending_junk)
    return items


def check_valid_kept(
    client: Client, valid: list[dict[str, Any]], junk: list[Any], order: list[int]
) -> None:
    for n, event in enumerate(valid):
        event["messageId"] = f"valid-{n}"
    junk = [
        {**j, "messageId": f"junk-{n}"} if isinstance(j, dict) else j for n, j in enumerate(junk)
    ]
    items = _mix(valid, junk, order)
    response = post(client, "/v1/batch", orjson.dumps({"batch": items}))
    assert response.status_code == 200, response.text
    body = response.json()
    kept = [e.message_id for e in published_events()]
    assert sorted(m for m in kept if m.startswith("valid-")) == sorted(
        e["messageId"] for e in valid
    )
    assert body["accepted"] == len(kept)
    assert body["accepted"] + len(body["rejected"]) == len(items)
    valid_positions = {i for i, item in enumerate(items) if any(item is v for v in valid)}
    assert not valid_positions & {r["index"] for r in body["rejected"]}


@FUZZ_BATCHES
@given(
    valid=st.lists(valid_events(), min_size=1, max_size=6),
    junk=st.lists(json_values | safe_event_shaped, max_size=8),
    order=st.lists(st.integers(0, 1), max_size=14),
)
def test_batch_keeps_every_valid_event_among_junk(
    client: Client, valid: list[dict[str, Any]], junk: list[Any], order: list[int]
) -> None:
    check_valid_kept(client, valid, junk, order)


@FUZZ
@given(
    valid=st.lists(valid_events(), min_size=1, max_size=6),
    junk=st.lists(events_of_any_year(), min_size=1, max_size=8),
    order=st.lists(st.integers(0, 1), max_size=14),
)
def test_batch_keeps_every_valid_event_among_junk_of_any_year(
    client: Client, valid: list[dict[str, Any]], junk: list[Any], order: list[int]
) -> None:
    check_valid_kept(client, valid, junk, order)


@FUZZ_BATCHES
@given(valid=st.lists(valid_events(), min_size=1, max_size=4))
def test_gzipped_valid_batches_are_kept(client: Client, valid: list[dict[str, Any]]) -> None:
    for n, event in enumerate(valid):
        event["messageId"] = f"gz-{n}"
    body = gzip.compress(orjson.dumps({"batch": valid}))
    response = post(client, "/v1/batch", body, {"Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert sorted(e.message_id for e in published_events()) == sorted(e["messageId"] for e in valid)


# --- schemathesis against /openapi.json -----------------------------------------------------------

SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
SCHEMATHESIS = settings(FUZZ, max_examples=30)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("path", PATHS)
def test_openapi_operations_never_5xx(path: str, mode: GenerationMode) -> None:
    """Bodies generated from (and, negative, against) the documented schema: no server error."""
    operation = SCHEMA[path]["POST"]

    @SCHEMATHESIS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        APP_PUBLISHER.records.clear()
        case.call_and_validate(headers=AUTH, checks=[not_a_server_error])
        published_events()

    run()


# --- the third-party endpoints: /posthog, /mixpanel, /amplitude, /webhooks ---------------------

PROVIDER_SECRET = "fuzz-source-secret"
PROVIDER_SETTINGS = Settings.from_environment(
    {
        "PS_WRITE_KEYS": f"{WRITE_KEY}:fuzz",
        "PS_SOURCE_SECRETS": f"{PROVIDER_SECRET}:fuzz",
        "PS_SEGMENT_WEBHOOK_BATCHED_SOURCES": "fuzz",
    }
)
PROVIDER_PUBLISHER = RecordingPublisher(PROVIDER_SETTINGS)
PROVIDER_APP = create_app(PROVIDER_SETTINGS, PROVIDER_PUBLISHER)
ENCODINGS = [
    (protocol, name, encoder)
    for protocol in PROTOCOLS
    for name, encoder in encoders_for(protocol, WRITE_KEY, PROVIDER_SECRET).items()
]
SECRET_AUTH = {
    "Authorization": "Basic " + base64.b64encode(f"{PROVIDER_SECRET}:".encode()).decode()
}
# Every provider route that takes events, with what authenticates it when the body does not.
PROVIDER_ROUTES: list[tuple[str, str, dict[str, str]]] = [
    ("posthog", "/posthog/e/", {}),
    ("posthog", "/posthog/batch/", {}),
    ("posthog", "/posthog/i/v0/e/?compression=base64", {}),
    ("mixpanel", "/mixpanel/track?verbose=1", {}),
    ("mixpanel", "/mixpanel/engage", {}),
    ("mixpanel", "/mixpanel/groups", {}),
    ("mixpanel", "/mixpanel/import?strict=1", SECRET_AUTH),
    ("amplitude", "/amplitude/2/httpapi", {}),
    ("amplitude", "/amplitude/batch", {}),
    ("amplitude", "/amplitude/identify", {}),
    ("webhooks", "/webhooks/segment", {}),
    ("webhooks", f"/webhooks/rudderstack?writeKey={WRITE_KEY}", {}),
]
CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "application/x-ndjson",
]
# The fields of each provider's events, to draw provider-shaped junk from. Token fields are
# left out: PostHog refuses a whole request whose events carry different tokens (as PostHog
# does), which would cost the valid events by design.
PROVIDER_FIELDS = {
    "posthog": ("event", "distinct_id", "uuid", "properties", "timestamp", "offset", "$set",
                "$set_once", "$unset", "type", "$anon_distinct_id"),
    "mixpanel": ("event", "properties", "$distinct_id", "$set", "$add", "$append", "$union",
                 "$unset", "$delete", "$time"),
    "amplitude": ("user_id", "device_id", "event_type", "time", "insert_id", "event_properties",
                  "user_properties", "groups", "group_properties", "session_id", "price"),
    "webhooks": (*FIELDS, "request_ip", "receivedAt", "rudderId", "channel"),
}  # fmt: skip
TOKEN_KEYS = ("token", "$token", "api_key")


@st.composite
def provider_shaped(draw: st.DrawFn, protocol: str) -> dict[str, Any]:
    values = (
        json_values
        | st.text(min_size=1, max_size=60)
        | iso_timestamps(1900, 2200)
        | st.integers(min_value=-(10**14), max_value=10**14)
        | st.dictionaries(st.sampled_from(PROVIDER_FIELDS[protocol]), json_values, max_size=4)
    )
    item = draw(st.dictionaries(st.sampled_from(PROVIDER_FIELDS[protocol]), values, max_size=8))
    properties = item.get("properties")
    if isinstance(properties, dict):
        item["properties"] = {k: v for k, v in properties.items() if k not in TOKEN_KEYS}
    return item


def junk_of(protocol: str) -> st.SearchStrategy[Any]:
    return json_values | provider_shaped(protocol)


@pytest.fixture(scope="module")
def provider_client() -> Iterator[Client]:
    http = Client(PROVIDER_APP)
    yield http
    http.close()


def provider_request(
    client: Client, method: str, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    PROVIDER_PUBLISHER.records.clear()
    return client.request(method, path, body, headers)


def provider_events() -> list[Event]:
    return produced_events(PROVIDER_PUBLISHER.records, PROVIDER_SETTINGS.events_topic)


def assert_provider_sound(protocol: str, path: str, response: httpx.Response) -> None:
    problems = provider_error_problems(protocol, path, response.status_code, response.content)
    assert not problems, f"{protocol} {path}: {problems}"


@FUZZ
@given(
    route=st.sampled_from(PROVIDER_ROUTES),
    body=st.binary(max_size=300),
    gzipped=st.booleans(),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_provider_arbitrary_bytes_never_5xx(
    provider_client: Client,
    route: tuple[str, str, dict[str, str]],
    body: bytes,
    gzipped: bool,
    content_type: str,
) -> None:
    protocol, path, auth = route
    headers = {**auth, "Content-Type": content_type}
    if path.startswith("/webhooks/segment"):
        headers["X-Signature"] = sign(PROVIDER_SECRET, body)  # so the decoding is what is tested
    sent = gzip.compress(body, mtime=0) if gzipped else body
    response = provider_request(provider_client, "POST", path, sent, headers)
    assert_provider_sound(protocol, path, response)


@FUZZ
@given(data=st.data(), encoding=st.sampled_from(ENCODINGS))
def test_provider_arbitrary_json_in_each_encoding_never_5xx(
    provider_client: Client, data: st.DataObject, encoding: tuple[str, str, Any]
) -> None:
    protocol, _, encode = encoding
    items = data.draw(st.lists(junk_of(protocol), min_size=1, max_size=6))
    method, path, body, headers = encode(items)
    response = provider_request(provider_client, method, path, body, headers)
    assert_provider_sound(protocol, path, response)


@FUZZ_BATCHES
@given(
    data=st.data(),
    encoding=st.sampled_from(ENCODINGS),
    valid_count=st.integers(min_value=1, max_value=4),
    order=st.randoms(use_true_random=False),
)
def test_provider_valid_events_are_kept_among_junk(
    provider_client: Client,
    data: st.DataObject,
    encoding: tuple[str, str, Any],
    valid_count: int,
    order: Any,
) -> None:
    protocol, _, encode = encoding
    valid = [
        valid_event(protocol, WRITE_KEY, f"fuzz-valid-{n}", "fuzz-user") for n in range(valid_count)
    ]
    junk = data.draw(st.lists(junk_of(protocol), max_size=6))
    rest = valid[1:] + junk
    order.shuffle(rest)
    method, path, body, headers = encode([valid[0], *rest])
    response = provider_request(provider_client, method, path, body, headers)
    assert response.status_code in ((200, 400) if protocol == "amplitude" else (200,)), (
        f"{protocol} {path} lost its valid events: {response.status_code} {response.text[:300]}"
    )
    assert_provider_sound(protocol, path, response)
    published = Counter(e.message_id for e in provider_events())
    assert all(published[f"fuzz-valid-{n}"] == 1 for n in range(valid_count)), (
        f"{protocol} {path}: valid events published {dict(published)}"
    )


# schemathesis: the provider routes are not in ingest's OpenAPI document (their SDKs do not
# read one), so they are described here, loosely, for it to generate from and against.


def _operation(schema: dict[str, Any], media: str = "application/json", **extra: Any) -> Any:
    return {
        "post": {
            "requestBody": {"required": True, "content": {media: {"schema": schema}}},
            "responses": {"200": {"description": "accepted"}},
            **extra,
        }
    }


KEY = {"type": "string", "enum": [WRITE_KEY]}
POSTHOG_EVENT = {
    "type": "object",
    "required": ["event", "distinct_id", "token"],
    "properties": {
        "event": {"type": "string", "minLength": 1},
        "distinct_id": {"type": "string", "minLength": 1},
        "token": KEY,
        "uuid": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "$set": {"type": "object"},
    },
}
MIXPANEL_EVENT = {
    "type": "object",
    "required": ["event", "properties"],
    "properties": {
        "event": {"type": "string", "minLength": 1},
        "properties": {
            "type": "object",
            "required": ["token", "distinct_id"],
            "properties": {
                "token": KEY,
                "distinct_id": {"type": "string"},
                "time": {"type": "number"},
                "$insert_id": {"type": "string"},
            },
        },
    },
}
AMPLITUDE_EVENT = {
    "type": "object",
    "required": ["event_type", "user_id"],
    "properties": {
        "event_type": {"type": "string", "minLength": 1},
        "user_id": {"type": "string"},
        "device_id": {"type": "string"},
        "time": {"type": "integer"},
        "insert_id": {"type": "string"},
        "event_properties": {"type": "object"},
        "user_properties": {"type": "object"},
    },
}
AMPLITUDE_UPLOAD = {
    "type": "object",
    "required": ["api_key", "events"],
    "properties": {
        "api_key": KEY,
        "events": {"type": "array", "items": AMPLITUDE_EVENT, "maxItems": 5},
    },
}
PROVIDER_OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Profilestream third-party endpoints", "version": "1"},
    "paths": {
        "/posthog/e/": _operation(POSTHOG_EVENT),
        "/posthog/batch/": _operation(
            {
                "type": "object",
                "required": ["api_key", "batch"],
                "properties": {
                    "api_key": KEY,
                    "batch": {"type": "array", "items": POSTHOG_EVENT, "maxItems": 5},
                },
            }
        ),
        "/mixpanel/track": _operation({"type": "array", "items": MIXPANEL_EVENT, "maxItems": 5}),
        "/mixpanel/engage": _operation(
            {
                "type": "object",
                "required": ["$token", "$distinct_id"],
                "properties": {
                    "$token": KEY,
                    "$distinct_id": {"type": "string"},
                    "$set": {"type": "object"},
                    "$add": {"type": "object"},
                    "$union": {"type": "object"},
                },
            }
        ),
        "/mixpanel/import": _operation({"type": "array", "items": MIXPANEL_EVENT, "maxItems": 5}),
        "/amplitude/2/httpapi": _operation(AMPLITUDE_UPLOAD),
        "/amplitude/batch": _operation(AMPLITUDE_UPLOAD),
        "/amplitude/identify": _operation(
            {
                "type": "object",
                "required": ["api_key", "identification"],
                "properties": {"api_key": KEY, "identification": {"type": "string"}},
            },
            "application/x-www-form-urlencoded",
        ),
        "/webhooks/rudderstack": _operation(
            EVENT_SCHEMA,
            parameters=[
                {"name": "writeKey", "in": "query", "required": True, "schema": KEY},
            ],
        ),
    },
}
PROVIDER_SCHEMA = schemathesis.openapi.from_dict(PROVIDER_OPENAPI)
PROVIDER_SCHEMA.app = PROVIDER_APP


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("path", list(PROVIDER_OPENAPI["paths"]))
def test_provider_operations_never_5xx(path: str, mode: GenerationMode) -> None:
    """Bodies generated from (and, negative, against) a description of each provider route:
    no server error, and every 4xx in the provider's shape with `errors` naming fields."""
    operation = PROVIDER_SCHEMA[path]["POST"]
    protocol = path.split("/")[1]
    headers = SECRET_AUTH if path == "/mixpanel/import" else {}

    @SCHEMATHESIS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        PROVIDER_PUBLISHER.records.clear()
        response = case.call(headers=headers)
        problems = provider_error_problems(protocol, path, response.status_code, response.content)
        assert not problems, f"{path}: {problems}"
        provider_events()

    run()
