"""PostHog's capture protocol at /posthog (posthog-js, posthog-python, posthog-node): the event
paths of PostHog's capture service, its feature-flags and remote-config calls answered so that
the SDKs start cleanly, and errors in PostHog's shape. The routes read, authenticate, map and
publish; decoding, mapping and replies are pure (decoding.py, mapping.py, replies.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from infra.http import ApiError
from ingest.accept import check_rate, publish_results
from ingest.providers.common import (
    Received,
    map_items,
    read_decoded_body,
    source_for_key,
    too_many,
)
from ingest.providers.posthog.decoding import capture_of, decoded_payload
from ingest.providers.posthog.mapping import PROTOCOL, Envelope, map_event, sent_at_from
from ingest.providers.posthog.replies import (
    CAPTURE_OK,
    error_body,
    flags_reply,
    remote_config,
    remote_config_script,
)
from ingest.routes import PublisherDep, SettingsDep, limits_of

PREFIX = "/posthog"
router = APIRouter(prefix=PREFIX)

# PostHog's capture router (rust/capture/src/router.rs): the same handler on every path, /track
# and /engage included (plain aliases there, not Mixpanel's), 20 MB for /batch, 2 MB others.
EVENT_PATHS = ("/e", "/i/v0/e", "/capture", "/track", "/engage")
BATCH_PATHS = ("/batch",)
EVENT_BODY_LIMIT = 2 * 1024 * 1024
BATCH_BODY_LIMIT = 20 * 1024 * 1024
# PostHog bounds a request by its size only; this bounds the work one request can ask for (a
# 20 MB body of tiny events is half a million of them). posthog-python sends 100 per batch
# (flush_at), posthog-js what it gathered in 3 s.
MAX_EVENTS = 10_000
FLAGS_PATHS = ("/flags", "/decide")
FLAGS_BODY_LIMIT = 1024 * 1024
CONFIG_MAX_AGE_S = 300
METHODS = ["GET", "POST"]


def render_error(request: Request, error: ApiError) -> Response | None:
    return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)


async def _capture(
    request: Request, settings: SettingsDep, publisher: PublisherDep, limit: int
) -> Response:
    received_at = datetime.now(UTC)
    query = dict(request.query_params)
    body = await read_decoded_body(request, limit)
    payload = decoded_payload(
        body, request.headers.get("content-type", ""), query, limit, request.method
    )
    capture = capture_of(payload)
    source = source_for_key(request, capture.token, settings, "api_key")
    if len(capture.items) > MAX_EVENTS:
        raise too_many(len(capture.items), MAX_EVENTS, "batch")
    check_rate(request, source, len(capture.items))
    envelope = Envelope(
        received_at=received_at,
        sent_at=sent_at_from(capture.sent_at, query.get("_") or query.get("sent_at")),
    )
    received = Received(received_at, source, PROTOCOL, limits_of(settings))
    results = map_items(capture.items, partial(map_event, envelope=envelope), received)
    # Some items refused, some not: the valid ones are published and the answer is 200, as
    # posthog-python drops a whole batch on a 4xx; the refused ones are recorded as rejections.
    await publish_results(
        settings,
        publisher,
        results,
        source=source,
        endpoint=PROTOCOL + request.url.path.removeprefix(PREFIX).rstrip("/"),
        received_at=received_at,
        items=capture.items,
    )
    if query.get("beacon") == "1":
        return Response(status_code=204)  # what PostHog answers a beacon
    return JSONResponse(CAPTURE_OK)


async def capture_event(
    request: Request, settings: SettingsDep, publisher: PublisherDep
) -> Response:
    return await _capture(request, settings, publisher, EVENT_BODY_LIMIT)


async def capture_batch(
    request: Request, settings: SettingsDep, publisher: PublisherDep
) -> Response:
    return await _capture(request, settings, publisher, BATCH_BODY_LIMIT)


def _flags_token(payload: Any, query: dict[str, str]) -> Any:
    if isinstance(payload, dict):
        for key in ("token", "api_key", "$token"):
            if payload.get(key):
                return payload[key]
    return query.get("token") or query.get("api_key")


async def flags(request: Request, settings: SettingsDep) -> Response:
    """No flags for anyone (not evaluated here); the token must be a write key."""
    query = dict(request.query_params)
    body = await read_decoded_body(request, FLAGS_BODY_LIMIT)
    payload = None
    if body or query.get("data"):
        payload = decoded_payload(
            body, request.headers.get("content-type", ""), query, FLAGS_BODY_LIMIT, "POST"
        )
    token = _flags_token(payload, query)
    source_for_key(request, token, settings, "token")
    with_config = request.url.path.startswith(f"{PREFIX}/decide") or query.get("config") == "true"
    return JSONResponse(flags_reply(token, with_config))


async def config_json(token: str, request: Request, settings: SettingsDep) -> Response:
    source_for_key(request, token, settings, "token")
    return JSONResponse(
        remote_config(token), headers={"Cache-Control": f"public, max-age={CONFIG_MAX_AGE_S}"}
    )


async def config_js(token: str, request: Request, settings: SettingsDep) -> Response:
    source_for_key(request, token, settings, "token")
    return Response(
        remote_config_script(token),
        media_type="application/javascript",
        headers={"Cache-Control": f"public, max-age={CONFIG_MAX_AGE_S}"},
    )


for _path in EVENT_PATHS:
    for _variant in (_path, f"{_path}/"):
        router.add_api_route(_variant, capture_event, methods=METHODS, include_in_schema=False)
for _path in BATCH_PATHS:
    for _variant in (_path, f"{_path}/"):
        router.add_api_route(_variant, capture_batch, methods=METHODS, include_in_schema=False)
for _path in FLAGS_PATHS:
    for _variant in (_path, f"{_path}/"):
        router.add_api_route(_variant, flags, methods=METHODS, include_in_schema=False)
router.add_api_route("/array/{token}/config", config_json, methods=["GET"], include_in_schema=False)
router.add_api_route(
    "/array/{token}/config.js", config_js, methods=["GET"], include_in_schema=False
)
