"""Forwarded streams at /webhooks: Segment's Webhooks destination (Classic and Actions, signed
with a shared secret of PS_SOURCE_SECRETS) at /webhooks/segment, and RudderStack's webhook
destinations (unsigned: our write key as Basic user, Bearer token or `?writeKey=`) at
/webhooks/rudderstack. Both forward Segment-spec events: they are validated as the Segment API
validates them (ingest.providers.webhooks.mapping), published with ingest.accept, and answered
like the Segment API: 200 IngestResponse, errors as ErrorBody, 503 + Retry-After when the broker
does not acknowledge (both forwarders retry 5xx)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from infra.http import ApiError, error_response
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from ingest.accept import check_rate, publish_results
from ingest.auth import basic_credentials
from ingest.providers.common import (
    FIELD_OF_STATUS,
    Received,
    map_items,
    named_errors,
    parse_json,
    read_decoded_body,
    source_for_key,
)
from ingest.providers.webhooks.mapping import (
    rudderstack_event,
    rudderstack_items,
    segment_event,
    segment_items,
)
from ingest.providers.webhooks.signature import SIGNATURE_HEADER, signing_source
from ingest.routes import PublisherDep, SettingsDep, limits_of
from schemas.api import IngestResponse
from schemas.messages import FieldError

PREFIX = "/webhooks"
router = APIRouter(prefix=PREFIX)

SEGMENT_PROTOCOL = "segment-webhook"
RUDDERSTACK_PROTOCOL = "rudderstack-webhook"
# Segment's Actions destination batches up to 4,000 events (its maximum Batch Size); a body
# of that many full Segment events (context and all) is a few MB.
MAX_WEBHOOK_EVENTS = 4000
MAX_WEBHOOK_BYTES = 8 * 1024 * 1024
METHODS = ["POST", "PUT", "PATCH"]

Mapping = Callable[[Any], list[dict[str, Any]]]


def _unauthorized(field: str, reason: str) -> ApiError:
    return ApiError(401, f"{field}: {reason}", [FieldError(field=field, reason=reason)])


def _signature_of(request: Request, settings: Settings) -> tuple[str, dict[str, str]]:
    """The request's X-Signature and the secrets it may be made with; 401 when either is
    missing (checked before the body is read)."""
    secrets = settings.source_secret_map()
    if not secrets:
        raise _unauthorized(
            SIGNATURE_HEADER,
            "no shared secret is configured here: set PS_SOURCE_SECRETS (secret:source)",
        )
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise _unauthorized(
            SIGNATURE_HEADER,
            "missing: set the destination's Shared Secret to a secret of PS_SOURCE_SECRETS",
        )
    return signature, secrets


def rudderstack_key(request: Request) -> tuple[str | None, str]:
    """The write key of a RudderStack webhook request and the field it came in: the Basic
    user name, a Bearer token, or `?writeKey=`."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic":
        basic = basic_credentials(request)
        return (basic[0] or None) if basic else None, "Authorization"
    if scheme.lower() == "bearer":
        return credentials.strip() or None, "Authorization"
    if header:
        return None, "Authorization"
    return request.query_params.get("writeKey") or None, "writeKey"


async def _accept(
    request: Request,
    settings: Settings,
    publisher: KafkaPublisher,
    *,
    items: list[Any],
    single: bool,
    mapping: Mapping,
    source: str,
    protocol: str,
    received_at: datetime,
) -> IngestResponse:
    check_rate(request, source, len(items))
    received = Received(received_at, source, protocol, limits_of(settings))
    outcome = await publish_results(
        settings,
        publisher,
        map_items(items, mapping, received),
        source=source,
        endpoint=request.url.path.removeprefix("/"),
        received_at=received_at,
        single=single,
        items=items,
    )
    return IngestResponse(accepted=outcome.accepted, rejected=outcome.rejected)


async def segment_webhook(
    request: Request, settings: SettingsDep, publisher: PublisherDep
) -> IngestResponse:
    received_at = datetime.now(UTC)
    signature, secrets = _signature_of(request, settings)
    body = await read_decoded_body(request, MAX_WEBHOOK_BYTES)
    source = signing_source(body, signature, secrets, settings.segment_webhook_batched_source_set())
    if source is None:
        raise _unauthorized(
            SIGNATURE_HEADER,
            "does not match the body (HMAC-SHA1, hex) with any shared secret of PS_SOURCE_SECRETS",
        )
    items, single = segment_items(parse_json(body), MAX_WEBHOOK_EVENTS)
    return await _accept(
        request,
        settings,
        publisher,
        items=items,
        single=single,
        mapping=segment_event,
        source=source,
        protocol=SEGMENT_PROTOCOL,
        received_at=received_at,
    )


async def rudderstack_webhook(
    request: Request, settings: SettingsDep, publisher: PublisherDep
) -> IngestResponse:
    received_at = datetime.now(UTC)
    key, field = rudderstack_key(request)
    source = source_for_key(request, key, settings, field)
    body = await read_decoded_body(request, MAX_WEBHOOK_BYTES)
    items, single = rudderstack_items(parse_json(body), MAX_WEBHOOK_EVENTS)
    return await _accept(
        request,
        settings,
        publisher,
        items=items,
        single=single,
        mapping=rudderstack_event,
        source=source,
        protocol=RUDDERSTACK_PROTOCOL,
        received_at=received_at,
    )


router.add_api_route(
    "/segment",
    segment_webhook,
    methods=METHODS,
    response_model=IngestResponse,
    include_in_schema=False,
)
router.add_api_route(
    "/rudderstack",
    rudderstack_webhook,
    methods=METHODS,
    response_model=IngestResponse,
    include_in_schema=False,
)


# A 4xx raised below the routes (an unknown path or method, a body over the limit, bad gzip)
# has no field of its own: the one it concerns.
FIELDS = {**FIELD_OF_STATUS, 400: "body", 429: "source"}


def render_error(request: Request, error: ApiError) -> Response | None:
    """Both forwarders read only the status (2xx delivered; 5xx and 429 retried), so errors are
    our ErrorBody, whose `errors` always name a field on a 4xx."""
    if error.errors or error.status not in FIELDS:
        return error_response(error)
    named = named_errors(error, FIELDS)
    return error_response(
        ApiError(error.status, error.message, named, code=error.code, headers=error.headers)
    )
