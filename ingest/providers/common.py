"""What the provider protocols share: decoding their bodies (gzip found by its magic bytes,
base64, `data=` forms), their time units, stable message ids, write-key lookup, and turning one
mapped item into normalized events. Pure, but for `read_decoded_body` and `source_for_key`."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import Request
from starlette.responses import Response

from infra.http import ApiError, matching_secret
from infra.settings import Settings
from ingest.auth import origin_problem
from ingest.limits import MAX_NESTING, gunzip_bounded, nesting_depth, read_body
from ingest.normalize import InvalidEvent, Limits, normalize_event
from schemas.events import MAX_CONFIG_TEXT_LENGTH, Event
from schemas.messages import FieldError

GZIP_MAGIC = b"\x1f\x8b"
# A form body has a handful of fields (data, verbose, ip, api_key, ...).
MAX_FORM_FIELDS = 32
# Epoch values above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
MILLISECONDS_ABOVE = 1e11

# Why an SDK's or a stream's profile deletion ($delete, Segment's type "delete") is refused:
# write keys are public in browsers, so anyone could delete anyone.
DELETE_REFUSED = (
    "profile deletion is not accepted from SDKs: delete through the admin API "
    "(DELETE /v1/users/{id}), which removes the events too"
)

# (path prefix, renderer): how a provider's errors look (ingest.app installs them).
ErrorRenderer = Callable[[Request, ApiError], Response]


@dataclass(frozen=True)
class Received:
    """What a mapping needs to know about the request besides its body."""

    received_at: datetime
    source: str
    protocol: str  # stored in each event's context.protocol: "posthog", "mixpanel", ...
    limits: Limits


def bad_request(field: str, reason: str, message: str | None = None) -> ApiError:
    return ApiError(400, message or f"{field}: {reason}", [FieldError(field=field, reason=reason)])


def too_many(count: int, limit: int, field: str, noun: str = "events") -> ApiError:
    """413 for a request carrying more than `limit` items (the SDKs that resend halve their
    batch on it), naming the field that holds them."""
    return ApiError(
        413,
        f"{count} {noun}, over the {limit} limit",
        [FieldError(field=field, reason=f"at most {limit} {noun} per request")],
    )


# The field an error raised without one concerns (an unknown path or method, a body over its
# limit, an unknown Content-Encoding: raised below the routes), so a 4xx always names one.
FIELD_OF_STATUS: Mapping[int, str] = {
    404: "path",
    405: "method",
    413: "body",
    415: "Content-Encoding",
}


def named_errors(
    error: ApiError, fields: Mapping[int, str] = FIELD_OF_STATUS, default: str = "body"
) -> list[FieldError]:
    """The error's own field errors, else one naming the field its status concerns."""
    if error.errors:
        return error.errors
    return [FieldError(field=fields.get(error.status, default), reason=error.message)]


def invalid(field: str, reason: str, message_id: str | None = None) -> InvalidEvent:
    return InvalidEvent([FieldError(field=field, reason=reason)], message_id)


async def read_decoded_body(request: Request, limit: int) -> bytes:
    """The body within `limit` bytes, inflated when gzip (by Content-Encoding, or by its magic
    bytes whatever the content type says: posthog-js sends gzip as text/plain)."""
    body = await read_body(request, limit)
    if body.startswith(GZIP_MAGIC):
        return gunzip_bounded(body, limit)
    return body


