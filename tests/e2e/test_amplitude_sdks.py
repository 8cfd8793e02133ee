"""Amplitude's official SDKs, unchanged but for their server URL, against the real embedded
stack: amplitude-analytics (PyPI) to /amplitude/2/httpapi and /amplitude/batch, and
@amplitude/analytics-browser (npm, its own browser build) in Chromium on a page of another
origin. Each checks that the SDK was answered 200 for every event, then through the query API
the profile (every user-property operation applied, in event-time order), the sequence, the
daily counts and the configs served; and that an SDK's retry of a batch ingest had already
taken (a proxy answers 503 after forwarding it) is stored once.

What the page sent and what ingest answered is written to test-artifacts/sdk-wire-<test>.json
and printed (`pytest -s` shows it)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from amplitude import Amplitude, BaseEvent, Config, EventOptions, Identify, Revenue

from tests.support.forwarding_proxy import forwarding_proxy
from tests.support.page_wire import Wire, json_or_text
from tests.support.polling import eventually
from tests.support.queries import profile_when, uid
from tests.support.query_checks import (
    assert_stored_once,
    configs_of,
    daily_counts,
    events_counting,
)
from tests.support.sdk_pages import PAGE_TIMEOUT_MS, SdkPage, assert_page_quiet
from tests.support.stack import WRITE_KEY, RunningStack

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT_S = 45.0
SONG = "Song Played"


# --- shared -------------------------------------------------------------------------------------


def operations_applied(profile: dict[str, Any]) -> bool:
    """Every operation of the two identifies (and their order) shows in `custom`."""
    custom = profile.get("custom", {})
    return custom.get("logins") == 3 and custom.get("visits") == ["landing", "home", "pricing"]


def assert_operations(custom: dict[str, Any]) -> None:
    assert custom["name"] == "Max"  # $set
    assert custom["first_plan"] == "free"  # $setOnce, then a second $setOnce ignored
    assert custom["logins"] == 3  # $add 2, then $add 1
    assert custom["visits"] == ["landing", "home", "pricing"]  # $append, then $prepend
    assert custom["devices"] == ["ios", "web"]  # $postInsert, then $preInsert
    assert custom["doomed"] == ["b"]  # $set a list, then $remove
    assert "old" not in custom  # $set, then $unset


# --- amplitude-analytics (PyPI) -----------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    event_type: str
    insert_id: str
    user_id: str | None
    code: int
    message: str | None


class Recorded:
    """The SDK's callback: one Result per event, from the SDK's threads."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        self.lock = threading.Lock()

    def __call__(self, event: BaseEvent, code: int, message: str | None = None) -> None:
        result = Result(event.event_type, str(event.insert_id), event.user_id, code, message)
        with self.lock:
            self.results.append(result)

    def when(self, count: int) -> list[Result]:
        def probe() -> list[Result] | None:
            with self.lock:
                return list(self.results) if len(self.results) >= count else None

        return eventually(probe, timeout=DELIVERY_TIMEOUT_S)


def python_client(server_url: str, recorded: Recorded) -> Amplitude:
    config = Config(
        server_url=server_url, callback=recorded, flush_interval_millis=200, flush_max_retries=5
    )
    return Amplitude(WRITE_KEY, config)


def at(start: int, offset: int, user: str, device: str | None = None) -> EventOptions:
    return EventOptions(user_id=user, device_id=device, time=start + offset)


