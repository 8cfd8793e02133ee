"""ingest/metrics.py and its counting in ingest/accept.py: items accepted by source once the
broker acknowledged them (a 503 counts none), items rejected by source and a bounded reason,
and produce failures; then the running stack's ingest scraped after good and bad events.
Counters are process-wide (and the stack's ingest is shared): every check is a difference."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from infra.http import ApiError
from infra.settings import Settings
from ingest.accept import ItemResult, NothingAccepted, publish_results
from ingest.app import create_app
from ingest.metrics import OTHER, REGISTRY, REJECTION_REASONS, TOO_LARGE, rejection_reason
from ingest.normalize import EventTooLarge, InvalidEvent, normalize_event
from profilestream.embedded import free_port
from schemas.events import Event
from schemas.messages import FieldError
from tests.support.publishers import RecordingPublisher
from tests.support.scrape import scraped
from tests.support.stack import RunningStack

AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:metrics-web"})


def accepted(source: str) -> float:
    value = REGISTRY.get_sample_value(
        "profilestream_ingest_events_accepted_total", {"source": source}
    )
    return value or 0.0


def rejected(source: str, reason: str) -> float:
    labels = {"source": source, "reason": reason}
    return REGISTRY.get_sample_value("profilestream_ingest_events_rejected_total", labels) or 0.0


def refusal(*fields: str) -> InvalidEvent:
    return InvalidEvent([FieldError(field=f, reason="bad") for f in fields])


@pytest.mark.parametrize(
    ("refused", "reason"),
    [
        (refusal("userId", "event"), "userId"),  # the first error decides
        (refusal("properties.plan.tier"), "properties"),
        (refusal("context.page.url"), "context"),
        (refusal("timestamp"), "timestamp"),
        (refusal("event_type"), "event_type"),  # Amplitude's name
        (refusal("$distinct_id"), OTHER),
        (refusal("ada@example.com"), OTHER),  # a client-chosen name never becomes a label
        (refusal(), OTHER),
        (EventTooLarge([FieldError(field="event", reason="event is 40000 bytes")]), TOO_LARGE),
    ],
)
def test_rejection_reasons_come_from_a_fixed_list(refused: InvalidEvent, reason: str) -> None:
    assert rejection_reason(refused) == reason
    assert reason in REJECTION_REASONS


def good(user: str) -> list[Event]:
    raw = {"type": "track", "userId": user, "event": "E"}
    return [normalize_event(raw, received_at=AT, source="metrics-web")]


async def test_accepted_and_rejected_items_are_counted_after_the_acknowledgement() -> None:
    source = "metrics-mixed"
    before = accepted(source), rejected(source, "userId"), rejected(source, "event")
    results: list[ItemResult] = [
        good("ada"),
        refusal("userId"),
        good("bob") + good("bob"),
        refusal("event"),
    ]
    await publish_results(
        SETTINGS,
        RecordingPublisher(SETTINGS),
        results,
        source=source,
        endpoint="batch",
        received_at=AT,
    )
    after = accepted(source), rejected(source, "userId"), rejected(source, "event")
    # items, as the answer's `accepted` counts them (bob's item became two events)
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1]


async def test_a_request_of_refused_items_counts_them_rejected() -> None:
    source = "metrics-refused"
    before = accepted(source), rejected(source, "timestamp")
    with pytest.raises(NothingAccepted):
        await publish_results(
            SETTINGS,
            RecordingPublisher(SETTINGS),
            [refusal("timestamp"), refusal("timestamp")],
            source=source,
            endpoint="batch",
            received_at=AT,
        )
    assert (accepted(source), rejected(source, "timestamp")) == (before[0], before[1] + 2)


async def test_nothing_is_counted_when_the_broker_does_not_acknowledge() -> None:
    source = "metrics-unacknowledged"
    before = accepted(source), rejected(source, "userId")
    with pytest.raises(ApiError) as refused:
        await publish_results(
            SETTINGS,
            RecordingPublisher(SETTINGS, fail=True),
            [good("ada"), refusal("userId")],
            source=source,
            endpoint="batch",
            received_at=AT,
        )
    assert refused.value.status == 503
    assert (accepted(source), rejected(source, "userId")) == before


async def test_normalization_refusals_are_counted_under_their_field() -> None:
    """The real normalization's errors, through the app: the reasons an operator sees."""
    publisher = RecordingPublisher(SETTINGS)
    transport = httpx.ASGITransport(app=create_app(SETTINGS, publisher))
    reasons = ("userId", "event", "timestamp", TOO_LARGE)
    before = {r: rejected("metrics-web", r) for r in reasons}
    batch = [
        {"type": "track", "event": "E"},  # no user
        {"type": "track", "userId": "ada"},  # no event name
        {"type": "track", "userId": "ada", "event": "E", "timestamp": "1999-01-01T00:00:00Z"},
        {"type": "track", "userId": "ada", "event": "E", "properties": {"x": "y" * 40_000}},
        {"type": "track", "userId": "ada", "event": "E"},
    ]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://ingest", auth=("k1", "")
    ) as client:
        response = await client.post("/v1/batch", json={"batch": batch})
    assert response.status_code == 200, response.text
    assert {r: rejected("metrics-web", r) - before[r] for r in reasons} == dict.fromkeys(reasons, 1)


