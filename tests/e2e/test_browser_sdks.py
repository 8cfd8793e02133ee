"""Official browser SDKs, unchanged, in a real browser (Debian's Chromium driven by Playwright),
on a page of another origin than ingest, against the real embedded stack: Segment's
analytics-next (standard and batching delivery, and settings fetched from ingest) and
RudderStack's analytics-js v3 (XHR and beacon). The SDKs come from the npm registry, pinned in
tests/sdk_packages/ and installed by `npm ci` when the session starts; the page loads nothing
else from anywhere.

Each case identifies a user, tracks three events and sends a page, then checks through the query
API that the profile has the traits, that every event the SDK sent is stored exactly once, and
that the daily count is 3. What each SDK sent and what ingest answered (preflights included) is
written to test-artifacts/sdk-wire-<case>.json and printed (`pytest -s` shows it); on failure
the page is saved as a screenshot there too."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.page_wire import Wire
from tests.support.polling import eventually
from tests.support.query_checks import assert_stored_once, daily_counts, events_counting
from tests.support.sdk_pages import SdkPage, assert_page_quiet
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT_S = 30.0
TRACK_EVENT = "Song Played"
EXPECTED_NAMES = Counter({"$identify": 1, TRACK_EVENT: 3, "$page": 1})


@dataclass(frozen=True)
class SdkCase:
    name: str
    page: str
    mode: str


CASES = [
    SdkCase("segment-standard", "segment.html", "standard"),
    SdkCase("segment-batching", "segment.html", "batching"),
    SdkCase("segment-cdn-settings", "segment.html", "cdn"),
    SdkCase("rudderstack-xhr", "rudderstack.html", "xhr"),
    SdkCase("rudderstack-beacon", "rudderstack.html", "beacon"),
]


class SegmentWire(Wire):
    """The Wire, reading Segment-spec bodies: which event went in which request."""

    def deliveries(self) -> list[dict[str, Any]]:
        """One row per event per request that carried it: messageId, name, and the status."""
        rows = []
        for request, body in self.json_posts():
            if not isinstance(body, dict):
                continue
            batch = body.get("batch")
            events = batch if isinstance(batch, list) else [body]
            response = self.response_of(request)
            for event in events:
                if not isinstance(event, dict):
                    continue
                kind = event.get("type")
                rows.append(
                    {
                        "messageId": event.get("messageId"),
                        "name": event.get("event") if kind == "track" else f"${kind}",
                        "path": urlsplit(request.url).path,
                        "status": response.status if response else None,
                        "failure": request.failure,
                    }
                )
        return rows

    def delivered_message_ids(self) -> set[str] | None:
        """The messageIds ingest answered 2xx for; None until all of the five calls were."""
        ids = {
            row["messageId"]
            for row in self.deliveries()
            if row["status"] is not None and 200 <= row["status"] < 300 and not row["failure"]
        }
        return ids if len(ids) >= sum(EXPECTED_NAMES.values()) else None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_official_browser_sdk_delivers_each_event_once(
    case: SdkCase, running_stack: RunningStack, query: httpx.Client, sdk_page: SdkPage
) -> None:
    started = datetime.now(UTC).date().isoformat()
    user = f"{case.name}-{uuid.uuid4().hex[:10]}"
    _, wire = sdk_page.open(
        SegmentWire, case.page, running_stack.ingest_url, user, extra={"mode": case.mode}
    )

    # ingest answered 2xx for each of the five calls ...
    delivered = eventually(wire.delivered_message_ids, timeout=DELIVERY_TIMEOUT_S)
    # ... and the pipeline stored each of them once
    events = events_counting(query, user, sum(EXPECTED_NAMES.values()), timeout=DELIVERY_TIMEOUT_S)
    assert_stored_once(events, exactly=delivered)
    assert Counter(e["name"] for e in events) == EXPECTED_NAMES
    # the SDK sent each event once: no retry, no second copy
    sent = Counter(row["messageId"] for row in wire.deliveries())
    assert {k: n for k, n in sent.items() if n > 1} == {}, wire.deliveries()

    profile = query.get(f"/v1/users/{user}")
    assert profile.status_code == 200, profile.text
    assert profile.json()["email"] == f"{user}@example.com"
    assert profile.json()["first_name"] == "Ada"

    counts = daily_counts(query, user, TRACK_EVENT)
    # the three were sent within seconds of each other: one day (UTC), today's
    (day,) = {e["timestamp"][:10] for e in events if e["name"] == TRACK_EVENT}
    assert day in (started, datetime.now(UTC).date().isoformat())
    assert counts[day] == 3 and sum(counts.values()) == 3, counts

    assert_page_quiet(wire)
    assert sdk_page.page.evaluate("() => window.sdkTest.errors") == []  # the SDK's own errors