@pytest.mark.parametrize("path", ["/amplitude/2/httpapi", "/amplitude/batch"])
def test_python_sdk_builds_the_profile_with_every_operation(
    path: str, running_stack: RunningStack, query: httpx.Client
) -> None:
    user, device, cleared = uid("amp-py"), uid("amp-py-device"), uid("amp-py-cleared")
    recorded = Recorded()
    client = python_client(running_stack.ingest_url + path, recorded)
    start = int(time.time() * 1000) - 60_000
    client.track(
        BaseEvent(
            "Signed Up",
            user_id=user,
            device_id=device,
            time=start,
            event_properties={"plan": "pro"},
            user_properties={"$set": {"tier": "gold"}},
        )
    )
    first = (
        Identify()
        .set("name", "Max")
        .set_once("first_plan", "free")
        .add("logins", 2)
        .append("visits", ["home", "pricing"])
        .post_insert("devices", "web")
        .set("old", "x")
        .set("doomed", ["a", "b"])
    )
    client.identify(first, at(start, 10, user, device))
    second = (
        Identify()
        .prepend("visits", "landing")
        .pre_insert("devices", "ios")
        .add("logins", 1)
        .set_once("first_plan", "pro")
        .unset("old")
        .remove("doomed", "a")
    )
    client.identify(second, at(start, 20, user))
    client.set_group("company", "acme", at(start, 30, user))
    client.group_identify("company", "acme", Identify().set("employees", 11), at(start, 40, user))
    client.revenue(Revenue(price=9.99, quantity=2, product_id="sku-1"), at(start, 50, user))
    client.track(
        BaseEvent(
            "[Experiment] Exposure",
            user_id=user,
            time=start + 60,
            event_properties={"[Experiment] Flag Key": "checkout", "[Experiment] Variant": "B"},
            user_properties={"$set": {"[Experiment] checkout": "B"}},
        )
    )
    for n in (1, 2, 3):
        client.track(BaseEvent(SONG, user_id=user, time=start + 70 + n, event_properties={"n": n}))
    # $clearAll on another user: only what is set after it stays
    client.identify(Identify().set("a", 1).set("b", 2), at(start, 0, cleared))
    client.identify(Identify().clear_all(), at(start, 10, cleared))
    client.identify(Identify().set("c", 3), at(start, 20, cleared))
    client.flush()

    results = recorded.when(13)
    client.shutdown()
    assert {r.code for r in results} == {200}, results
    assert len({r.insert_id for r in results}) == 13

    profile = profile_when(query, user, operations_applied, timeout=DELIVERY_TIMEOUT_S)
    custom = profile["custom"]
    assert_operations(custom)
    assert custom["tier"] == "gold"  # user_properties on a track event
    assert custom["company"] == "acme"  # set_group
    assert "[Experiment] checkout" not in custom  # a served variant is a config
    assert device in profile["anonymous_ids"]  # user_id + device_id on one event: merged
    # the exposure may come in a request applied after the operations
    assert eventually(lambda: configs_of(query, user) or None) == {"checkout": "B"}

    events = events_counting(query, user, 10, timeout=DELIVERY_TIMEOUT_S)
    assert_stored_once(events, exactly={r.insert_id for r in results if r.user_id == user})
    assert Counter(e["name"] for e in events) == Counter(
        {
            "Signed Up": 1,
            "$identify": 3,
            "$group": 1,
            "revenue_amount": 1,
            "[Experiment] Exposure": 1,
            SONG: 3,
        }
    )
    assert {e.get("protocol") for e in events} == {"amplitude"}
    group = next(e for e in events if e["name"] == "$group")
    assert group["properties"]["group_type"] == "company"
    revenue = next(e for e in events if e["name"] == "revenue_amount")
    assert revenue["properties"]["$price"] == 9.99 and revenue["properties"]["$quantity"] == 2
    songs = daily_counts(query, user, SONG)
    assert sum(songs.values()) == 3, songs

    cleared_profile = profile_when(
        query, cleared, lambda p: p.get("custom", {}).get("c") == 3, timeout=DELIVERY_TIMEOUT_S
    )
    assert cleared_profile["custom"] == {"c": 3}


def test_python_sdk_retry_after_a_lost_answer_is_stored_once(
    running_stack: RunningStack, query: httpx.Client
) -> None:
    user = uid("amp-py-retry")
    recorded = Recorded()
    with forwarding_proxy(running_stack.ingest_url, "/amplitude/", fail_first=1) as proxy:
        client = python_client(proxy.url + "/amplitude/2/httpapi", recorded)
        for n in (1, 2):
            client.track(BaseEvent(SONG, user_id=user, event_properties={"n": n}))
        client.flush()
        results = recorded.when(2)
        client.shutdown()
        exchanges = list(proxy.log.exchanges)
    assert {r.code for r in results} == {200}, results
    # the first request reached ingest and was answered 503 by the proxy; the SDK resent it
    posts = [e for e in exchanges if e.method == "POST"]
    assert [(e.upstream_status, e.returned_status) for e in posts[:2]] == [(200, 503), (200, 200)]
    events = events_counting(query, user, 2, timeout=DELIVERY_TIMEOUT_S)
    assert_stored_once(events, exactly={r.insert_id for r in results})
    profile = profile_when(query, user, lambda p: p.get("event_count") == 2)
    assert profile["event_totals"] == {SONG: 2}


# --- @amplitude/analytics-browser in Chromium -------------------------------------------------