async def test_a_broker_that_cannot_be_reached_is_a_produce_failure_and_nothing_accepted() -> None:
    settings = Settings.from_environment(
        {
            "PS_WRITE_KEYS": "k1:metrics-down",
            "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",  # nothing listens
            "PS_KAFKA_REQUEST_TIMEOUT_MS": "500",
            "PS_PUBLISH_TIMEOUT_S": "1",
        }
    )
    app = create_app(settings)  # its own KafkaPublisher, observed by ingest's metrics
    failures_before = REGISTRY.get_sample_value("profilestream_broker_produce_failures_total")
    before = accepted("metrics-down")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingest", auth=("k1", "")
    ) as client:
        response = await client.post("/v1/track", json={"userId": "ada", "event": "E"})
    await app.state.publisher.close()
    assert response.status_code == 503
    failures = REGISTRY.get_sample_value("profilestream_broker_produce_failures_total")
    assert failures == (failures_before or 0) + 1
    assert accepted("metrics-down") == before


@pytest.mark.e2e
def test_the_running_ingest_counts_what_was_sent(running_stack: RunningStack) -> None:
    """N good and M bad events to the stack's ingest (a process of its own, a real broker):
    its /metrics shows +N accepted and +M rejected, by reason, and the produce and the
    request it took."""
    source = "other-source"  # second-key's: few other tests send with it
    series = {
        "accepted": ("profilestream_ingest_events_accepted_total", {"source": source}),
        "no user": (
            "profilestream_ingest_events_rejected_total",
            {"source": source, "reason": "userId"},
        ),
        "no name": (
            "profilestream_ingest_events_rejected_total",
            {"source": source, "reason": "event"},
        ),
        "produced": ("profilestream_broker_produce_duration_seconds_count", {}),
        "requests": (
            "profilestream_http_requests_total",
            {"route": "/v1/batch", "method": "POST", "status": "200"},
        ),
    }
    with httpx.Client(
        base_url=running_stack.ingest_url, auth=("second-key", ""), timeout=30
    ) as client:
        before = {key: scraped(client, *s) for key, s in series.items()}
        batch = [{"type": "track", "userId": f"metrics-{n}", "event": "E"} for n in range(7)]
        batch += [{"type": "track", "event": "E"}] * 2 + [{"type": "track", "userId": "x"}] * 3
        response = client.post("/v1/batch", json={"batch": batch})
        assert response.status_code == 200, response.text
        after = {key: scraped(client, *s) for key, s in series.items()}
    assert {key: after[key] - before[key] for key in series} == {
        "accepted": 7,
        "no user": 2,
        "no name": 3,
        "produced": 1,
        "requests": 1,
    }
