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

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tests.support.browser import ARTIFACTS
from tests.support.npm_sdks import SDK_PACKAGES, NpmInstallError, install_sdk_packages
from tests.support.page_wire import Wire, compact, json_or_text
from tests.support.polling import eventually
from tests.support.stack import WRITE_KEY, RunningStack
from tests.support.static_site import static_site

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
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


@pytest.fixture(scope="session")
def sdk_node_modules() -> Path:
    """The pinned SDKs, installed by `npm ci` unless node_modules already matches the lock."""
    try:
        return install_sdk_packages()
    except NpmInstallError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def sdk_site(sdk_node_modules: Path) -> Iterator[str]:
    """tests/sdk_packages/ (its pages and node_modules) served on an origin of its own."""
    with static_site(SDK_PACKAGES) as origin:
        yield origin


class SegmentWire(Wire):
    """The Wire, reading Segment-spec bodies: which event went in which request."""

    def deliveries(self) -> list[dict[str, Any]]:
        """One row per event per request that carried it: messageId, name, and the status."""
        self.pump()
        rows = []
        for request in self.to_ingest():
            if request.method != "POST":
                continue
            body = json_or_text(self.body_of(request))
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


def stored_events(query: httpx.Client, user: str) -> list[dict[str, Any]]:
    response = query.get(f"/v1/users/{user}/events", params={"limit": 1000})
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json()["events"])


@pytest.fixture
def sdk_page(
    browser: Any, running_stack: RunningStack, sdk_site: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Any, SegmentWire]]:
    """A page in a fresh browser context with its Wire. Afterwards the wire summary is written to
    test-artifacts/sdk-wire-<case>.json and printed; on failure the page is screenshotted."""
    case = request.node.callspec.params["case"]
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    wire = SegmentWire.attach(context, page, ingest=running_stack.ingest_url, site=sdk_site)
    yield page, wire
    try:
        summary = wire.summary()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"sdk-wire-{case.name}.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"\n{case.name}: what the page at {sdk_site} sent to ingest at {wire.ingest}")
        print(compact(summary))
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            page.screenshot(path=str(ARTIFACTS / f"sdk-{case.name}.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_official_browser_sdk_delivers_each_event_once(
    case: SdkCase,
    running_stack: RunningStack,
    query: httpx.Client,
    sdk_site: str,
    sdk_page: tuple[Any, SegmentWire],
) -> None:
    page, wire = sdk_page
    started = datetime.now(UTC).date().isoformat()
    user = f"{case.name}-{uuid.uuid4().hex[:10]}"
    query_string = urlencode(
        {"ingest": running_stack.ingest_url, "writeKey": WRITE_KEY, "user": user, "mode": case.mode}
    )
    page.goto(f"{sdk_site}/pages/{case.page}?{query_string}")
    page.wait_for_function("() => window.sdkTest && window.sdkTest.state !== 'loading'")
    state = page.evaluate("() => window.sdkTest")
    assert state["state"] == "called", state

    # ingest answered 2xx for each of the five calls ...
    delivered = eventually(wire.delivered_message_ids, timeout=DELIVERY_TIMEOUT_S)
    # ... and the pipeline stored each of them once
    events = eventually(
        lambda: (
            found
            if len(found := stored_events(query, user)) >= sum(EXPECTED_NAMES.values())
            else None
        ),
        timeout=DELIVERY_TIMEOUT_S,
    )
    by_id = Counter(e["messageId"] for e in events)
    assert {k: n for k, n in by_id.items() if n > 1} == {}, "stored twice"
    assert set(by_id) == delivered
    assert Counter(e["name"] for e in events) == EXPECTED_NAMES
    # the SDK sent each event once: no retry, no second copy
    sent = Counter(row["messageId"] for row in wire.deliveries())
    assert {k: n for k, n in sent.items() if n > 1} == {}, wire.deliveries()

    profile = query.get(f"/v1/users/{user}")
    assert profile.status_code == 200, profile.text
    assert profile.json()["email"] == f"{user}@example.com"
    assert profile.json()["first_name"] == "Ada"

    daily = query.get(
        f"/v1/users/{user}/events/daily",
        params={"event": TRACK_EVENT, "days": 2, "tz": "UTC"},
    )
    assert daily.status_code == 200, daily.text
    counts = {row["date"]: row["count"] for row in daily.json()}
    # the three were sent within seconds of each other: one day (UTC), today's
    (day,) = {e["timestamp"][:10] for e in events if e["name"] == TRACK_EVENT}
    assert day in (started, datetime.now(UTC).date().isoformat())
    assert counts[day] == 3 and sum(counts.values()) == 3, counts

    assert wire.foreign_urls() == [], "the page fetched from another origin"
    assert wire.page_errors == []
    assert page.evaluate("() => window.sdkTest.errors") == []  # the SDK's own error events
    assert [c for c in wire.console if c["type"] == "error"] == []
