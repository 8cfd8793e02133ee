"""Mixpanel's ingestion API at /mixpanel: /track, /engage, /groups (project token in each
record; POST, or GET with `data=` in the query) and /import (historic events, a server secret
of PS_SOURCE_SECRETS as the Basic-auth user name or password). Bodies: a form with `data=` as
JSON (mixpanel-python) or base64 JSON (mixpanel-js with a custom host), or raw JSON / NDJSON,
gzip by Content-Encoding or magic bytes. Replies in the shape each SDK reads (research 2.4):
`{"status":1,"error":null}` with verbose=1, else text `1`; /import's
`{"code":200,"num_records_imported":n,...}`. Errors keep Mixpanel's shape plus our `errors`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response

from infra.http import ApiError, matching_secret
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from ingest.accept import ItemResult, NothingAccepted, Outcome, check_rate, publish_results
from ingest.auth import basic_credentials
from ingest.normalize import InvalidEvent
from ingest.providers.common import (
    Received,
    bad_request,
    form_fields,
    invalid,
    json_or_base64_json,
    looks_like_form,
    map_items,
    named_errors,
    read_decoded_body,
    source_for_key,
    too_many,
)
from ingest.providers.mixpanel.mapping import (
    MAX_RECORDS,
    MAX_REQUEST_BYTES,
    PROTOCOL,
    Unparsed,
    engage_events,
    event_events,
    group_events,
    records_of,
    renamed_fields,
    sent_at_of,
    token_of,
)
from ingest.routes import limits_of
from schemas.api import RejectedEvent
from schemas.messages import FieldError

PREFIX = "/mixpanel"
router = APIRouter(prefix=PREFIX, include_in_schema=False)

FORM_TYPE = "application/x-www-form-urlencoded"
STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Payload:
    """A request's records and how it asked to be answered."""

    records: list[Any]
    form: bool  # `data=` in a form or the query (else a raw JSON / NDJSON body)
    verbose: bool
    strict: bool
    sent_at: str | None


class AllRefused(ApiError):
    """Every record was refused: a 400 whose `errors` name each record's fields (prefixed with
    `data.<index>.` when the request held an array) and whose `rejected` feeds /import's
    failed_records."""

    def __init__(self, rejected: list[RejectedEvent], array: bool) -> None:
        errors = _field_errors(rejected, array)
        # mixpanel-python shows only `error`: it says why
        reasons = "; ".join(f"{e.field}: {e.reason}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(400, f"no valid record in the request: {reasons}{more}", errors)
        self.rejected = rejected


def _field_errors(rejected: list[RejectedEvent], array: bool) -> list[FieldError]:
    return [
        FieldError(field=f"data.{r.index}.{e.field}" if array else e.field, reason=e.reason)
        for r in rejected
        for e in r.errors
    ]


# --- reading ----------------------------------------------------------------------------------


def _ndjson_records(body: bytes) -> list[Any]:
    """A raw JSON body (an object or an array), else NDJSON: one record a line, a bad line
    refused on its own."""
    try:
        return records_of(orjson.loads(body))
    except orjson.JSONDecodeError:
        pass
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) < 2:
        raise bad_request("body", "not valid JSON, NDJSON or a data= form")
    records: list[Any] = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            records.append(Unparsed(f"line {number} is not valid JSON: {exc}"))
    return records


async def read_payload(request: Request) -> Payload:
    body = b""
    if request.method == "POST":
        body = await read_decoded_body(request, MAX_REQUEST_BYTES)
    query = request.query_params
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, str] = {}
    stripped = body.strip()
    raw_records: list[Any] | None = None
    if stripped.startswith((b"{", b"[")):
        raw_records = _ndjson_records(stripped)
    elif stripped and (content_type == FORM_TYPE or looks_like_form(stripped)):
        fields = form_fields(stripped)
    elif stripped:
        raise bad_request("body", "expected a data= form, JSON or NDJSON")

    def flag(name: str) -> bool:
        return (fields.get(name) or query.get(name)) == "1"

    form = raw_records is None
    if raw_records is None:
        data = fields.get("data") or query.get("data")
        if not data:
            raise bad_request("data", "missing: expected data=<JSON or base64 of JSON>")
        raw_records = records_of(json_or_base64_json(data, "data", MAX_REQUEST_BYTES))
    if not raw_records:
        raise bad_request("data", "no record: expected an object or a non-empty array")
    if len(raw_records) > MAX_RECORDS:
        raise too_many(len(raw_records), MAX_RECORDS, "data", "records")
    return Payload(
        records=raw_records,
        form=form,
        verbose=flag("verbose"),
        strict=flag("strict"),
        sent_at=sent_at_of(query.get("_")),
    )


