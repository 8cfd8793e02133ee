"""What every ingest endpoint does once it knows the source and its events: the rate limit,
then one publish of the valid events and the rejections, and no 2xx for an event the broker did
not acknowledge. The Segment routes and every third-party protocol (ingest/providers) go
through here; each renders the outcome in its own reply shape."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request

from infra.clients import partition_for_key
from infra.http import ApiError
from infra.publisher import BrokerUnavailable, KafkaPublisher, Record
from infra.settings import Settings
from ingest.metrics import count_accepted, count_rejected, rejection_reason
from ingest.normalize import InvalidEvent
from ingest.ratelimit import RateLimiter
from ingest.rejection_bodies import rejected_body
from schemas.api import RejectedEvent
from schemas.events import Event
from schemas.messages import (
    FieldError,
    RejectionMessage,
    events_message,
    events_message_groups,
)

log = logging.getLogger(__name__)

# What one item of a request became: its events (an item of a third-party protocol may become
# several, e.g. a track and a link), or why it was refused.
ItemResult = list[Event] | InvalidEvent


@dataclass(frozen=True)
class Outcome:
    """A request's items, at least one of them accepted, and its events (and rejections)
    acknowledged by the broker."""

    accepted: int  # items accepted (each may have become several events)
    events: int  # events published
    rejected: list[RejectedEvent]


class NothingAccepted(ApiError):
    """Every item of the request was refused (their rejections were recorded): a 400 that
    names each item's errors. `rejected` keeps the per-item detail for the protocols whose
    replies list failing indices."""

    def __init__(self, rejected: list[RejectedEvent], single: bool = False) -> None:
        errors = [
            FieldError(field=e.field if single else f"batch.{r.index}.{e.field}", reason=e.reason)
            for r in rejected
            for e in r.errors
        ]
        super().__init__(400, "no valid event in the request", errors)
        self.rejected = rejected


def event_records(settings: Settings, events: Sequence[Event], partitions: int) -> list[Record]:
    """The events as version 2 messages (schemas.messages.EventsMessage): one per partition of
    the events topic (more if large), each holding that partition's events in request order,
    keyed by its own first event's user. Kafka's default partitioner puts that key in the same
    partition as every event of the message, so per-user order holds and the worker pays its
    per-message costs once per partition of a request instead of once per event."""
    all_partitions = list(range(partitions))
    groups: dict[int, tuple[list[bytes], list[bytes]]] = {}  # partition -> keys, events
    for event in events:
        key = event.profile_key.encode()
        partition = partition_for_key(key, all_partitions, all_partitions)
        group = groups.get(partition)
        if group is None:
            group = groups[partition] = ([], [])
        group[0].append(key)
        group[1].append(event.model_dump_json().encode())
    return [
        (settings.events_topic, keys[first], events_message(chunk))
        for keys, encoded in groups.values()
        for first, chunk in events_message_groups(encoded)
    ]


def rejection_records(
    settings: Settings,
    rejected: list[RejectedEvent],
    source: str,
    endpoint: str,
    at: datetime,
    items: Sequence[Any] = (),
) -> list[Record]:
    """One rejection message per refused item; with the request's `items` (in the order of
    their results), each carries its item's body for the dashboard's debugger, secrets removed
    (ingest.rejection_bodies)."""
    secrets = settings.secrets() if items else []
    records: list[Record] = []
    for r in rejected:
        body, truncated = (
            rejected_body(items[r.index], secrets, settings.max_event_bytes)
            if r.index < len(items)
            else (None, False)
        )
        message = RejectionMessage(
            source=source,
            endpoint=endpoint,
            index=r.index,
            message_id=r.messageId,
            errors=r.errors,
            received_at=at,
            body=body,
            body_truncated=truncated,
        )
        records.append(
            (settings.rejections_topic, source.encode(), message.model_dump_json().encode())
        )
    return records


def check_rate(request: Request, source: str, items: int) -> None:
    """429 if `source` may not send `items` events now. Called after authentication (unknown
    keys stay 401) and before normalizing or producing, so a refused request costs little and
    publishes nothing. Every item counts, valid or not: the invalid ones are produced to the
    rejections topic too."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is not None:
        limiter.check(source, items)


def broker_unavailable(settings: Settings, exc: BrokerUnavailable) -> ApiError:
    return ApiError(
        503,
        f"events not accepted, retry later: {exc}",
        headers={"Retry-After": str(settings.retry_after_s)},
    )


async def publish_results(
    settings: Settings,
    publisher: KafkaPublisher,
    results: Sequence[ItemResult],
    *,
    source: str,
    endpoint: str,
    received_at: datetime,
    single: bool = False,
    items: Sequence[Any] = (),
) -> Outcome:
    """Publish the valid events and the rejections in one call. Raises `NothingAccepted` when
    every item was refused (after recording the rejections, best effort) and a 503 `ApiError`
    when the broker does not acknowledge. An item may be valid and map to no event (a
    provider's record that only touched the provider's own properties): it counts as accepted.
    `items` (the request's items, one per result) gives each rejection its item's body."""
    events: list[Event] = []
    rejected: list[RejectedEvent] = []
    reasons: list[str] = []  # each rejection's bounded reason, for ingest.metrics
    for index, result in enumerate(results):
        if isinstance(result, InvalidEvent):
            rejected.append(
                RejectedEvent(index=index, messageId=result.message_id, errors=result.errors)
            )
            reasons.append(rejection_reason(result))
        else:
            events.extend(result)
    rejections = rejection_records(settings, rejected, source, endpoint, received_at, items)
    if len(rejected) == len(results):
        try:
            await publisher.publish(rejections)
        except BrokerUnavailable:
            log.warning("could not record %d rejected events", len(rejections))
        count_rejected(source, reasons)  # the client is told they are refused either way
        raise NothingAccepted(rejected, single)
    if not events and not rejections:  # every item accepted, and none had anything to store
        count_accepted(source, len(results))
        return Outcome(accepted=len(results), events=0, rejected=[])
    try:
        partitions = await publisher.partition_count(settings.events_topic) if events else 1
        await publisher.publish(event_records(settings, events, partitions) + rejections)
    except BrokerUnavailable as exc:
        raise broker_unavailable(settings, exc) from None
    # Counted only now that the broker acknowledged: a 503 counts nothing.
    count_accepted(source, len(results) - len(rejected))
    count_rejected(source, reasons)
    return Outcome(accepted=len(results) - len(rejected), events=len(events), rejected=rejected)
