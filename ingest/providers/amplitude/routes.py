"""Amplitude's HTTP V2 API (/2/httpapi), Batch API (/batch) and Identify API (/identify) at
/amplitude: what amplitude-analytics (Python) and @amplitude/analytics-browser send, unchanged
but for their server URL. The api_key is one of our write keys.

Both SDKs take the status from the reply's JSON `code`, not from the status line, so every
reply but /identify's success is JSON whose `code` is the HTTP status. A 400 names the failing
event indices (`events_with_invalid_fields`, `events_with_missing_fields`): the SDKs drop those
and resend the others, which were published already and dedup by insert_id. A request-level
400 names `missing_field`, so the SDKs drop the batch instead of resending it. An unknown key is
Amplitude's 400 "Invalid API key: …". Every error body carries our `errors` list too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from infra.http import ApiError
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from ingest.accept import ItemResult, NothingAccepted, check_rate, publish_results
from ingest.normalize import InvalidEvent
from ingest.providers.amplitude.mapping import (
    PROTOCOL,
    Upload,
    in_amplitude_terms,
    is_missing,
    map_event,
    upload_time,
)
from ingest.providers.common import (
    FIELD_OF_STATUS,
    Received,
    bad_request,
    form_fields,
    map_items,
    named_errors,
    parse_json,
    read_decoded_body,
    source_for_key,
    too_many,
)
from ingest.routes import PublisherDep, SettingsDep, limits_of
from schemas.api import RejectedEvent
from schemas.messages import FieldError

PREFIX = "/amplitude"
router = APIRouter(prefix=PREFIX, include_in_schema=False)

# Amplitude's documented limits: HTTP V2 under 1 MB and 2000 events a request; Batch 20 MB.
HTTP_API_BYTES = 1024 * 1024
BATCH_BYTES = 20 * 1024 * 1024
MAX_EVENTS = 2000

INVALID_API_KEY = "invalid_api_key"
INVALID_API_KEY_MESSAGE = "Invalid API key: not a known write key"
MISSING_FIELD_MESSAGE = "Request missing required field"
INVALID_EVENTS_MESSAGE = "Invalid field values on some events"
# The field an error without one is about, by status (our `errors` always names a field).
FIELDS = {**FIELD_OF_STATUS, 429: "events"}


def _now_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def success_body(ingested: int, payload_bytes: int, received_at: datetime) -> dict[str, Any]:
    return {
        "code": 200,
        "events_ingested": ingested,
        "payload_size_bytes": payload_bytes,
        "server_upload_time": _now_ms(received_at),
    }


def rejected_body(rejected: Sequence[RejectedEvent], ingested: int) -> dict[str, Any]:
    """A 400 naming each refused event's index under the Amplitude field it failed on."""
    invalid_fields: dict[str, list[int]] = {}
    missing_fields: dict[str, list[int]] = {}
    for item in rejected:
        for error in item.errors:
            target = missing_fields if is_missing(error.reason) else invalid_fields
            indices = target.setdefault(error.field.split(".")[0], [])
            if item.index not in indices:
                indices.append(item.index)
    return {
        "code": 400,
        "error": INVALID_EVENTS_MESSAGE,
        "events_ingested": ingested,
        "events_with_invalid_fields": invalid_fields,
        "events_with_missing_fields": missing_fields,
        "errors": [
            {"field": f"events.{item.index}.{e.field}", "reason": e.reason}
            for item in rejected
            for e in item.errors
        ],
    }


def render_error(request: Request, error: ApiError) -> Response | None:
    """Every error under /amplitude in Amplitude's shape (`code` = the HTTP status), with our
    `errors` list."""
    status = error.status
    if isinstance(error, NothingAccepted):
        return JSONResponse(rejected_body(error.rejected, 0), status_code=400)
    errors = named_errors(error, FIELDS)
    body: dict[str, Any] = {"code": status, "error": error.message}
    if error.code == INVALID_API_KEY:
        pass  # the SDKs recognise this one by its message and drop the batch
    elif status == 429:
        # Throttled: both SDKs resend the named events after their throttle delay (30 s).
        body["throttled_events"] = list(range(getattr(request.state, "amplitude_events", 0)))
    elif 400 <= status < 500 and status != 413:
        # Request-level: with missing_field the SDKs drop the batch instead of resending it.
        body["error"] = f"{MISSING_FIELD_MESSAGE}: {error.message}"
        body["missing_field"] = errors[0].field
    body["errors"] = [e.model_dump() for e in errors]
    return JSONResponse(body, status_code=status, headers=error.headers)


