"""Mixpanel's official SDKs, unchanged, against the real embedded stack at /mixpanel:
mixpanel (PyPI) 5.4.1 with a Consumer given our four URLs, and mixpanel-browser 2.83.0 (its
npm UMD build) in Chromium on a page of another origin. Each builds a profile (Mixpanel's
people operators applied), a sequence, daily counts and configs ($experiment_started), read
back through the query API; mixpanel-browser's retry after a 503 is stored once.

mixpanel-python retries only on https (its retry adapter is mounted on https:// alone), so its
retry cannot be exercised against this http stack; its /import dedups by $insert_id like any
event. What mixpanel-browser sent and what ingest answered is written to
test-artifacts/sdk-wire-<test>.json and printed (`pytest -s`)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from mixpanel import Consumer, Mixpanel, MixpanelException

from tests.support.browser import ARTIFACTS
from tests.support.forwarding_proxy import forwarding_proxy
from tests.support.npm_sdks import SDK_PACKAGES, NpmInstallError, install_sdk_packages
from tests.support.page_wire import Wire, compact
from tests.support.polling import eventually
from tests.support.queries import profile_when, uid
from tests.support.stack import SOURCE_SECRET, WRITE_KEY, RunningStack
from tests.support.static_site import static_site

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 15_000
DELIVERY_TIMEOUT_S = 60.0
TRACK_EVENT = "Song Played"
SENTINEL = "Sentinel"


def stored_events(query: httpx.Client, user: str) -> list[dict[str, Any]]:
    response = query.get(f"/v1/users/{user}/events", params={"limit": 1000})
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json()["events"])


def events_when(query: httpx.Client, user: str, expected: Counter[str]) -> list[dict[str, Any]]:
    """The user's stored events once at least `expected` (by name) are there."""

    def probe() -> list[dict[str, Any]] | None:
        found = stored_events(query, user)
        names = Counter(e["name"] for e in found)
        return found if all(names[n] >= k for n, k in expected.items()) else None

    return eventually(probe, timeout=DELIVERY_TIMEOUT_S)


def configs_of(query: httpx.Client, user: str) -> dict[str, str]:
    response = query.get(f"/v1/users/{user}/configs")
    response.raise_for_status()
    return {c["config"]: c["variation"] for c in response.json()}


def todays_count(query: httpx.Client, user: str, event: str) -> int:
    daily = query.get(
        f"/v1/users/{user}/events/daily", params={"event": event, "days": 2, "tz": "UTC"}
    )
    assert daily.status_code == 200, daily.text
    return int(sum(row["count"] for row in daily.json()))


def assert_stored_once(events: list[dict[str, Any]]) -> None:
    twice = {k: n for k, n in Counter(e["messageId"] for e in events).items() if n > 1}
    assert twice == {}, "stored twice"


def after_all_sent_for(
    ingest: httpx.Client, query: httpx.Client, user: str, ids: list[str]
) -> None:
    """Returns once every event sent for `ids` before this call has been processed: a sentinel
    per id, sent through the Segment API, lands on the same partition (the key is the id) after
    them, and shows in `user`'s sequence."""
    for n, profile_id in enumerate(ids):
        field = "userId" if profile_id == user else "anonymousId"
        sent = ingest.post(
            "/v1/track", json={field: profile_id, "event": SENTINEL, "properties": {"n": n}}
        )
        assert sent.status_code == 200, sent.text
    events_when(query, user, Counter({SENTINEL: len(ids)}))


# --- mixpanel (PyPI) --------------------------------------------------------------------------


def python_client(ingest_url: str) -> Mixpanel:
    """Full URLs: `api_host` would force https (research 2.1)."""
    base = f"{ingest_url}/mixpanel"
    consumer = Consumer(
        events_url=f"{base}/track",
        people_url=f"{base}/engage",
        groups_url=f"{base}/groups",
        import_url=f"{base}/import",
        request_timeout=30,
    )
    return Mixpanel(WRITE_KEY, consumer=consumer)


