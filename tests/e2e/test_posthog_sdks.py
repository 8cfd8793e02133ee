"""PostHog's official SDKs, unchanged but for the host, against the real embedded stack:
posthog (PyPI) and posthog-js (npm, its own browser build, in Chromium on a page of another
origin). Each sets person properties, identifies or aliases, identifies a group, reports a
variation served and tracks three events; the query API then shows the profile with the
operations applied, the sequence, the daily count and the configs. And an SDK's retry counts
once: a proxy answers 503 to the first upload after ingest accepted it, the SDK resends, and
each event is stored once.

What posthog-js sent and what ingest answered is written to
test-artifacts/sdk-wire-posthog-*.json and printed (`pytest -s`)."""

from __future__ import annotations

import gzip
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from posthog import Posthog

from tests.support.browser import ARTIFACTS
from tests.support.forwarding_proxy import forwarding_proxy
from tests.support.npm_sdks import SDK_PACKAGES, NpmInstallError, install_sdk_packages
from tests.support.page_wire import Wire, compact
from tests.support.polling import eventually
from tests.support.queries import profile_when, uid
from tests.support.stack import WRITE_KEY, RunningStack
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
    counts = {row["date"]: row["count"] for row in daily.json()}
    return int(sum(counts.values()))


def after_all_sent_for(
    ingest: httpx.Client, query: httpx.Client, user: str, ids: list[str]
) -> None:
    """Returns once every event sent for `ids` before this call has been processed: a sentinel
    per id, sent through the Segment API, lands on the same partition (the key is the id) after
    them, and shows in `user`'s sequence (an anonymous id's once it is merged into the user)."""
    for n, profile_id in enumerate(ids):
        field = "userId" if profile_id == user else "anonymousId"
        sent = ingest.post(
            "/v1/track", json={field: profile_id, "event": SENTINEL, "properties": {"n": n}}
        )
        assert sent.status_code == 200, sent.text
    events_when(query, user, Counter({SENTINEL: len(ids)}))


def assert_stored_once(events: list[dict[str, Any]]) -> None:
    twice = {k: n for k, n in Counter(e["messageId"] for e in events).items() if n > 1}
    assert twice == {}, "stored twice"


# --- posthog (PyPI) ---------------------------------------------------------------------------


def python_client(host: str, errors: list[Any]) -> Posthog:
    return Posthog(
        WRITE_KEY,
        host=host,
        gzip=True,
        flush_interval=0.2,
        on_error=lambda error, batch: errors.append(error),
    )


def test_posthog_python_builds_the_profile(
    running_stack: RunningStack, query: httpx.Client
) -> None:
    user, anonymous = uid("ph-py"), uid("ph-py-anon")
    errors: list[Any] = []
    client = python_client(f"{running_stack.ingest_url}/posthog", errors)
    # before sign-up, a personless event of the anonymous id ...
    client.capture(
        "Landing Viewed", distinct_id=anonymous, properties={"$process_person_profile": False}
    )
    # ... linked to the user's id at sign-up
    client.alias(previous_id=anonymous, distinct_id=user)
    client.capture(
        "signed_up",
        distinct_id=user,
        properties={
            "plan": "pro",
            "$set": {"email": f"{user}@example.com"},
            "$set_once": {"first_plan": "free"},
        },
    )
    client.set(distinct_id=user, properties={"first_name": "Ada"})
    client.set_once(distinct_id=user, properties={"first_plan": "pro"})  # keeps "free"
    client.group_identify("company", f"{user}-acme", {"employees": 11}, distinct_id=user)
    for n in range(1, 4):
        client.capture(TRACK_EVENT, distinct_id=user, properties={"n": n})
    # no flags are evaluated here: the SDK's /flags call gets none, and works
    flags = client.evaluate_flags(user, flag_keys=["checkout"])
    assert flags.get_flag("checkout") in (None, False)
    # a variation the app served (as PostHog's SDKs report one), and one in a $feature/ property
    client.capture(
        "$feature_flag_called",
        distinct_id=user,
        properties={"$feature_flag": "checkout", "$feature_flag_response": "B"},
    )
    client.capture("Paid", distinct_id=user, properties={"$feature/onboarding": True})
    client.flush()
    client.shutdown()
    assert errors == []

    expected = Counter(
        {
            "Landing Viewed": 1,
            "$alias": 1,
            "signed_up": 1,
            "$identify": 2,
            "$group": 1,
            TRACK_EVENT: 3,
            # the SDK reports its own read of "checkout" (no value: no variation), and ours
            "$feature_flag_called": 2,
            "Paid": 1,
        }
    )
    events = events_when(query, user, expected)
    assert Counter(e["name"] for e in events) == expected
    assert_stored_once(events)

    profile = profile_when(query, user, lambda p: p.get("first_name") == "Ada")
    assert profile["email"] == f"{user}@example.com"
    assert profile["identified"] is True
    assert profile["custom"]["first_plan"] == "free"
    assert anonymous in profile["anonymous_ids"]
    assert profile["rejections"] == []
    assert todays_count(query, user, TRACK_EVENT) == 3
    assert eventually(lambda: configs_of(query, user) or None) == {
        "checkout": "B",
        "onboarding": "true",
    }