def _source(request: Request, api_key: Any, settings: Settings) -> str:
    if not isinstance(api_key, str) or not api_key:
        raise bad_request("api_key", "missing")
    try:
        return source_for_key(request, api_key, settings, "api_key")
    except ApiError as exc:
        if exc.status != 401:
            raise
        raise ApiError(
            400,
            INVALID_API_KEY_MESSAGE,
            [FieldError(field="api_key", reason="not a known write key")],
            code=INVALID_API_KEY,
        ) from None


def _items(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_request(field, "expected a JSON array")
    if not value:
        raise bad_request(field, "expected at least one item")
    if len(value) > MAX_EVENTS:
        raise too_many(len(value), MAX_EVENTS, field, "items")
    return value


def _in_amplitude_terms(results: Sequence[ItemResult]) -> list[ItemResult]:
    return [in_amplitude_terms(r) if isinstance(r, InvalidEvent) else r for r in results]


async def _publish(
    settings: Settings,
    publisher: KafkaPublisher,
    results: Sequence[ItemResult],
    *,
    source: str,
    endpoint: str,
    received_at: datetime,
    items: Sequence[Any] = (),
) -> Response | None:
    """Publish; a 400 naming the refused events if some were (None when all were taken)."""
    outcome = await publish_results(
        settings,
        publisher,
        _in_amplitude_terms(results),
        source=source,
        endpoint=f"{PROTOCOL}{endpoint}",
        received_at=received_at,
        items=items,
    )
    if outcome.rejected:
        return JSONResponse(rejected_body(outcome.rejected, outcome.accepted), status_code=400)
    return None


async def _upload(
    request: Request, settings: Settings, publisher: KafkaPublisher, limit: int
) -> Response:
    received_at = datetime.now(UTC)
    body = await read_decoded_body(request, limit)
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise bad_request("body", "expected a JSON object")
    source = _source(request, payload.get("api_key"), settings)
    events = _items(payload.get("events"), "events")
    try:
        sent_at = upload_time(payload.get("client_upload_time"))
    except ValueError as exc:
        raise bad_request("client_upload_time", f"not an ISO 8601 date-time: {exc}") from None
    request.state.amplitude_events = len(events)
    check_rate(request, source, len(events))
    received = Received(received_at, source, PROTOCOL, limits_of(settings))
    upload = Upload(sent_at=sent_at, max_message_id_length=settings.max_message_id_length)
    results = map_items(events, partial(map_event, upload=upload), received)
    rejected = await _publish(
        settings,
        publisher,
        results,
        source=source,
        endpoint=request.url.path.removeprefix(PREFIX),
        received_at=received_at,
        items=events,
    )
    return rejected or JSONResponse(success_body(len(results), len(body), received_at))


@router.post("/2/httpapi")
async def http_api(request: Request, settings: SettingsDep, publisher: PublisherDep) -> Response:
    """HTTP V2: {"api_key", "events": [...], "options"?, "client_upload_time"?}, up to 1 MB."""
    return await _upload(request, settings, publisher, HTTP_API_BYTES)


@router.post("/batch")
async def batch_api(request: Request, settings: SettingsDep, publisher: PublisherDep) -> Response:
    """Batch: the same body as HTTP V2, up to 20 MB."""
    return await _upload(request, settings, publisher, BATCH_BYTES)


@router.post("/identify")
async def identify_api(
    request: Request, settings: SettingsDep, publisher: PublisherDep
) -> Response:
    """Identify: a form (or JSON object) with api_key and identification, one JSON object or
    an array of {user_id | device_id, user_properties, ...}. Answers text `success`."""
    received_at = datetime.now(UTC)
    body = await read_decoded_body(request, HTTP_API_BYTES)
    # Amplitude documents a form; a JSON object with the same two fields is taken too.
    fields = parse_json(body) if body.lstrip().startswith(b"{") else form_fields(body)
    source = _source(request, fields.get("api_key"), settings)
    identification = fields.get("identification")
    if identification is None or identification == "":
        raise bad_request("identification", "missing")
    if isinstance(identification, str):
        identification = parse_json(identification, "identification")
    items = _items(
        identification if isinstance(identification, list) else [identification],
        "identification",
    )
    request.state.amplitude_events = len(items)
    check_rate(request, source, len(items))
    received = Received(received_at, source, PROTOCOL, limits_of(settings))
    upload = Upload(max_message_id_length=settings.max_message_id_length, identify_only=True)
    results = map_items(items, partial(map_event, upload=upload), received)
    rejected = await _publish(
        settings,
        publisher,
        results,
        source=source,
        endpoint="/identify",
        received_at=received_at,
        items=items,
    )
    return rejected or PlainTextResponse("success")
