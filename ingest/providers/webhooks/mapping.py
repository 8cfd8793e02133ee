"""Forwarded Segment-spec events -> the events we validate and store. Pure.

Segment's Webhooks destinations and RudderStack's webhook destination forward events that are
already Segment spec, so the mapping is small:
- the event time is the one the forwarder already corrected for the device's clock
  (`timestamp`), not corrected again against our own receipt: a Segment retry can come hours
  later, and the event still happened when it did;
- `type: "delete"` (a Segment user-deletion request) is refused: see DELETE_REFUSED;
- RudderStack's `request_ip` fills `context.ip` when that is missing;
- an event without a messageId gets one derived from its contents, so a resend of the same body
  counts once (both forwarders send one; this is for hand-built requests).
Everything else (ids, properties, traits, context.traits for identify, integrations) goes through
the Segment API's own validation unchanged (ingest.normalize)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ingest.limits import MAX_NESTING, nesting_depth
from ingest.normalize import Limits
from ingest.providers.common import (
    DELETE_REFUSED,
    bad_request,
    invalid,
    iso,
    parse_json,
    stable_message_id,
    too_many,
)
from schemas.events import to_utc_ms

# The forwarders' own timing fields: replaced by the one event time computed from them.
TIMING_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)
_LIMITS = Limits()


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return to_utc_ms(_DATETIME.validate_python(value))
    except (ValidationError, OverflowError):
        return None


def event_time(item: Mapping[str, Any]) -> Any:
    """When a forwarded event happened: its `timestamp` (the forwarder's clock-skew-corrected
    time); else the forwarder's correction redone from its own receipt, `receivedAt -
    (sentAt - originalTimestamp)`; else `originalTimestamp`; None when it has none of them (it
    happened when we received it). Unparseable values are passed on for validation to name."""
    if item.get("timestamp") is not None:
        return item["timestamp"]
    original = item.get("originalTimestamp")
    times = [_datetime(item.get(n)) for n in ("receivedAt", "sentAt", "originalTimestamp")]
    received, sent, device = times
    if received is not None and sent is not None and device is not None:
        try:
            return iso(received - (sent - device))
        except OverflowError:
            return original
    return original


def _client_message_id(item: Mapping[str, Any]) -> str | None:
    value = item.get("messageId")
    if isinstance(value, str) and 0 < len(value) <= _LIMITS.max_message_id_length:
        return value
    return None


def forwarded_event(item: Any) -> dict[str, Any]:
    """One forwarded Segment-spec event as the Segment API's validation takes it."""
    if not isinstance(item, dict):
        raise invalid("event", "an event must be a JSON object")
    if item.get("type") == "delete":
        raise invalid("type", DELETE_REFUSED, _client_message_id(item))
    if item.get("context") is not None and not isinstance(item["context"], dict):
        # as the Segment API refuses it (the protocol tag must not make it an object)
        raise invalid("context", "expected an object", _client_message_id(item))
    event = {k: v for k, v in item.items() if k not in TIMING_FIELDS}
    when = event_time(item)
    if when is not None:
        event["timestamp"] = when
    if event.get("messageId") is None and nesting_depth(item) <= MAX_NESTING:
        # (deeper events are refused by validation, and could not be hashed)
        event["messageId"] = stable_message_id("webhook", item)
    return event


# The Classic destination's documented alias example spells its ids "Previous ID" and
# "User ID" (segment-docs catalog/webhooks); Segment's spec, and every other example, spell
# them previousId and userId. Both are taken, the spec's names first.
DOCUMENTED_ALIAS_IDS = {"previousId": "Previous ID", "userId": "User ID"}


def segment_event(item: Any) -> list[dict[str, Any]]:
    """A message of Segment's Webhooks destination (Classic or Actions)."""
    event = forwarded_event(item)
    if event.get("type") == "alias":
        for name, documented in DOCUMENTED_ALIAS_IDS.items():
            spelled = event.pop(documented, None)
            if event.get(name) is None and spelled is not None:
                event[name] = spelled
    return [event]


def rudderstack_event(item: Any) -> list[dict[str, Any]]:
    """An event of RudderStack's webhook destination: `request_ip` fills a missing context.ip;
    `rudderId` and `channel` are RudderStack's own and not kept."""
    event = forwarded_event(item)
    ip = event.pop("request_ip", None)
    context = event.get("context")
    if isinstance(ip, str) and ip and (context is None or isinstance(context, dict)):
        context = context or {}
        if not context.get("ip"):
            event["context"] = {**context, "ip": ip}
    return [event]


def _checked(items: list[Any], limit: int) -> list[Any]:
    if not items:
        raise bad_request("batch", "expected at least one event")
    if len(items) > limit:
        raise too_many(len(items), limit, "batch")
    return items


def segment_items(body: Any, limit: int) -> tuple[list[Any], bool]:
    """The events of a Segment webhook body and whether it was a single event: Classic and
    unbatched Actions send one event object, batched Actions a JSON array of them."""
    if isinstance(body, dict):
        return [body], True
    if isinstance(body, list):
        return _checked(body, limit), False
    raise bad_request("body", "expected a Segment event (a JSON object) or a JSON array of them")


def rudderstack_items(body: Any, limit: int) -> tuple[list[Any], bool]:
    """The events of a RudderStack webhook body and whether it was a single event: one event
    object, or a JSON array of them. The HTTP Webhook destination's transformer batches as
    `{"batch": "<the array as a JSON string>"}`, which rudder-server unwraps and sends as the
    array (router/network.go, `JSON_ARRAY`); that wrapped form, with the string or the array
    itself, is taken too."""
    if isinstance(body, list):
        return _checked(body, limit), False
    if not isinstance(body, dict):
        raise bad_request(
            "body", 'expected a RudderStack event, a JSON array of them, or {"batch": [...]}'
        )
    if "batch" not in body or "type" in body:
        return [body], True
    batch = body["batch"]
    if isinstance(batch, str):
        batch = parse_json(batch, "batch")
    if not isinstance(batch, list):
        raise bad_request("batch", "expected a JSON array of events, or that array as a string")
    return _checked(batch, limit), False