def test_posthog_python_retry_counts_once(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client
) -> None:
    user = uid("ph-py-retry")
    errors: list[Any] = []
    with forwarding_proxy(running_stack.ingest_url, "/posthog/batch", fail_first=1) as proxy:
        client = python_client(f"{proxy.url}/posthog", errors)
        for n in range(1, 4):
            client.capture(TRACK_EVENT, distinct_id=user, properties={"n": n})
        client.flush()
        client.shutdown()
        uploads = [e for e in proxy.log.exchanges if e.path.startswith("/posthog/batch")]
    assert errors == []
    # the first upload was accepted by ingest, answered 503 by the proxy, and sent again
    assert [(e.upstream_status, e.returned_status) for e in uploads] == [(200, 503), (200, 200)]
    after_all_sent_for(ingest, query, user, [user])
    events = [e for e in stored_events(query, user) if e["name"] != SENTINEL]
    assert len(events) == 3
    assert_stored_once(events)
    assert todays_count(query, user, TRACK_EVENT) == 3


# --- posthog-js in Chromium -------------------------------------------------------------------


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


class PosthogWire(Wire):
    """The Wire, reading posthog-js's uploads: gzip (text/plain) or JSON batches to /e/."""

    def body_of(self, request: Any) -> str | None:
        """The body as text, gzip inflated (Playwright's post_data decodes bytes as UTF-8)."""
        raw = request.post_data_buffer if request.method == "POST" else None
        if raw is None:
            return super().body_of(request)
        if raw.startswith(b"\x1f\x8b"):
            raw = gzip.decompress(raw)
        return str(raw.decode(errors="replace"))

    def uploads(self) -> list[dict[str, Any]]:
        """One row per event per request that carried it: uuid, name, and the status."""
        self.pump()
        rows = []
        for request in self.to_ingest():
            path = urlsplit(request.url).path
            if request.method != "POST" or not path.startswith("/posthog/e"):
                continue
            body = json.loads(self.body_of(request) or "null")
            response = self.response_of(request)
            for event in body.get("batch", []) if isinstance(body, dict) else body:
                rows.append(
                    {
                        "uuid": event.get("uuid"),
                        "name": event.get("event"),
                        "status": response.status if response else None,
                        "failure": request.failure,
                    }
                )
        return rows

    def answered(self) -> list[tuple[str, str, int | None]]:
        """(method, path, status) of every request to ingest that got an answer."""
        self.pump()
        return [
            (r.method, urlsplit(r.url).path, self.response_of(r).status)
            for r in self.to_ingest()
            if self.response_of(r) is not None
        ]


@pytest.fixture
def posthog_page(
    browser: Any, running_stack: RunningStack, sdk_site: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Any, PosthogWire]]:
    """A page in a fresh browser context with its Wire; the summary is written to
    test-artifacts/sdk-wire-<test>.json and printed, and a failed test's page screenshotted."""
    name = request.node.name.removeprefix("test_")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    wire = PosthogWire.attach(context, page, ingest=running_stack.ingest_url, site=sdk_site)
    yield page, wire
    try:
        summary = wire.summary()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"sdk-wire-{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(f"\n{name}: what the page at {sdk_site} sent to ingest at {wire.ingest}")
        print(compact(summary))
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            page.screenshot(path=str(ARTIFACTS / f"sdk-{name}.png"), full_page=True)
    finally:
        context.close()