PY_EXPECTED = Counter(
    {
        TRACK_EVENT: 3,
        "$experiment_started": 1,
        "Old Event": 1,
        "$identify": 12,  # one per people_* call
    }
)


def test_mixpanel_python_builds_the_profile(
    running_stack: RunningStack, query: httpx.Client
) -> None:
    user = uid("mp-py")
    group = uid("acme")
    mp = python_client(running_stack.ingest_url)
    mp.people_set(user, {"$email": f"{user}@example.com", "$first_name": "Ada", "plan": "pro"})
    mp.people_set_once(user, {"first_plan": "free"})
    mp.people_set_once(user, {"first_plan": "gold"})  # already set: kept "free"
    mp.people_increment(user, {"logins": 2})
    mp.people_increment(user, {"logins": 1})
    mp.people_append(user, {"visits": "home"})
    mp.people_append(user, {"visits": "home"})  # duplicates kept
    mp.people_union(user, {"devices": ["ios", "web"]})
    mp.people_remove(user, {"devices": "ios"})
    mp.people_set(user, {"coupon": "WELCOME"})
    mp.people_unset(user, ["coupon"])
    mp.people_set(user, {"$browser": "x", "country": "NO"})  # Mixpanel's own $browser dropped
    for n in range(3):
        mp.track(user, TRACK_EVENT, {"n": n})
    mp.track(user, "$experiment_started", {"Experiment name": "checkout", "Variant name": "B"})
    mp.group_set("company", group, {"employees": 11})
    ten_days_ago = int(time.time()) - 10 * 86400
    mp.import_data(None, user, "Old Event", ten_days_ago, {"a": 1}, api_secret=SOURCE_SECRET)

    events = events_when(query, user, PY_EXPECTED)
    assert Counter(e["name"] for e in events) == PY_EXPECTED
    assert_stored_once(events)
    old = next(e for e in events if e["name"] == "Old Event")
    assert old["timestamp"].startswith(datetime.fromtimestamp(ten_days_ago, UTC).date().isoformat())

    # every event applied (the sequence is written before the profile)
    total = sum(PY_EXPECTED.values())
    profile = profile_when(query, user, lambda p: p["event_count"] == total)
    assert profile["email"] == f"{user}@example.com" and profile["first_name"] == "Ada"
    assert profile["country"] == "NO"
    assert profile["custom"] == {
        "plan": "pro",
        "first_plan": "free",
        "logins": 3,
        "visits": ["home", "home"],
        "devices": ["web"],
    }
    assert profile["rejections"] == []
    assert eventually(lambda: configs_of(query, user) or None) == {"checkout": "B"}
    assert todays_count(query, user, TRACK_EVENT) == 3

    # the group's record is stored under the group, as a group event
    group_events = events_when(query, f"$group:company:{group}", Counter({"$group": 1}))
    assert group_events[0]["traits"] == {"employees": 11}


def test_mixpanel_python_refusals_raise_in_the_sdk(running_stack: RunningStack) -> None:
    mp = python_client(running_stack.ingest_url)
    user = uid("mp-py-refused")
    with pytest.raises(MixpanelException, match="admin API"):
        mp.people_delete(user)
    with pytest.raises(MixpanelException, match="Invalid credentials"):
        mp.import_data(None, user, "Old Event", int(time.time()) - 86400, api_secret=WRITE_KEY)
    with pytest.raises(MixpanelException, match="credentials"):
        mp.import_data(None, user, "Old Event", int(time.time()) - 86400)
    bad_token = Mixpanel("not-a-write-key", consumer=mp._consumer)
    with pytest.raises(MixpanelException, match="unknown"):
        bad_token.track(user, TRACK_EVENT)


# --- mixpanel-browser in Chromium -------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_node_modules() -> Path:
    try:
        return install_sdk_packages()
    except NpmInstallError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def sdk_site(sdk_node_modules: Path) -> Iterator[str]:
    """tests/sdk_packages/ (its pages and node_modules) served on an origin of its own."""
    with static_site(SDK_PACKAGES) as origin:
        yield origin


