"""Pure: a PostHog capture request's bytes -> its events, token and send time, read the way
PostHog's capture service reads them (research 1.4): the `data` query parameter (GET) before
the body; a `data=` form; gzip by its magic bytes whatever the content type (or by a legacy
`compression=gzip|gzip-js`); whole-body base64 (`compression=base64`, or a body that is
neither JSON nor gzip); then an array of events, a batch `{api_key|token, batch, sent_at}` or
one event. lz-string (`compression=lz64`, posthog-js from before 2021) is refused, by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.http import ApiError
from ingest.limits import gunzip_bounded
from ingest.providers.common import (
    GZIP_MAGIC,
    bad_request,
    decode_base64,
    form_fields,
    parse_json,
)
from schemas.messages import FieldError

COMPRESSIONS = ("gzip", "gzip-js", "base64", "lz64", "")
# Where PostHog's capture looks for an event's token, in order.
EVENT_TOKEN_KEYS = ("token", "$token", "api_key")


@dataclass(frozen=True)
class Capture:
    """A decoded capture request: its events, the one token they share, and the batch's own
    `sent_at` (None when absent)."""

    items: list[Any]
    token: str | None
    sent_at: Any = None


def is_data_form(body: bytes) -> bool:
    """A `data=` form sent with another content type (base64 may end in `=`, so a `=` alone
    says nothing)."""
    return body.startswith(b"data=") or b"&data=" in body


def compression_of(query: Mapping[str, str], form: Mapping[str, str]) -> str:
    value = (form.get("compression") or query.get("compression") or "").strip().lower()
    if value not in COMPRESSIONS:
        raise bad_request(
            "compression", f"unknown compression {value[:20]!r}: gzip, gzip-js, base64 or none"
        )
    return value


def decoded_payload(
    body: bytes, content_type: str, query: Mapping[str, str], limit: int, method: str = "POST"
) -> Any:
    """The JSON value a request carries. `body` is already inflated when it was gzip
    (`common.read_decoded_body`). Raises a 400 naming `data` or `body` and why."""
    form: dict[str, str] = {}
    field = "body"
    data: bytes = body
    if query.get("data"):
        field, data = "data", query["data"].encode()
    elif body and (
        content_type.startswith("application/x-www-form-urlencoded") or is_data_form(body)
    ):
        form = form_fields(body)
        if "data" not in form:
            raise bad_request("data", "a form body needs a data field")
        field, data = "data", form["data"].encode()
    elif not body and method == "GET":
        raise bad_request("data", "missing: a GET carries its events in ?data=")
    compression = compression_of(query, form)
    if compression == "lz64":
        raise bad_request(
            "compression",
            "lz64 (lz-string) is not supported: upgrade posthog-js, or use gzip-js or base64",
        )
    return _json_value(data, field, limit)


def _json_value(data: bytes, field: str, limit: int) -> Any:
    """JSON, gzip of it, base64 of either, or base64 of base64 (legacy paths decode twice)."""
    for _ in range(3):
        if data.startswith(GZIP_MAGIC):
            data = gunzip_bounded(data, limit)
        stripped = data.lstrip()
        if stripped.startswith((b"{", b"[")):
            return parse_json(stripped, field)
        if not stripped:
            raise bad_request(field, "empty: expected events")
        decoded = decode_base64(stripped)
        if decoded is None:
            raise bad_request(field, "neither JSON, gzip nor base64 of them")
        data = decoded
    raise bad_request(field, "neither JSON, gzip nor base64 of them")


def _event_token(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    for key in EVENT_TOKEN_KEYS:
        if isinstance(item.get(key), str) and item[key]:
            return str(item[key])
    props = item.get("properties")
    if isinstance(props, dict) and isinstance(props.get("token"), str) and props["token"]:
        return str(props["token"])
    return None


def capture_of(payload: Any) -> Capture:
    """Events, token and `sent_at` of a decoded payload. The batch's `api_key`/`token` is the
    token; without one, every event's own, which must all be the same (else 401, as PostHog)."""
    if isinstance(payload, list):
        items, token, sent_at = payload, None, None
    elif isinstance(payload, dict) and "batch" in payload:
        items = payload["batch"]
        if not isinstance(items, list):
            raise bad_request("batch", "expected an array of events")
        token = next(
            (payload[k] for k in ("api_key", "token") if isinstance(payload.get(k), str)), None
        )
        sent_at = payload.get("sent_at")
    elif isinstance(payload, dict):
        items, token, sent_at = [payload], None, None
    else:
        raise bad_request("body", "expected an event, an array of events or a batch")
    if not items:
        raise bad_request("batch", "empty: expected at least one event")
    if not token:
        tokens = {t for t in (_event_token(i) for i in items) if t is not None}
        if len(tokens) > 1:
            raise ApiError(
                401,
                "the events of one request carry different tokens",
                [FieldError(field="token", reason="every event of a request needs the same")],
                code="multiple_tokens",
            )
        token = next(iter(tokens), None)
    return Capture(items=items, token=token or None, sent_at=sent_at)