# --- authenticating ---------------------------------------------------------------------------


def token_sources(
    request: Request, settings: Settings, records: list[Any], endpoint: str
) -> tuple[str, list[str | InvalidEvent]]:
    """The request's source: that of the first known project token (401/403 when no record
    has a usable one), and per record its source or why its token is refused. A record whose
    token belongs to another source is refused: one request publishes for one source."""
    field = "$token" if endpoint in ("engage", "groups") else "properties.token"
    checked: dict[Any, str | ApiError] = {}
    outcomes: list[str | ApiError] = []
    for record in records:
        token = token_of(record, endpoint)
        key = token if isinstance(token, str) else None
        if key not in checked:
            try:
                checked[key] = source_for_key(request, token, settings, field)
            except ApiError as exc:
                checked[key] = exc
        outcomes.append(checked[key])
    sources = [o for o in outcomes if isinstance(o, str)]
    if not sources:
        first = outcomes[0]
        assert isinstance(first, ApiError)
        raise first
    source = sources[0]
    per_record: list[str | InvalidEvent] = []
    for outcome in outcomes:
        if isinstance(outcome, ApiError):
            reason = outcome.errors[0].reason if outcome.errors else outcome.message
            per_record.append(invalid(field, reason))
        elif outcome != source:
            per_record.append(
                invalid(field, "a project of another source than the request's first record")
            )
        else:
            per_record.append(outcome)
    return source, per_record


def secret_source(request: Request, settings: Settings) -> str:
    """/import's source: a server secret (PS_SOURCE_SECRETS) as the Basic-auth user name
    (mixpanel-python's `api_secret`) or password (a service account's). A project token is
    public in browsers, so it never suffices."""
    credentials = basic_credentials(request)
    if credentials is None:
        raise ApiError(
            401,
            "missing credentials: send a server secret by HTTP Basic auth",
            [FieldError(field="Authorization", reason="missing: Basic <secret>: expected")],
        )
    secrets = settings.source_secret_map()
    for candidate in credentials:
        matched = matching_secret(candidate, secrets) if candidate else None
        if matched is not None:
            return secrets[matched]
    raise ApiError(
        401,
        "Invalid credentials",
        [FieldError(field="Authorization", reason="not a server secret of any source")],
    )


# --- answering --------------------------------------------------------------------------------


def _rejected_json(rejected: list[RejectedEvent]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rejected]


def _failed_records(rejected: list[RejectedEvent]) -> list[dict[str, Any]]:
    """/import's failed_records: one row per refused record."""
    return [
        {
            "index": r.index,
            "insert_id": r.messageId,
            "$insert_id": r.messageId,
            "field": r.errors[0].field if r.errors else "record",
            "message": "; ".join(f"{e.field}: {e.reason}" for e in r.errors),
        }
        for r in rejected
    ]


def track_reply(payload: Payload, outcome: Outcome) -> Response:
    if payload.verbose:
        body: dict[str, Any] = {"status": 1, "error": None}
        if outcome.rejected:
            body["rejected"] = _rejected_json(outcome.rejected)
        return JSONResponse(body)
    return PlainTextResponse("1")


