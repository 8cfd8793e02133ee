"""ingest/accept.py: one publish of the valid events and the rejections, NothingAccepted when no
item is valid, and a 503 (never a 2xx) when the broker does not acknowledge."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from infra.http import ApiError
from infra.settings import Settings
from ingest.accept import ItemResult, NothingAccepted, publish_results
from ingest.normalize import InvalidEvent, normalize_event
from schemas.events import Event
from schemas.messages import EventMessage, FieldError, RejectionMessage
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:web"})
AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def _event(user: str, message_id: str) -> list[Event]:
    raw = {"type": "track", "userId": user, "event": "E", "messageId": message_id}
    return [normalize_event(raw, received_at=AT, source="web")]


def _refused(field: str, message_id: str | None = None) -> ItemResult:
    return InvalidEvent([FieldError(field=field, reason="bad")], message_id)


async def test_valid_events_and_rejections_go_out_in_one_publish() -> None:
    publisher = RecordingPublisher(SETTINGS)
    results = [
        _event("ada", "m1"),
        _refused("event", "m2"),
        _event("bob", "m3") + _event("bob", "m4"),
    ]
    outcome = await publish_results(
        SETTINGS, publisher, results, source="web", endpoint="posthog", received_at=AT
    )
    assert (outcome.accepted, outcome.events) == (2, 3)
    assert [(r.index, r.messageId) for r in outcome.rejected] == [(1, "m2")]
    topics = [topic for topic, _, _ in publisher.records]
    assert topics == [SETTINGS.events_topic] * 3 + [SETTINGS.rejections_topic]
    keys = [key for _, key, _ in publisher.records[:3]]
    assert keys == [b"ada", b"bob", b"bob"]
    sent = [
        EventMessage.model_validate_json(v).event.message_id for _, _, v in publisher.records[:3]
    ]
    assert sent == ["m1", "m3", "m4"]
    rejection = RejectionMessage.model_validate_json(publisher.records[3][2])
    assert (rejection.endpoint, rejection.index, rejection.source) == ("posthog", 1, "web")


async def test_nothing_valid_records_the_rejections_and_raises_a_400_naming_each() -> None:
    publisher = RecordingPublisher(SETTINGS)
    with pytest.raises(NothingAccepted) as caught:
        await publish_results(
            SETTINGS,
            publisher,
            [_refused("userId"), _refused("event")],
            source="web",
            endpoint="batch",
            received_at=AT,
        )
    assert caught.value.status == 400
    assert [e.field for e in caught.value.errors] == ["batch.0.userId", "batch.1.event"]
    assert [r.index for r in caught.value.rejected] == [0, 1]
    assert [topic for topic, _, _ in publisher.records] == [SETTINGS.rejections_topic] * 2


async def test_a_single_event_request_names_its_fields_without_a_batch_index() -> None:
    with pytest.raises(NothingAccepted) as caught:
        await publish_results(
            SETTINGS,
            RecordingPublisher(SETTINGS),
            [_refused("userId")],
            source="web",
            endpoint="track",
            received_at=AT,
            single=True,
        )
    assert [e.field for e in caught.value.errors] == ["userId"]


async def test_an_unacknowledged_publish_is_a_503_with_retry_after() -> None:
    publisher = RecordingPublisher(SETTINGS, fail=True)
    with pytest.raises(ApiError) as caught:
        await publish_results(
            SETTINGS, publisher, [_event("ada", "m1")], source="web", endpoint="e", received_at=AT
        )
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": str(SETTINGS.retry_after_s)}
    # with nothing valid, the broker's state does not change the answer: still the 400
    with pytest.raises(NothingAccepted):
        await publish_results(
            SETTINGS, publisher, [_refused("event")], source="web", endpoint="e", received_at=AT
        )


async def test_an_item_with_nothing_to_store_is_accepted_beside_a_refused_one() -> None:
    publisher = RecordingPublisher(SETTINGS)
    outcome = await publish_results(
        SETTINGS, publisher, [[], _refused("$token")], source="web", endpoint="e", received_at=AT
    )
    assert (outcome.accepted, outcome.events, len(outcome.rejected)) == (1, 0, 1)
    assert [topic for topic, _, _ in publisher.records] == [SETTINGS.rejections_topic]
    nothing = await publish_results(
        SETTINGS, publisher, [[], []], source="web", endpoint="e", received_at=AT
    )
    assert (nothing.accepted, nothing.events) == (2, 0)
    assert len(publisher.records) == 1  # nothing more published
