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
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from posthog import Posthog

from tests.support.forwarding_proxy import forwarding_proxy
from tests.support.page_wire import Wire
from tests.support.polling import eventually
from tests.support.queries import profile_when, uid
from tests.support.query_checks import (
    DELIVERY_TIMEOUT_S,
    assert_stored_once,
    configs_of,
    events_when,
    recent_count,
    stored_after_all_sent_for,
)
from tests.support.sdk_pages import SdkPage, assert_page_quiet
from tests.support.stack import WRITE_KEY, RunningStack

pytestmark = pytest.mark.e2e

TRACK_EVENT = "Song Played"


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
    assert recent_count(query, user, TRACK_EVENT) == 3
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
    events = stored_after_all_sent_for(ingest, query, user, [user])
    assert len(events) == 3
    assert_stored_once(events)
    assert recent_count(query, user, TRACK_EVENT) == 3


# --- posthog-js in Chromium -------------------------------------------------------------------


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
        rows = []
        for request in self.posts("/posthog/e"):
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
    sdk_page: SdkPage,
) -> None:
    started = datetime.now(UTC).date().isoformat()
    user = f"ph-js-{uuid.uuid4().hex[:10]}"
    state, wire = sdk_page.open(PosthogWire, "posthog.html", running_stack.ingest_url, user)
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
    assert recent_count(query, user, TRACK_EVENT) == 3

    # every call answered 200: the remote config script, the flags, each upload
    answered = wire.answered()
    assert {status for _, _, status in answered} == {200}, answered
    paths = {path for _, path, _ in answered}
    assert f"/posthog/array/{WRITE_KEY}/config.js" in paths
    assert "/posthog/flags/" in paths
    assert_page_quiet(wire)


def test_posthog_js_retry_counts_once(
    running_stack: RunningStack,
    ingest: httpx.Client,
    query: httpx.Client,
    sdk_page: SdkPage,
) -> None:
    user = f"ph-js-retry-{uuid.uuid4().hex[:10]}"
    with forwarding_proxy(running_stack.ingest_url, "/posthog/e", fail_first=1) as proxy:
        # the page sends to the proxy (its Wire, kept in test-artifacts, watches the proxy)
        state, _ = sdk_page.open(PosthogWire, "posthog.html", proxy.url, user)
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
    events = stored_after_all_sent_for(ingest, query, user, [user, state["deviceId"]])
    assert Counter(e["name"] for e in events) == JS_EXPECTED
    assert_stored_once(events)
    assert recent_count(query, user, TRACK_EVENT) == 3
