"""The Segment HTTP Tracking API: /v1/track, identify, page, screen, group, alias and batch;
the short paths Segment's browser and mobile SDKs post to (/v1/t … /v1/a, /v1/b); RudderStack's
beacon batch (/beacon/v1/batch?writeKey=…); and the settings document Segment's SDKs load
(/v1/projects/{writeKey}/settings)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response

from infra.http import ApiError
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from ingest.accept import ItemResult, check_rate, publish_results
from ingest.auth import authenticate_source, has_basic_auth
from ingest.limits import MAX_NESTING, nesting_depth, parse_json_object, read_body
from ingest.normalize import (
    BatchDefaults,
    EventTooLarge,
    InvalidEvent,
    Limits,
    anonymous_id_from_header,
    normalize_event,
)
from schemas.api import IngestResponse
from schemas.events import EVENT_TYPES, SegmentEvent, to_utc_ms
from schemas.messages import FieldError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
beacon_router = APIRouter(prefix="/beacon/v1")

# Segment's browser SDK posts each event to /v1/<first letter of its type>; its batching mode
# and the mobile SDKs post batches to /v1/b.
SHORT_PATHS = {
    "t": "track",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_publisher(request: Request) -> KafkaPublisher:
    publisher: KafkaPublisher = request.app.state.publisher
    return publisher


SettingsDep = Annotated[Settings, Depends(get_settings)]
PublisherDep = Annotated[KafkaPublisher, Depends(get_publisher)]


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_event_bytes=settings.max_event_bytes,
        max_message_id_length=settings.max_message_id_length,
        max_future_skew=timedelta(seconds=settings.max_future_skew_s),
        skew_tolerance=timedelta(seconds=settings.clock_skew_tolerance_s),
    )


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def _ingest(
    request: Request,
    settings: Settings,
    publisher: KafkaPublisher,
    event_type: str | None,
    key_in_query: bool = False,
) -> IngestResponse:
    received_at = to_utc_ms(datetime.now(UTC))  # as stored: normalize_event need not truncate it
    keys = settings.write_key_map()
    origins = settings.write_key_origin_map()
    # With Basic auth, refuse a bad key before reading (and inflating) the body.
    source = authenticate_source(request, {}, keys, origins) if has_basic_auth(request) else None
    body = parse_json_object(await read_body(request, settings.max_request_bytes))
    if source is None:
        key_source = body
        if key_in_query and not body.get("writeKey"):
            # sendBeacon cannot set headers: RudderStack puts the key in the query string.
            key_source = {"writeKey": request.query_params.get("writeKey")}
        source = authenticate_source(request, key_source, keys, origins)
    endpoint = event_type or "batch"
    anonymous_id = anonymous_id_from_header(request.headers.get("anonymousid"))

    if event_type is None:
        items = body.get("batch")
        if not isinstance(items, list):
            raise ApiError(
                400,
                "batch must be a list of events",
                [FieldError(field="batch", reason="expected a JSON array of events")],
            )
        if not items:
            raise ApiError(
                400,
                "batch is empty",
                [FieldError(field="batch", reason="expected at least one event")],
            )
        if len(items) > settings.max_batch_events:
            raise ApiError(
                413,
                f"batch has {len(items)} events, over the {settings.max_batch_events} limit",
                [FieldError(field="batch", reason=f"at most {settings.max_batch_events} events")],
            )
        for name in ("context", "integrations"):
            if nesting_depth(body.get(name)) > MAX_NESTING:
                raise ApiError(
                    400,
                    f"batch {name} nests deeper than {MAX_NESTING} levels",
                    [FieldError(field=name, reason=f"nests deeper than {MAX_NESTING} levels")],
                )
        defaults = BatchDefaults(
            context=_dict_or_empty(body.get("context")),
            integrations=_dict_or_empty(body.get("integrations")),
            sent_at=body.get("sentAt"),
            anonymous_id=anonymous_id,
        )
    else:
        items, defaults = [body], BatchDefaults(anonymous_id=anonymous_id)

    check_rate(request, source, len(items))
    limits = limits_of(settings)
    results: list[ItemResult] = []
    for raw in items:
        try:
            results.append(
                [
                    normalize_event(
                        raw,
                        received_at=received_at,
                        source=source,
                        event_type=event_type,
                        defaults=defaults,
                        limits=limits,
                    )
                ]
            )
        except InvalidEvent as exc:
            if event_type is not None and isinstance(exc, EventTooLarge):
                raise ApiError(413, str(exc), exc.errors) from None
            results.append(exc)
    outcome = await publish_results(
        settings,
        publisher,
        results,
        source=source,
        endpoint=endpoint,
        received_at=received_at,
        single=event_type is not None,
        items=items,
    )
    return IngestResponse(accepted=outcome.accepted, rejected=outcome.rejected)


# The handlers read the body themselves (size limits, gzip, per-event errors), so the request
# body schema is declared for the OpenAPI document explicitly.
EVENT_SCHEMA: dict[str, Any] = SegmentEvent.model_json_schema()
WRITE_KEY_SCHEMA = {"type": "string", "description": "write key, if not sent by Basic auth"}


def _body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _single_event_route(event_type: str) -> None:
    async def handler(
        request: Request, settings: SettingsDep, publisher: PublisherDep
    ) -> IngestResponse:
        return await _ingest(request, settings, publisher, event_type)

    handler.__name__ = f"post_{event_type}"
    for short, full in SHORT_PATHS.items():
        if full == event_type:
            router.add_api_route(
                f"/{short}",
                handler,
                methods=["POST"],
                response_model=IngestResponse,
                include_in_schema=False,
            )
    router.add_api_route(
        f"/{event_type}",
        handler,
        methods=["POST"],
        response_model=IngestResponse,
        summary=f"Send one {event_type} event",
        openapi_extra=_body_schema(
            {
                **EVENT_SCHEMA,
                "properties": {**EVENT_SCHEMA["properties"], "writeKey": WRITE_KEY_SCHEMA},
                "required": [],
            }
        ),
    )


for _type in EVENT_TYPES:
    _single_event_route(_type)


BATCH_SCHEMA = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "maxItems": 2500, "items": EVENT_SCHEMA},
        "context": {"type": "object"},
        "integrations": {"type": "object"},
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": WRITE_KEY_SCHEMA,
    },
}


@router.post(
    "/batch",
    response_model=IngestResponse,
    summary="Send up to 2,500 events",
    openapi_extra=_body_schema(BATCH_SCHEMA),
)
async def post_batch(
    request: Request, settings: SettingsDep, publisher: PublisherDep
) -> IngestResponse:
    return await _ingest(request, settings, publisher, None)


router.add_api_route(
    "/b", post_batch, methods=["POST"], response_model=IngestResponse, include_in_schema=False
)


@beacon_router.post(
    "/batch",
    response_model=IngestResponse,
    summary="A batch sent with navigator.sendBeacon (the write key in `?writeKey=`)",
    openapi_extra=_body_schema(BATCH_SCHEMA),
)
async def post_beacon_batch(
    request: Request, settings: SettingsDep, publisher: PublisherDep
) -> IngestResponse:
    return await _ingest(request, settings, publisher, None, key_in_query=True)


def segment_settings(write_key: str, base_url: str) -> dict[str, Any]:
    """Pure: the settings document Segment's SDKs load from their CDN, pointing them at this
    ingest (`base_url`, e.g. http://127.0.0.1:8000). Only the Segment.io integration: another
    would make the browser SDK load its code from Segment's CDN. Remote metrics off."""
    url = urlsplit(base_url)
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{url.netloc}{url.path.rstrip('/')}/v1",
                "protocol": url.scheme,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "metrics": {"sampleRate": 0},
        "remotePlugins": [],
    }


@router.get("/projects/{write_key}/settings", summary="Segment SDK settings for a write key")
async def get_sdk_settings(
    write_key: str, request: Request, response: Response, settings: SettingsDep
) -> dict[str, Any]:
    # Built from the request's Host when PS_INGEST_PUBLIC_URL is unset: never cached for others.
    response.headers["Cache-Control"] = "no-store"
    keys = settings.write_key_map()
    try:
        authenticate_source(request, {"writeKey": write_key}, keys, settings.write_key_origin_map())
    except ApiError as exc:
        if exc.status == 401:
            raise ApiError(404, "no such write key") from None
        raise
    base_url = settings.ingest_public_url or str(request.base_url)
    return segment_settings(write_key, base_url)