def form_records(body: str | None) -> list[dict[str, Any]]:
    """mixpanel-browser's body: data=<base64 of a JSON array>, URL-encoded."""
    data = parse_qs(body or "").get("data", [""])[0]
    decoded = json.loads(base64.b64decode(data)) if data else []
    return decoded if isinstance(decoded, list) else [decoded]


class MixpanelWire(Wire):
    """The Wire, reading mixpanel-browser's base64 form bodies."""

    def track_rows(self) -> list[dict[str, Any]]:
        """One row per event per /track request that carried it: $insert_id, name, status."""
        self.pump()
        rows = []
        for request in self.to_ingest():
            path = urlsplit(request.url).path
            if request.method != "POST" or not path.startswith("/mixpanel/track"):
                continue
            response = self.response_of(request)
            for record in form_records(self.body_of(request)):
                rows.append(
                    {
                        "insert_id": record["properties"].get("$insert_id"),
                        "name": record.get("event"),
                        "status": response.status if response else None,
                    }
                )
        return rows

    def engage_records(self) -> int:
        self.pump()
        return sum(
            len(form_records(self.body_of(r)))
            for r in self.to_ingest()
            if r.method == "POST" and urlsplit(r.url).path.startswith("/mixpanel/engage")
        )

    def answered(self) -> list[tuple[str, str, int]]:
        self.pump()
        return [
            (r.method, urlsplit(r.url).path, self.response_of(r).status)
            for r in self.to_ingest()
            if self.response_of(r) is not None
        ]


@dataclass
class MixpanelPage:
    """A page in a fresh browser context; `open` attaches the Wire to the origin the page
    sends to (ingest, or a proxy in front of it) and loads mixpanel.html."""

    context: Any
    page: Any
    site: str
    wire: MixpanelWire | None = None

    def open(self, sends_to: str, user: str) -> tuple[dict[str, Any], MixpanelWire]:
        self.wire = MixpanelWire.attach(self.context, self.page, ingest=sends_to, site=self.site)
        query_string = urlencode({"ingest": sends_to, "writeKey": WRITE_KEY, "user": user})
        self.page.goto(f"{self.site}/pages/mixpanel.html?{query_string}")
        self.page.wait_for_function("() => window.sdkTest && window.sdkTest.state !== 'loading'")
        state: dict[str, Any] = self.page.evaluate("() => window.sdkTest")
        assert state["state"] == "called", state
        return state, self.wire


@pytest.fixture
def mixpanel_page(
    browser: Any, sdk_site: str, request: pytest.FixtureRequest
) -> Iterator[MixpanelPage]:
    """The page; afterwards its Wire's summary is written to test-artifacts/sdk-wire-<test>.json
    and printed, and a failed test's page is screenshotted."""
    name = request.node.name.removeprefix("test_")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    opened = MixpanelPage(context, page, sdk_site)
    yield opened
    try:
        if opened.wire is not None:
            summary = opened.wire.summary()
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / f"sdk-wire-{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
            print(f"\n{name}: what the page at {sdk_site} sent to {opened.wire.ingest}")
            print(compact(summary))
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            page.screenshot(path=str(ARTIFACTS / f"sdk-{name}.png"), full_page=True)
    finally:
        context.close()


# The page view and "Browsed" are the device's, merged into the user by $identify.
JS_TRACKED = Counter({"$page": 1, "Browsed": 1, TRACK_EVENT: 3, "$experiment_started": 1})
JS_PEOPLE_CALLS = 4  # set, set_once, increment, union: one /engage record each


def js_expected() -> Counter[str]:
    return JS_TRACKED + Counter({"$identify": 1 + JS_PEOPLE_CALLS})


