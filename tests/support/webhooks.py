"""Forwarded-stream requests as Segment's Webhooks destinations and RudderStack's webhook
destination send them, for the webhook tests (unit and end to end).

No client library sends these: Segment and rudder-server do, as services. So the bodies are
built from the documented payloads: Segment's spec messages as its Webhooks destination
forwards them (segment-docs `destinations/catalog/webhooks`, with the fields a forwarded
message carries: channel, context, integrations, messageId, originalTimestamp, projectId,
receivedAt, sentAt, timestamp, version, writeKey), and RudderStack's event as its `webhook`
destination forwards it unmodified (rudder-transformer `v0/destinations/webhook`: rudderId,
channel, request_ip, context.traits). Bodies are compact JSON, as Node's JSON.stringify writes
them, and signed as the destinations sign them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.providers.common import iso
from ingest.providers.webhooks.signature import sign

SEGMENT_PATH = "/webhooks/segment"
RUDDERSTACK_PATH = "/webhooks/rudderstack"


def _times(at: datetime, skew: timedelta) -> dict[str, str]:
    """A forwarded message's timing: the device clock `skew` off, the event sent a second
    after it happened and received at once; `timestamp` is the forwarder's corrected time,
    `receivedAt - (sentAt - originalTimestamp)`, which is `at`."""
    device = at + skew
    return {
        "originalTimestamp": iso(device),
        "sentAt": iso(device + timedelta(seconds=1)),
        "receivedAt": iso(at + timedelta(seconds=1)),
        "timestamp": iso(at),
    }


def segment_message(
    kind: str,
    message_id: str,
    *,
    at: datetime | None = None,
    skew: timedelta = timedelta(minutes=-7),
    **fields: Any,
) -> dict[str, Any]:
    """A Segment spec message as Segment's Webhooks destination posts it."""
    at = at or datetime.now(UTC).replace(microsecond=0)
    message: dict[str, Any] = {
        "anonymousId": "507f191e810c19729de860ea",
        "channel": "browser",
        "context": {
            "ip": "203.0.113.7",
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "locale": "en-US",
            "page": {"path": "/pricing", "url": "https://example.com/pricing", "title": "Pricing"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
        "integrations": {},
        "messageId": message_id,
        "projectId": "pZ3Xq9cS6r",
        "type": kind,
        "version": 2,
        "writeKey": "segment-source-write-key",
        **_times(at, skew),
    }
    message.update(fields)
    return {k: v for k, v in message.items() if v is not None}


def rudderstack_event(
    kind: str,
    message_id: str,
    *,
    at: datetime | None = None,
    skew: timedelta = timedelta(minutes=3),
    **fields: Any,
) -> dict[str, Any]:
    """A RudderStack event as its webhook destination forwards it (unmodified)."""
    at = at or datetime.now(UTC).replace(microsecond=0)
    event: dict[str, Any] = {
        "anonymousId": "8d872292-709c-4fe1-8f4b-7bd6a4b9a8d1",
        "channel": "web",
        "context": {
            "app": {"build": "1.0.0", "name": "RudderLabs JavaScript SDK", "version": "3.7.9"},
            "library": {"name": "RudderLabs JavaScript SDK", "version": "3.7.9"},
            "locale": "en-GB",
            "page": {"path": "/", "url": "https://shop.example.com/", "title": "Shop"},
            "screen": {"density": 2, "width": 1440, "height": 900},
            "traits": {"email": "cached@example.com"},
            "userAgent": "Mozilla/5.0 (Macintosh)",
        },
        "integrations": {"All": True},
        "messageId": message_id,
        "request_ip": "198.51.100.23",
        "rudderId": "fa2b3e4d-1b2c-4d5e-8f90-a1b2c3d4e5f6",
        "type": kind,
        **_times(at, skew),
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def compact(value: Any) -> bytes:
    """JSON as JSON.stringify writes these payloads (no spaces, keys in order)."""
    return orjson.dumps(value)


def signed(message: Any, secret: str) -> tuple[bytes, dict[str, str]]:
    """A Classic (or unbatched Actions) request: the body and its X-Signature header."""
    body = compact(message)
    return body, {"Content-Type": "application/json", "X-Signature": sign(secret, body)}


def signed_batch(messages: list[dict[str, Any]], secret: str) -> tuple[bytes, dict[str, str]]:
    """A batched Actions request: a JSON array, signed over its first element only."""
    body = compact(messages)
    signature = sign(secret, compact(messages[0]))
    return body, {"Content-Type": "application/json", "X-Signature": signature}