def form_fields(body: bytes | str) -> dict[str, str]:
    """An application/x-www-form-urlencoded body: each field's first value."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = parse_qs(
            text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="replace"
        )
    except ValueError as exc:
        raise bad_request("body", f"not a valid form: {exc}") from None
    return {name: values[0] for name, values in parsed.items()}


def looks_like_form(body: bytes) -> bool:
    head = body[:64]
    return b"=" in head and not head.lstrip().startswith((b"{", b"["))


def decode_base64(text: str | bytes) -> bytes | None:
    """Standard or URL-safe base64, padding optional, spaces read as '+' (a form decoder turns
    an unescaped '+' into a space); None when it is not base64."""
    raw = text.encode() if isinstance(text, str) else text
    # Spaces first: a '+' at either end decoded to a space must not be stripped away.
    raw = raw.replace(b" ", b"+").strip().replace(b"\n", b"").replace(b"\r", b"")
    raw = raw.replace(b"-", b"+").replace(b"_", b"/")
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_json(data: bytes | str, field: str = "body") -> Any:
    if not data:
        raise bad_request(field, "empty: expected JSON")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise bad_request(field, f"not valid JSON: {exc}") from None


def json_or_base64_json(data: str | bytes, field: str, limit: int) -> Any:
    """JSON as it is, or base64 of JSON (or of gzip of JSON): what `data=` fields hold."""
    raw = data.encode() if isinstance(data, str) else data
    stripped = raw.lstrip()
    if stripped.startswith((b"{", b"[")):
        return parse_json(stripped, field)
    decoded = decode_base64(raw)
    if decoded is None:
        raise bad_request(field, "neither JSON nor base64 of JSON")
    if decoded.startswith(GZIP_MAGIC):
        decoded = gunzip_bounded(decoded, limit)
    return parse_json(decoded, field)


def epoch_to_datetime(value: Any, unit: str = "auto") -> datetime | None:
    """An epoch number (seconds, or milliseconds when `unit` is "ms", or when "auto" and it is
    above 1e11) as a UTC datetime; None when it is not a usable number."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    seconds = (
        value / 1000 if unit == "ms" or (unit == "auto" and value > MILLISECONDS_ABOVE) else value
    )
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def config_text(value: Any) -> str | None:
    """A flag key or a served variation as our config text: booleans as "true"/"false",
    numbers as written, strings of 1..255 characters; None for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_CONFIG_TEXT_LENGTH:
        return value
    return None


def stable_message_id(*parts: Any) -> str:
    """A messageId derived from what identifies an event when the SDK sent no id of its own,
    so a resend of the same event dedups like one with an id. Parts nested deeper than the
    events ingest accepts are refused (orjson stops at 255 levels) as an InvalidEvent."""
    if nesting_depth(list(parts)) > MAX_NESTING:
        raise invalid("event", f"nests deeper than {MAX_NESTING} levels")
    digest = hashlib.sha256(orjson.dumps(list(parts), option=orjson.OPT_SORT_KEYS)).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def text_id(value: Any) -> str | None:
    """An id as text: strings as they are, numbers stringified, anything else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def source_for_key(request: Request, key: Any, settings: Settings, field: str = "token") -> str:
    """The source of write key `key` (a provider's token or api_key is one of our write keys):
    401 when missing or unknown, 403 when the key is limited to other browser origins."""
    if not isinstance(key, str) or not key:
        raise ApiError(401, f"missing {field}", [FieldError(field=field, reason="missing")])
    keys = settings.write_key_map()
    matched = matching_secret(key, keys)
    if matched is None:
        raise ApiError(
            401, f"unknown {field}", [FieldError(field=field, reason="not a known write key")]
        )
    origin = request.headers.get("origin")
    problem = origin_problem(origin, settings.write_key_origin_map().get(matched))
    if problem is not None:
        raise ApiError(
            403,
            f"origin {origin} may not use this key",
            [FieldError(field="Origin", reason=problem)],
        )
    return keys[matched]


def normalized(mapped: Sequence[Mapping[str, Any]], received: Received) -> list[Event]:
    """Mapped Segment-spec events -> normalized events (the same validation, limits and
    clock-skew correction as the Segment API), each tagged with its protocol. Raises the first
    event's InvalidEvent: an item's events are taken or refused together."""
    events: list[Event] = []
    for raw in mapped:
        events.append(
            normalize_event(
                raw,
                received_at=received.received_at,
                source=received.source,
                limits=received.limits,
                protocol=received.protocol,
            )
        )
    return events


def map_items(
    items: Sequence[Any],
    mapping: Callable[[Any], list[dict[str, Any]]],
    received: Received,
) -> list[list[Event] | InvalidEvent]:
    """Each item through the provider's mapping and then normalization; a refused item keeps
    its index and its reasons and costs no other item anything."""
    results: list[list[Event] | InvalidEvent] = []
    for item in items:
        try:
            results.append(normalized(mapping(item), received))
        except InvalidEvent as exc:
            results.append(exc)
    return results


def rendered_by_prefix(
    renderers: Sequence[tuple[str, ErrorRenderer]],
) -> Callable[[Request, ApiError], Response | None]:
    """The renderer of the first prefix the request's path starts with, or None."""

    def render(request: Request, error: ApiError) -> Response | None:
        path = request.url.path
        for prefix, renderer in renderers:
            if path == prefix or path.startswith(prefix + "/"):
                return renderer(request, error)
        return None

    return render