def import_reply(payload: Payload, outcome: Outcome) -> Response:
    # mixpanel-python posts /import as a verbose form and requires status == 1
    legacy = payload.form or payload.verbose
    body: dict[str, Any] = {
        "code": 200,
        "num_records_imported": outcome.accepted,
        "status": 1 if legacy else "OK",
    }
    if legacy:
        body["error"] = None
    if outcome.rejected:
        rows = _failed_records(outcome.rejected)
        if payload.strict:
            errors = _field_errors(outcome.rejected, len(payload.records) > 1)
            return JSONResponse(
                {
                    "code": 400,
                    "error": "some data points in the request failed validation",
                    "num_records_imported": outcome.accepted,
                    "status": "Bad Request",
                    "failed_records": rows,
                    "errors": [e.model_dump() for e in errors],
                },
                status_code=400,
            )
        body["failed_records"] = rows
    return JSONResponse(body)


def _errors_json(error: ApiError) -> list[dict[str, str]]:
    return [e.model_dump() for e in named_errors(error, default="request")]


def render_error(request: Request, error: ApiError) -> Response | None:
    """Mixpanel's error shapes, each with our `errors` list: /import's
    {"code", "error", "status"} (plus failed_records when records were refused), 401/403
    {"error", "status": "error"}, anything else {"status": 0, "error"} (what mixpanel-python
    reads as a failure)."""
    path = request.url.path[len(PREFIX) :]
    body: dict[str, Any]
    if path.startswith("/import"):
        body = {
            "code": error.status,
            "error": error.message,
            "status": STATUS_TEXT.get(error.status, "Error"),
        }
        if isinstance(error, AllRefused):
            body["num_records_imported"] = 0
            body["failed_records"] = _failed_records(error.rejected)
    elif error.status in (401, 403):
        body = {"error": error.message, "status": "error"}
    else:
        body = {"status": 0, "error": error.message}
    body["errors"] = _errors_json(error)
    return JSONResponse(body, status_code=error.status, headers=error.headers)


# --- routes -----------------------------------------------------------------------------------

Mapping = Callable[..., list[dict[str, Any]]]
MAPPINGS: dict[str, Mapping] = {
    "track": event_events,
    "engage": engage_events,
    "groups": group_events,
    "import": partial(event_events, historical=True),
}


async def _accept(request: Request, endpoint: str) -> tuple[Payload, Outcome]:
    settings: Settings = request.app.state.settings
    publisher: KafkaPublisher = request.app.state.publisher
    received_at = datetime.now(UTC)
    if endpoint == "import":
        source = secret_source(request, settings)  # before reading the body
        payload = await read_payload(request)
        per_record: list[str | InvalidEvent] = [source] * len(payload.records)
        sent_at = None  # no SDK sends its clock to /import
    else:
        payload = await read_payload(request)
        source, per_record = token_sources(request, settings, payload.records, endpoint)
        sent_at = payload.sent_at
    check_rate(request, source, len(payload.records))
    received = Received(received_at, source, PROTOCOL, limits_of(settings))
    mapping = partial(MAPPINGS[endpoint], sent_at=sent_at)
    mapped = map_items(payload.records, mapping, received)
    results: list[ItemResult] = [
        auth if isinstance(auth, InvalidEvent) else result
        for auth, result in zip(per_record, mapped, strict=True)
    ]
    results = [renamed_fields(r, endpoint) if isinstance(r, InvalidEvent) else r for r in results]
    try:
        outcome = await publish_results(
            settings,
            publisher,
            results,
            source=source,
            endpoint=f"mixpanel/{endpoint}",
            received_at=received_at,
            items=payload.records,
        )
    except NothingAccepted as exc:
        raise AllRefused(exc.rejected, len(payload.records) > 1) from None
    return payload, outcome


async def post_track(request: Request) -> Response:
    return track_reply(*await _accept(request, "track"))


async def post_engage(request: Request) -> Response:
    return track_reply(*await _accept(request, "engage"))


async def post_groups(request: Request) -> Response:
    return track_reply(*await _accept(request, "groups"))


async def post_import(request: Request) -> Response:
    return import_reply(*await _accept(request, "import"))


for _path, _handler in (
    ("/track", post_track),
    ("/engage", post_engage),
    ("/groups", post_groups),
):
    for _suffix in ("", "/"):
        router.add_api_route(_path + _suffix, _handler, methods=["GET", "POST"])
for _suffix in ("", "/"):
    router.add_api_route("/import" + _suffix, post_import, methods=["POST"])