class AmplitudeWire(Wire):
    """The Wire, reading Amplitude bodies: which event went in which request, and the answer."""

    def deliveries(self) -> list[dict[str, Any]]:
        rows = []
        for request, body in self.json_posts():
            if not isinstance(body, dict) or not isinstance(body.get("events"), list):
                continue
            response = self.response_of(request)
            answer = json_or_text(response.text()) if response is not None else None
            for event in body["events"]:
                rows.append(
                    {
                        "insert_id": event.get("insert_id"),
                        "event_type": event.get("event_type"),
                        "status": response.status if response is not None else None,
                        "code": answer.get("code") if isinstance(answer, dict) else None,
                    }
                )
        return rows

    def answered_deliveries(self) -> list[dict[str, Any]] | None:
        """The deliveries once every request has its answer; None before."""
        rows = self.deliveries()
        return rows if rows and all(r["status"] is not None for r in rows) else None


def open_page(sdk_page: SdkPage, sends_to: str, user: str) -> tuple[dict[str, Any], AmplitudeWire]:
    """amplitude.html, opened from a campaign (utm_source=news), the SDK sending to `sends_to`."""
    return sdk_page.open(
        AmplitudeWire,
        "amplitude.html",
        sends_to,
        user,
        extra={"utm_source": "news"},
        timeout_ms=PAGE_TIMEOUT_MS * 4,
    )


def test_browser_sdk_builds_the_profile_on_a_page_of_another_origin(
    running_stack: RunningStack, query: httpx.Client, sdk_page: SdkPage
) -> None:
    user = uid("amp-js")
    state, wire = open_page(sdk_page, running_stack.ingest_url, user)
    assert {r["code"] for r in state["results"]} == {200}, state["results"]
    rows = eventually(wire.answered_deliveries, timeout=DELIVERY_TIMEOUT_S)
    # every request was answered 200, with a JSON body whose code is 200
    assert {(r["status"], r["code"]) for r in rows} == {(200, 200)}, rows
    sent = {r["insert_id"] for r in rows}
    device = page_device_id(rows, wire)

    profile = profile_when(query, user, operations_applied, timeout=DELIVERY_TIMEOUT_S)
    custom = profile["custom"]
    assert_operations(custom)
    assert custom["last_song"] == 3  # user_properties on track events
    # the campaign identify was sent under the device id alone, before setUserId: merged
    assert custom["initial_utm_source"] == "news"
    assert device in profile["anonymous_ids"]
    # the exposure may come in a request applied after the operations
    assert eventually(lambda: configs_of(query, user) or None) == {"checkout": "B"}

    events = events_counting(query, user, len(sent), timeout=DELIVERY_TIMEOUT_S)
    assert_stored_once(events, exactly=sent)
    names = Counter(e["name"] for e in events)
    assert names[SONG] == 3 and names["$exposure"] == 1
    assert names["$page"] >= 1 and names["$identify"] >= 3
    page_view = next(e for e in events if e["name"] == "$page")
    assert page_view["pageName"] == "Amplitude analytics-browser against Profilestream ingest"
    assert page_view["properties"]["path"] == "/pages/amplitude.html"
    songs = daily_counts(query, user, SONG)
    assert sum(songs.values()) == 3, songs

    assert_page_quiet(wire)


def page_device_id(rows: list[dict[str, Any]], wire: AmplitudeWire) -> str:
    """The device id the page's SDK sent (the same on every event)."""
    devices = set()
    for _, body in wire.json_posts():
        if isinstance(body, dict):
            devices |= {e.get("device_id") for e in body.get("events", [])}
    assert len(devices) == 1, devices
    (device,) = devices
    assert isinstance(device, str)
    return device


def test_browser_sdk_retry_after_a_lost_answer_is_stored_once(
    running_stack: RunningStack, query: httpx.Client, sdk_page: SdkPage
) -> None:
    user = uid("amp-js-retry")
    with forwarding_proxy(running_stack.ingest_url, "/amplitude/", fail_first=1) as proxy:
        state, wire = open_page(sdk_page, proxy.url, user)
        assert {r["code"] for r in state["results"]} == {200}, state["results"]
        rows = wire.deliveries()
        # the first batch was answered 503 after ingest took it, and sent again
        first_try = [r for r in rows if r["status"] == 503]
        assert first_try, rows
        resent = {r["insert_id"] for r in first_try}
        again = [r for r in rows if r["insert_id"] in resent and r["status"] == 200]
        assert {r["insert_id"] for r in again} == resent
        sent = {r["insert_id"] for r in rows}
        events = events_counting(query, user, len(sent), timeout=DELIVERY_TIMEOUT_S)
        assert_stored_once(events, exactly=sent)
        assert sum(daily_counts(query, user, SONG).values()) == 3
