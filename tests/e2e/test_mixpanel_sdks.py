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
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from mixpanel import Consumer, Mixpanel, MixpanelException

from tests.support.forwarding_proxy import forwarding_proxy
from tests.support.page_wire import Wire
from tests.support.polling import eventually
from tests.support.queries import profile_when, uid
from tests.support.query_checks import (
    DELIVERY_TIMEOUT_S,
    SENTINEL,
    assert_stored_once,
    configs_of,
    events_when,
    recent_count,
    stored_after_all_sent_for,
)
from tests.support.sdk_pages import SdkPage, assert_page_quiet
from tests.support.stack import SOURCE_SECRET, WRITE_KEY, RunningStack

pytestmark = pytest.mark.e2e

TRACK_EVENT = "Song Played"


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
    assert recent_count(query, user, TRACK_EVENT) == 3

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


def form_records(body: str | None) -> list[dict[str, Any]]:
    """mixpanel-browser's body: data=<base64 of a JSON array>, URL-encoded."""
    data = parse_qs(body or "").get("data", [""])[0]
    decoded = json.loads(base64.b64decode(data)) if data else []
    return decoded if isinstance(decoded, list) else [decoded]


class MixpanelWire(Wire):
    """The Wire, reading mixpanel-browser's base64 form bodies."""

    def track_rows(self) -> list[dict[str, Any]]:
        """One row per event per /track request that carried it: $insert_id, name, status."""
        rows = []
        for request in self.posts("/mixpanel/track"):
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
        return sum(len(form_records(self.body_of(r))) for r in self.posts("/mixpanel/engage"))


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
    running_stack: RunningStack, query: httpx.Client, sdk_page: SdkPage
) -> None:
    started = datetime.now(UTC).date().isoformat()
    user = f"mp-js-{uuid.uuid4().hex[:10]}"
    state, wire = sdk_page.open(MixpanelWire, "mixpanel.html", running_stack.ingest_url, user)

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
    assert recent_count(query, user, TRACK_EVENT) == 3

    answered = wire.answered()
    assert {status for _, _, status in answered} == {200}, answered
    assert_page_quiet(wire)
    assert state["errors"] == []
    assert sdk_page.page.evaluate("() => window.sdkTest.errors") == []


def engage_message_ids(events: list[dict[str, Any]], rows: list[dict[str, Any]]) -> set[str]:
    """The stored $identify events that came from /engage records (their ids are ours)."""
    tracked = {r["insert_id"] for r in rows}
    return {e["messageId"] for e in events if e["name"] == "$identify"} - tracked


def test_mixpanel_js_retry_counts_once(
    running_stack: RunningStack,
    ingest: httpx.Client,
    query: httpx.Client,
    sdk_page: SdkPage,
) -> None:
    user = f"mp-js-retry-{uuid.uuid4().hex[:10]}"
    with forwarding_proxy(running_stack.ingest_url, "/mixpanel/track", fail_first=1) as proxy:
        state, wire = sdk_page.open(MixpanelWire, "mixpanel.html", proxy.url, user)
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

    events = stored_after_all_sent_for(ingest, query, user, [user, state["deviceId"]])
    assert Counter(e["name"] for e in events) == js_expected()
    assert_stored_once(events)
    assert recent_count(query, user, TRACK_EVENT) == 3
    assert_js_profile(query, user, state)
    # the SDK reported the injected failure, and nothing else
    reported = sdk_page.page.evaluate("() => window.sdkTest.errors")
    assert reported and all("503" in e or "retry" in e.lower() for e in reported), reported
    assert wire.foreign_urls() == []