def assert_js_profile(query: httpx.Client, user: str, state: dict[str, Any]) -> None:
    def applied(profile: dict[str, Any]) -> bool:
        totals = Counter(profile["event_totals"])
        del totals[SENTINEL]
        return totals == js_expected()

    profile = profile_when(query, user, applied)
    assert profile["email"] == f"{user}@example.com" and profile["first_name"] == "Ada"
    assert profile["custom"] == {
        "plan": "pro",
        "first_plan": "free",
        "logins": 2,
        "devices": ["web"],
    }
    assert state["deviceId"] in profile["anonymous_ids"]
    assert profile["rejections"] == []
    assert eventually(lambda: configs_of(query, user) or None) == {"checkout": "B"}


def test_mixpanel_js_in_chromium_builds_the_profile(
    running_stack: RunningStack, query: httpx.Client, mixpanel_page: MixpanelPage
) -> None:
    started = datetime.now(UTC).date().isoformat()
    user = f"mp-js-{uuid.uuid4().hex[:10]}"
    state, wire = mixpanel_page.open(running_stack.ingest_url, user)

    events = events_when(query, user, js_expected())
    assert Counter(e["name"] for e in events) == js_expected()
    assert_stored_once(events)
    # every event mixpanel-browser sent is stored, once; it sent each once (no retry)
    rows = eventually(
        lambda: found if len(found := wire.track_rows()) >= sum(JS_TRACKED.values()) + 1 else None
    )
    assert max(Counter(r["insert_id"] for r in rows).values()) == 1
    assert {r["insert_id"] for r in rows} == {
        e["messageId"] for e in events if e["name"] in {*JS_TRACKED, "$identify"}
    } - engage_message_ids(events, rows)
    assert_js_profile(query, user, state)

    (day,) = {e["timestamp"][:10] for e in events if e["name"] == TRACK_EVENT}
    assert day in (started, datetime.now(UTC).date().isoformat())
    assert todays_count(query, user, TRACK_EVENT) == 3

    answered = wire.answered()
    assert {status for _, _, status in answered} == {200}, answered
    assert wire.foreign_urls() == [], "the page fetched from another origin"
    assert wire.page_errors == []
    assert state["errors"] == []
    assert mixpanel_page.page.evaluate("() => window.sdkTest.errors") == []
    assert [c for c in wire.console if c["type"] == "error"] == []


def engage_message_ids(events: list[dict[str, Any]], rows: list[dict[str, Any]]) -> set[str]:
    """The stored $identify events that came from /engage records (their ids are ours)."""
    tracked = {r["insert_id"] for r in rows}
    return {e["messageId"] for e in events if e["name"] == "$identify"} - tracked


def test_mixpanel_js_retry_counts_once(
    running_stack: RunningStack,
    ingest: httpx.Client,
    query: httpx.Client,
    mixpanel_page: MixpanelPage,
) -> None:
    user = f"mp-js-retry-{uuid.uuid4().hex[:10]}"
    with forwarding_proxy(running_stack.ingest_url, "/mixpanel/track", fail_first=1) as proxy:
        state, wire = mixpanel_page.open(proxy.url, user)
        events_when(query, user, js_expected())

        def resent() -> list[dict[str, Any]] | None:
            found = wire.track_rows()
            statuses = {r["status"] for r in found}
            return found if {503, 200} <= statuses else None

        # the first /track batch: accepted by ingest, answered 503 by the proxy, sent again
        rows = eventually(resent, timeout=DELIVERY_TIMEOUT_S)
    failed = {r["insert_id"] for r in rows if r["status"] == 503}
    delivered = {r["insert_id"] for r in rows if r["status"] == 200}
    assert failed and failed <= delivered, rows
    assert proxy.log.failed()[0].upstream_status == 200

    after_all_sent_for(ingest, query, user, [user, state["deviceId"]])
    events = [e for e in stored_events(query, user) if e["name"] != SENTINEL]
    assert Counter(e["name"] for e in events) == js_expected()
    assert_stored_once(events)
    assert todays_count(query, user, TRACK_EVENT) == 3
    assert_js_profile(query, user, state)
    # the SDK reported the injected failure, and nothing else
    reported = mixpanel_page.page.evaluate("() => window.sdkTest.errors")
    assert reported and all("503" in e or "retry" in e.lower() for e in reported), reported
    assert wire.foreign_urls() == []
