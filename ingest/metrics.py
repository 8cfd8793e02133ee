"""Ingest's metrics, in a registry of its own: its HTTP requests, the broker produce, and the
items it accepted and rejected by source (a configured source name: PS_WRITE_KEYS) and by a
bounded reason."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter

from infra.metrics import HttpMetrics, ProduceMetrics
from ingest.normalize import EventTooLarge, InvalidEvent

REGISTRY = CollectorRegistry()

HTTP = HttpMetrics(REGISTRY)
PRODUCE = ProduceMetrics(REGISTRY)

EVENTS_ACCEPTED = Counter(
    "profilestream_ingest_events_accepted_total",
    "Items (events, or a third-party protocol's records) accepted, counted once the broker "
    "acknowledged them, by source.",
    ["source"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "profilestream_ingest_events_rejected_total",
    "Items refused (each recorded on the rejections topic), by source and reason: the "
    "top-level field of the item's first error, too_large, or other.",
    ["source", "reason"],
    registry=REGISTRY,
)

TOO_LARGE = "too_large"  # over PS_MAX_EVENT_BYTES
OTHER = "other"
# The reasons a rejection is counted under: the top-level field its first error names, if it
# is one of these (Segment's fields, then the names Mixpanel's and Amplitude's records use),
# else OTHER. A fixed list keeps the label's values bounded whatever clients send.
FIELD_REASONS = frozenset(
    {
        # Segment spec ("event" is also what a non-object or too deeply nested item names)
        "event",
        "type",
        "userId",
        "anonymousId",
        "messageId",
        "timestamp",
        "sentAt",
        "originalTimestamp",
        "properties",
        "traits",
        "context",
        "integrations",
        "groupId",
        "previousId",
        "name",
        "category",
        # Mixpanel and Amplitude
        "record",
        "time",
        "event_type",
        "user_id",
        "device_id",
        "event_properties",
        "user_properties",
        "insert_id",
    }
)
REJECTION_REASONS = (*sorted(FIELD_REASONS), TOO_LARGE, OTHER)


def rejection_reason(refusal: InvalidEvent) -> str:
    """The bounded reason an item's refusal is counted under."""
    if isinstance(refusal, EventTooLarge):
        return TOO_LARGE
    if not refusal.errors:
        return OTHER
    field = refusal.errors[0].field
    top = field.split(".", 1)[0].split("[", 1)[0]
    return top if top in FIELD_REASONS else OTHER


def count_accepted(source: str, items: int) -> None:
    if items:
        EVENTS_ACCEPTED.labels(source).inc(items)


def count_rejected(source: str, reasons: Iterable[str]) -> None:
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[reason] = counts.get(reason, 0) + 1
    for reason, count in counts.items():
        EVENTS_REJECTED.labels(source, reason).inc(count)