def open_page(page: Any, sdk_site: str, ingest: str, user: str) -> dict[str, Any]:
    query_string = urlencode({"ingest": ingest, "writeKey": WRITE_KEY, "user": user})
    page.goto(f"{sdk_site}/pages/posthog.html?{query_string}")
    page.wait_for_function("() => window.sdkTest && window.sdkTest.state !== 'loading'")
    state: dict[str, Any] = page.evaluate("() => window.sdkTest")
    assert state["state"] == "called", state
    return state


JS_EXPECTED = Counter(
    {
        "$page": 1,
        "$identify": 2,  # identify, setPersonProperties
        TRACK_EVENT: 3,
        "$feature_flag_called": 1,
        "$group": 1,
        "$alias": 1,
    }
)


def test_posthog_js_in_chromium_builds_the_profile(
    running_stack: RunningStack,
    query: httpx.Client,
    sdk_site: str,
    posthog_page: tuple[Any, PosthogWire],
) -> None:
    page, wire = posthog_page
    started = datetime.now(UTC).date().isoformat()
    user = f"ph-js-{uuid.uuid4().hex[:10]}"
    state = open_page(page, sdk_site, running_stack.ingest_url, user)
    assert state["flag"] == "B"

    events = events_when(query, user, JS_EXPECTED)
    assert Counter(e["name"] for e in events) == JS_EXPECTED
    assert_stored_once(events)
    # every event posthog-js sent is stored, once; it sent each once (no retry)
    uploads = eventually(
        lambda: rows if len(rows := wire.uploads()) >= sum(JS_EXPECTED.values()) else None
    )
    assert {r["uuid"] for r in uploads} == {e["messageId"] for e in events}
    assert {n for n in Counter(r["uuid"] for r in uploads).values()} == {1}

    profile = profile_when(query, user, lambda p: p.get("custom", {}).get("plan") == "pro")
    assert profile["email"] == f"{user}@example.com" and profile["first_name"] == "Ada"
    assert profile["custom"]["first_plan"] == "free" and profile["custom"]["source"] == "page"
    assert state["deviceId"] in profile["anonymous_ids"]  # the page view before identify
    assert f"{user}-alias" in profile["anonymous_ids"]
    assert profile["rejections"] == []
    assert eventually(lambda: configs_of(query, user) or None) == {"checkout": "B"}

    (day,) = {e["timestamp"][:10] for e in events if e["name"] == TRACK_EVENT}
    assert day in (started, datetime.now(UTC).date().isoformat())
    assert todays_count(query, user, TRACK_EVENT) == 3

    # every call answered 200: the remote config script, the flags, each upload
    answered = wire.answered()
    assert {status for _, _, status in answered} == {200}, answered
    paths = {path for _, path, _ in answered}
    assert f"/posthog/array/{WRITE_KEY}/config.js" in paths
    assert "/posthog/flags/" in paths
    assert wire.foreign_urls() == [], "the page fetched from another origin"
    assert wire.page_errors == []
    assert [c for c in wire.console if c["type"] == "error"] == []


def test_posthog_js_retry_counts_once(
    running_stack: RunningStack,
    ingest: httpx.Client,
    query: httpx.Client,
    sdk_site: str,
    posthog_page: tuple[Any, PosthogWire],
) -> None:
    page, _ = posthog_page
    user = f"ph-js-retry-{uuid.uuid4().hex[:10]}"
    with forwarding_proxy(running_stack.ingest_url, "/posthog/e", fail_first=1) as proxy:
        # the page sends to the proxy; the Wire watches ingest's origin, so it is not used here
        state = open_page(page, sdk_site, proxy.url, user)
        events_when(query, user, JS_EXPECTED)
        uploads = eventually(
            lambda: (
                found
                if len(found := [e for e in proxy.log.exchanges if e.path.startswith("/posthog/e")])
                >= 2
                and found[-1].returned_status == 200
                else None
            ),
            timeout=DELIVERY_TIMEOUT_S,
        )
    assert (uploads[0].upstream_status, uploads[0].returned_status) == (200, 503)
    after_all_sent_for(ingest, query, user, [user, state["deviceId"]])
    events = [e for e in stored_events(query, user) if e["name"] != SENTINEL]
    assert Counter(e["name"] for e in events) == JS_EXPECTED
    assert_stored_once(events)
    assert todays_count(query, user, TRACK_EVENT) == 3
