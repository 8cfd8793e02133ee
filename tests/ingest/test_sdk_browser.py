"""The browser SDK (ingest/sdk/profilestream.js) in a real browser: Debian's Chromium driven by
Playwright, on a page of another origin than ingest.

The unit tests play ingest with a Playwright route on a made-up origin (FAKE): it serves the
file, records every request body and answers as scripted (200, 503, 429 with Retry-After, 400,
or a cut connection). Waits and timings are measured in the page. One end-to-end test loads the
snippet of docs/sdk.md from the real ingest of the embedded stack and reads the result back
through the query API. On failure every open page is saved under test-artifacts/."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ingest.sdk import JAVASCRIPT, SDK_SOURCE, SDK_VERSION
from profilestream.embedded import free_port
from schemas.events import SegmentEvent
from tests.support.browser import ARTIFACTS
from tests.support.polling import eventually
from tests.support.queries import profile_when
from tests.support.stack import WRITE_KEY, RunningStack
from tests.support.static_site import static_site

FAKE = "http://ingest.invalid"  # never resolves: only the route answers for it
SDK_PATH = f"/sdk/profilestream-{SDK_VERSION}.js"
KEY = "browser-test-key"
TIMEOUT_MS = 15_000
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# What ingest's CORS answers let a page read (ingest/app.py); the fake answers the same.
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}
ACCEPTED = '{"success":true,"accepted":1,"rejected":[]}'
DOCS = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"

# Before any page script: timestamps of the SDK's POSTs, sendBeacon calls, unhandled rejections.
RECORDER = """
window.__sends = [];
window.__beacons = [];
window.__rejections = [];
const realFetch = window.fetch;
window.fetch = function (url, init) {
  if (String(url).endsWith("/v1/batch")) window.__sends.push(performance.now());
  return realFetch.apply(this, arguments);
};
const realBeacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = function (url, data) {
  const entry = { url: String(url), type: data && data.type, text: null };
  window.__beacons.push(entry);
  if (data instanceof Blob) data.text().then((text) => { entry.text = text; });
  return realBeacon(url, data);
};
window.addEventListener("unhandledrejection", (e) => window.__rejections.push(String(e.reason)));
"""

pytestmark = pytest.mark.browser


def sdk_tag(host: str) -> str:
    return f'<script src="{host}{SDK_PATH}"></script>'


def documented_snippet(host: str, write_key: str) -> str:
    """The two lines of docs/sdk.md, with this test's ingest, key and the current version."""
    lines = DOCS.read_text().splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("<script>window.profilestream")
    )
    stub, loader = lines[start], lines[start + 1]
    assert loader.startswith("<script async src="), "the snippet is two lines in docs/sdk.md"
    documented_version = re.search(r"profilestream-([^\"/]+)\.js", loader)
    assert documented_version is not None and documented_version[1] == SDK_VERSION
    snippet = f"{stub}\n{loader}"
    return snippet.replace("http://127.0.0.1:8000", host).replace("dev-write-key", write_key)


def html(title: str, head: str, body: str = "") -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
        f"<body>{body}</body></html>"
    )


# A page of the site: a button the page's own script counts clicks of.
COUNTER = (
    '<button id="more">more</button> <output id="count">0</output>'
    "<script>document.getElementById('more').onclick = () => {"
    " const out = document.getElementById('count'); out.value = Number(out.value) + 1; };"
    "</script>"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The customer's website, on an origin of its own."""
    root = tmp_path_factory.mktemp("sdk_site")
    (root / "app.html").write_text(html("Shop", sdk_tag(FAKE), COUNTER))
    (root / "start.html").write_text(
        html(
            "Start",
            "",
            '<a id="go" href="app.html?utm_campaign=launch&utm_source=newsletter'
            '&utm_medium=email&utm_term=shoes&utm_content=banner&other=1">go</a>',
        )
    )
    (root / "other.html").write_text(html("Other", ""))
    (root / "snippet.html").write_text(
        html("Snippet", documented_snippet(FAKE, KEY), "<script>window.__parsed = true</script>")
    )
    with static_site(root) as origin:
        yield origin


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ACCEPTED
    abort: bool = False


@dataclass
class Received:
    body: dict[str, Any]
    size: int
    content_type: str | None
    resource_type: str


class FakeIngest:
    """Ingest as a Playwright route: serves the SDK file, records each POST /v1/batch and
    answers it with the next scripted Answer (200 once the script is used up)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: list[Answer] = []
        self.hold_sdk = False
        self.held: list[Any] = []

    def handle(self, route: Any, request: Any) -> None:
        path = urlsplit(request.url).path
        if request.method == "GET" and path == SDK_PATH:
            if self.hold_sdk:
                self.held.append(route)
            else:
                self.serve_sdk(route)
        elif request.method == "POST" and path == "/v1/batch":
            data = request.post_data or ""
            self.requests.append(
                Received(
                    body=json.loads(data),
                    size=len(data.encode()),
                    content_type=request.headers.get("content-type"),
                    resource_type=request.resource_type,
                )
            )
            answer = self.answers.pop(0) if self.answers else Answer()
            if answer.abort:
                route.abort("connectionreset")
            else:
                route.fulfill(
                    status=answer.status,
                    headers={**CORS, **answer.headers},
                    content_type="application/json",
                    body=answer.body,
                )
        else:
            route.fulfill(status=404, headers=CORS, body="not found")

    @staticmethod
    def serve_sdk(route: Any) -> None:
        route.fulfill(status=200, body=SDK_SOURCE, headers={"Content-Type": JAVASCRIPT})

    def release_sdk(self) -> None:
        self.hold_sdk = False
        for route in self.held:
            self.serve_sdk(route)
        self.held = []

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for request in self.requests for event in request.body["batch"]]


@dataclass
class Tab:
    page: Any
    context: Any
    ingest: FakeIngest
    errors: list[str]
    warnings: list[str]

    def load(self, options: dict[str, Any] | None = None, host: str = FAKE) -> None:
        self.page.evaluate(
            "([key, options]) => profilestream.load(key, options)",
            [KEY, {"host": host, **(options or {})}],
        )

    def js(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.js("profilestream.stats()")
        return stats

    def flush(self) -> None:
        self.js("profilestream.flush()")

    def wait_for(self, condition: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Poll while Playwright dispatches the route (a sleep would not let it run)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            self.page.wait_for_timeout(25)
        raise AssertionError(f"condition not met within {timeout_s}s: {condition()!r}")

    def wait_for_requests(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        self.wait_for(lambda: len(self.ingest.requests) >= count, timeout_s)
        return self.ingest.requests

    def local_storage(self) -> dict[str, str]:
        stored: dict[str, str] = self.js("Object.assign({}, localStorage)")
        return stored

    def cookies(self) -> dict[str, dict[str, Any]]:
        return {cookie["name"]: cookie for cookie in self.context.cookies()}


@pytest.fixture
def open_tab(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Tab]]:
    """Opens a tab with its own fake ingest; screenshots every tab if the test fails."""
    tabs: list[Tab] = []

    def open_one(init_script: str | None = None, **context_options: Any) -> Tab:
        context = browser.new_context(**context_options)
        context.add_init_script(RECORDER)
        if init_script:
            context.add_init_script(init_script)
        fake = FakeIngest()
        context.route(f"{FAKE}/**", fake.handle)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        tab = Tab(page, context, fake, [], [])
        page.on("pageerror", lambda error: tab.errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                tab.warnings.append(message.text) if message.type == "warning" else None
            ),
        )
        tabs.append(tab)
        return tab

    yield open_one
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for n, tab in enumerate(tabs):
            tab.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{n}.png"))
    for tab in tabs:
        tab.context.close()


@pytest.fixture
def tab(open_tab: Callable[..., Tab], site: str) -> Tab:
    """A tab on the site's app page, the SDK loaded but not started (no load() yet)."""
    opened = open_tab()
    opened.page.goto(f"{site}/app.html")
    return opened


def track_names(events: list[dict[str, Any]]) -> list[str]:
    return [event.get("event") or f"${event['type']}" for event in events]


def queue_entries(tab: Tab) -> dict[str, str]:
    return {k: v for k, v in tab.local_storage().items() if k.startswith("ps_queue:")}


def stored_track_names(tab: Tab) -> list[str]:
    """The names of the track events kept in the page's stored queue."""
    return [
        event["event"]
        for stored in queue_entries(tab).values()
        for event in json.loads(stored)
        if event.get("type") == "track"
    ]


# --- batching --------------------------------------------------------------------------------


def test_events_go_in_batches_of_flush_at(tab: Tab) -> None:
    tab.load({"flushAt": 3, "flushIntervalMs": 60_000, "autoPageView": False})
    tab.js("for (let n = 0; n < 7; n++) profilestream.track(`E${n}`)")
    requests = tab.wait_for_requests(2)
    tab.page.wait_for_timeout(300)
    assert [track_names(r.body["batch"]) for r in requests] == [
        ["E0", "E1", "E2"],
        ["E3", "E4", "E5"],
    ]
    assert tab.stats()["queued"] == 1  # fewer than flushAt wait for the interval or a flush()
    tab.flush()
    assert track_names(tab.wait_for_requests(3)[2].body["batch"]) == ["E6"]
    tab.wait_for(lambda: tab.stats()["queued"] == 0)


def test_a_partial_batch_goes_after_the_flush_interval(tab: Tab) -> None:
    tab.load({"flushIntervalMs": 500, "autoPageView": False})
    queued_at = tab.js("profilestream.track('A'); profilestream.track('B'); performance.now()")
    [request] = tab.wait_for_requests(1)
    waited_ms = tab.js("window.__sends[0]") - queued_at
    assert waited_ms >= 450, waited_ms
    assert track_names(request.body["batch"]) == ["A", "B"]


def test_requests_stay_under_ingest_limits_and_an_oversize_event_is_dropped(tab: Tab) -> None:
    tab.load({"flushAt": 100, "flushIntervalMs": 60_000, "autoPageView": False})
    tab.js("profilestream.track('Huge', {blob: 'x'.repeat(40 * 1024)})")
    assert [w for w in tab.warnings if "over ingest's 32768-byte limit" in w]
    tab.js("for (let n = 0; n < 30; n++) profilestream.track(`Big${n}`, {blob: 'y'.repeat(20000)})")
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 30)
    assert len(tab.ingest.requests) >= 2
    assert all(request.size <= 500 * 1024 for request in tab.ingest.requests)
    assert track_names(tab.ingest.events) == [f"Big{n}" for n in range(30)]
    assert tab.stats()["dropped"] == 1


# --- what an event carries --------------------------------------------------------------------


def test_every_field_of_every_event_type(open_tab: Callable[..., Tab], site: str) -> None:
    tab = open_tab(locale="fr-FR", timezone_id="Europe/Paris")
    tab.page.goto(f"{site}/start.html")
    tab.page.click("#go")
    tab.page.wait_for_function("window.profilestream && profilestream.VERSION")
    before = datetime.now(UTC) - timedelta(seconds=1)
    tab.load({"flushAt": 100, "flushIntervalMs": 60_000})
    tab.js(
        """() => {
        profilestream.identify('ada', {email: 'ada@example.com'});
        profilestream.track('Song Played', {n: 1});
        profilestream.screen('Home', {tab: 2});
        profilestream.group('acme', {plan: 'pro'});
        profilestream.alias('ada-2');
        profilestream.page('Pricing', {section: 'plans'});
        }"""
    )
    tab.flush()
    [request] = tab.wait_for_requests(1)
    after = datetime.now(UTC) + timedelta(seconds=1)

    body = request.body
    assert request.content_type == "text/plain"  # a CORS simple request: no preflight
    assert set(body) == {"batch", "sentAt", "writeKey"} and body["writeKey"] == KEY
    assert before <= datetime.fromisoformat(body["sentAt"]) <= after
    events = body["batch"]
    assert [e["type"] for e in events] == [
        "page", "identify", "track", "screen", "group", "alias", "page"
    ]  # fmt: skip
    ids = [e["messageId"] for e in events]
    assert len(set(ids)) == len(ids) and all(UUID4.match(i) for i in ids)
    anonymous_id = tab.js("profilestream.user().anonymousId")
    origin = site
    url = (
        f"{origin}/app.html?utm_campaign=launch&utm_source=newsletter&utm_medium=email"
        "&utm_term=shoes&utm_content=banner&other=1"
    )
    page_fields = {
        "path": "/app.html",
        "referrer": f"{origin}/start.html",
        "search": "?" + urlsplit(url).query,
        "title": "Shop",
        "url": url,
    }
    user_agent = tab.js("navigator.userAgent")
    for event in events:
        assert UUID4.match(event["anonymousId"]) and event["anonymousId"] == anonymous_id
        timestamp = datetime.fromisoformat(event["timestamp"])
        assert before <= timestamp <= datetime.fromisoformat(body["sentAt"])
        assert event["context"] == {
            "page": page_fields,
            "userAgent": user_agent,
            "locale": "fr-FR",
            "timezone": "Europe/Paris",
            "campaign": {
                "name": "launch",
                "source": "newsletter",
                "medium": "email",
                "term": "shoes",
                "content": "banner",
            },
            "library": {"name": "profilestream.js", "version": SDK_VERSION},
        }
        # the wire contract ingest reads it with
        assert SegmentEvent.model_validate(event).missing_fields() == []

    page_view, identify, track, screen, group, alias, named_page = events
    assert "userId" not in page_view and page_view["properties"] == page_fields
    assert identify["userId"] == "ada" and identify["traits"] == {"email": "ada@example.com"}
    assert (track["userId"], track["event"], track["properties"]) == (
        "ada",
        "Song Played",
        {"n": 1},
    )
    assert (screen["name"], screen["properties"]) == ("Home", {"tab": 2})
    assert (group["groupId"], group["traits"]) == ("acme", {"plan": "pro"})
    assert (alias["userId"], alias["previousId"]) == ("ada-2", "ada")
    assert named_page["name"] == "Pricing"
    assert named_page["properties"] == page_fields | {"section": "plans"}
    assert tab.js("profilestream.VERSION") == SDK_VERSION
    assert tab.errors == []


def test_message_ids_are_uuids_without_crypto_random_uuid(
    open_tab: Callable[..., Tab], site: str
) -> None:
    # crypto.randomUUID exists only in secure contexts: a plain-http site has none.
    tab = open_tab(init_script="delete Crypto.prototype.randomUUID")
    tab.page.goto(f"{site}/app.html")
    assert tab.js("typeof crypto.randomUUID") == "undefined"
    tab.load()
    tab.js("profilestream.track('A'); profilestream.track('B')")
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 3)
    ids = [e["messageId"] for e in tab.ingest.events] + [tab.js("profilestream.user().anonymousId")]
    assert len(set(ids)) == 4 and all(UUID4.match(i) for i in ids)


# --- identity --------------------------------------------------------------------------------


def test_the_anonymous_id_survives_a_reload_until_reset(tab: Tab) -> None:
    tab.load()
    first = tab.js("profilestream.user().anonymousId")
    assert UUID4.match(first)
    cookie = tab.cookies()["ps_anonymous_id"]
    assert cookie["value"] == first and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert 364 * 86400 < cookie["expires"] - datetime.now(UTC).timestamp() <= 365 * 86400
    assert tab.local_storage()["ps_anonymous_id"] == first
    tab.flush()  # sent now: a beacon from an unloading page would not reach the route
    tab.wait_for(lambda: len(tab.ingest.events) == 1)

    tab.page.reload()
    tab.load()
    assert tab.js("profilestream.user().anonymousId") == first
    tab.js("profilestream.track('After reload')")
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 3)
    assert {e["anonymousId"] for e in tab.ingest.events} == {first}

    tab.js("profilestream.identify('ada', {plan: 'pro'}); profilestream.reset()")
    second = tab.js("profilestream.user()")
    assert second["anonymousId"] != first and UUID4.match(second["anonymousId"])
    assert second["userId"] is None and second["traits"] == {}
    assert tab.cookies()["ps_anonymous_id"]["value"] == second["anonymousId"]
    stored = tab.local_storage()
    assert stored["ps_anonymous_id"] == second["anonymousId"]
    assert "ps_user_id" not in stored and "ps_user_traits" not in stored
    tab.js("profilestream.track('After reset')")
    tab.flush()
    last = tab.wait_for(lambda: [e for e in tab.ingest.events if e.get("event") == "After reset"])
    assert last[0]["anonymousId"] == second["anonymousId"] and "userId" not in last[0]


def test_identify_then_track_carries_the_user_id_and_merged_traits(tab: Tab) -> None:
    tab.load({"autoPageView": False})
    tab.js(
        """() => {
        profilestream.identify('ada', {email: 'ada@example.com', plan: 'free'});
        profilestream.track('Clicked');
        profilestream.identify({plan: 'pro'});
        }"""
    )
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 3)
    first, clicked, again = tab.ingest.events
    assert (first["userId"], clicked["userId"], again["userId"]) == ("ada", "ada", "ada")
    assert again["traits"] == {"email": "ada@example.com", "plan": "pro"}

    tab.page.reload()  # the user id and traits are remembered
    tab.load({"autoPageView": False})
    tab.js("profilestream.track('Came back')")
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 4)
    assert tab.ingest.events[3]["userId"] == "ada"
    assert tab.js("profilestream.user().traits") == {"email": "ada@example.com", "plan": "pro"}

    tab.js("profilestream.identify('bob', {team: 'b'})")  # another user: not ada's traits
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 5)
    assert tab.ingest.events[4]["traits"] == {"team": "b"}


@pytest.mark.parametrize("persistence", ["localStorage", "memory"])
def test_persistence_without_cookie(tab: Tab, persistence: str) -> None:
    tab.load({"persistence": persistence})
    tab.js("profilestream.identify('ada', {email: 'ada@example.com'})")
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 2)
    assert tab.cookies() == {}
    stored = tab.local_storage()
    if persistence == "memory":
        assert stored == {}
    else:
        assert stored["ps_anonymous_id"] == tab.js("profilestream.user().anonymousId")
        assert stored["ps_user_id"] == "ada"


def test_cookie_options(tab: Tab) -> None:
    tab.load({"cookie": {"name": "shop_aid", "maxAgeDays": 30, "sameSite": "Strict"}})
    cookie = tab.cookies()["shop_aid"]
    assert cookie["value"] == tab.js("profilestream.user().anonymousId")
    assert cookie["sameSite"] == "Strict"
    assert 29 * 86400 < cookie["expires"] - datetime.now(UTC).timestamp() <= 30 * 86400
    assert "ps_anonymous_id" not in tab.cookies()


# --- delivery ----------------------------------------------------------------------------------


def test_a_503_is_retried_with_the_same_message_ids(tab: Tab) -> None:
    tab.ingest.answers = [Answer(503, body='{"success":false}')]
    tab.load({"retryBaseMs": 100, "autoPageView": False})
    tab.js("profilestream.track('A'); profilestream.track('B')")
    tab.flush()
    first, second = tab.wait_for_requests(2)
    assert [e["messageId"] for e in second.body["batch"]] == [
        e["messageId"] for e in first.body["batch"]
    ]
    assert second.body["sentAt"] >= first.body["sentAt"]  # stamped per attempt
    tab.wait_for(lambda: tab.stats()["delivered"] == 2)
    assert tab.stats()["retries"] == 1
    tab.wait_for(lambda: queue_entries(tab) == {})


def test_a_network_error_is_retried(tab: Tab) -> None:
    tab.ingest.answers = [Answer(abort=True)]
    tab.load({"retryBaseMs": 100, "autoPageView": False})
    tab.js("profilestream.track('A')")
    tab.flush()
    first, second = tab.wait_for_requests(2)
    assert first.body["batch"] == second.body["batch"]
    tab.wait_for(lambda: tab.stats()["delivered"] == 1)
    assert tab.errors == []


def test_429_waits_for_retry_after(tab: Tab) -> None:
    tab.ingest.answers = [Answer(429, {"Retry-After": "2"}, '{"success":false}')]
    # the backoff alone would retry after 25 to 75 ms
    tab.load({"retryBaseMs": 50, "autoPageView": False})
    tab.js("profilestream.track('A')")
    tab.flush()
    first, second = tab.wait_for_requests(2)
    assert first.body["batch"] == second.body["batch"]
    gap_ms = tab.js("window.__sends[1] - window.__sends[0]")
    assert gap_ms >= 1500, gap_ms


def test_a_400_is_dropped_not_retried(tab: Tab) -> None:
    reason = "no valid event in the request"
    tab.ingest.answers = [Answer(400, body=f'{{"success":false,"message":"{reason}"}}')]
    tab.load({"retryBaseMs": 50, "autoPageView": False})
    tab.js("profilestream.track('A')")
    tab.flush()
    tab.wait_for(lambda: tab.stats()["dropped"] == 1)
    tab.page.wait_for_timeout(1000)
    assert len(tab.ingest.requests) == 1
    assert [w for w in tab.warnings if "answered 400" in w and reason in w]
    assert tab.stats()["queued"] == 0
    tab.wait_for(lambda: queue_entries(tab) == {})


def test_retries_stop_after_max_retries(tab: Tab) -> None:
    tab.ingest.answers = [Answer(500)] * 10
    tab.load({"retryBaseMs": 20, "maxRetries": 2, "autoPageView": False})
    tab.js("profilestream.track('A')")
    tab.flush()
    tab.wait_for(lambda: tab.stats()["dropped"] == 1)
    tab.page.wait_for_timeout(300)
    assert len(tab.ingest.requests) == 3  # the first attempt and two retries
    assert [w for w in tab.warnings if "after 2 retries" in w]


def test_a_reload_does_not_lose_queued_events(tab: Tab) -> None:
    tab.ingest.answers = [Answer(503)]
    # a retry far away: only the next page load can send the events
    tab.load({"retryBaseMs": 600_000, "autoPageView": False})
    tab.js("profilestream.track('A'); profilestream.track('B')")
    tab.flush()
    [failed] = tab.wait_for_requests(1)
    tab.wait_for(lambda: len(queue_entries(tab)) == 1)
    tab.page.reload()
    tab.load({"autoPageView": False})
    tab.flush()
    retried = tab.wait_for_requests(2)[1]
    assert [e["messageId"] for e in retried.body["batch"]] == [
        e["messageId"] for e in failed.body["batch"]
    ]
    tab.wait_for(lambda: queue_entries(tab) == {})


def test_the_stored_queue_is_bounded(tab: Tab) -> None:
    tab.ingest.answers = [Answer(503)]
    tab.load({"retryBaseMs": 600_000, "autoPageView": False})
    tab.js("profilestream.track('First')")
    tab.flush()
    tab.wait_for_requests(1)  # ingest is down: everything from now on waits in the queue
    tab.js("for (let n = 0; n < 1005; n++) profilestream.track(`E${n}`)")
    tab.page.wait_for_timeout(100)
    [stored] = queue_entries(tab).values()
    assert track_names(json.loads(stored)) == [f"E{n}" for n in range(5, 1005)]  # oldest out
    assert [w for w in tab.warnings if "queue full" in w]
    assert tab.stats()["dropped"] == 6


# --- leaving the page --------------------------------------------------------------------------


def hide(tab: Tab) -> None:
    # Headless Chromium never hides a tab: the page is told it is hidden, as a switch of tab does.
    tab.js(
        """() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )


def test_hiding_the_page_sends_the_queue_at_once_and_acknowledged(tab: Tab) -> None:
    tab.load({"flushIntervalMs": 60_000})
    tab.js("profilestream.track('A'); profilestream.track('B')")
    assert tab.ingest.requests == []
    hide(tab)
    [request] = tab.wait_for_requests(1)
    assert request.resource_type == "fetch"  # acknowledged, so a failure is retried
    assert track_names(request.body["batch"]) == ["$page", "A", "B"]
    assert tab.js("window.__beacons") == []
    tab.wait_for(lambda: queue_entries(tab) == {})
    assert tab.stats()["delivered"] == 3


def test_hiding_the_page_while_ingest_fails_loses_nothing(tab: Tab) -> None:
    tab.ingest.answers = [Answer(503, body='{"success":false}')]
    tab.load({"flushIntervalMs": 60_000, "retryBaseMs": 60_000})
    tab.js("profilestream.track('A')")
    hide(tab)
    tab.wait_for_requests(1)
    tab.wait_for(lambda: tab.stats()["retries"] == 1)
    assert stored_track_names(tab) == ["A"]  # kept for the retry (and for the next page)
    assert tab.stats()["delivered"] == 0 and tab.stats()["dropped"] == 0


def test_a_refused_beacon_neither_hangs_the_page_nor_loses_events(tab: Tab) -> None:
    tab.load({"flushIntervalMs": 60_000})
    tab.js(
        """() => {
        navigator.sendBeacon = () => false;  // what some blockers do
        window.fetch = () => { throw new TypeError('blocked'); };
        profilestream.track('A');
        setTimeout(() => window.dispatchEvent(new Event('pagehide')), 0);
        }"""
    )
    # Bounded: a page stuck in a loop fails this within 5 s instead of hanging the test.
    tab.page.wait_for_function(
        "() => new Promise((resolve) => setTimeout(() => resolve(true), 50))", timeout=5000
    )
    assert stored_track_names(tab) == ["A"]
    assert tab.errors == []


class RecordingServer:
    """A real HTTP server for what Playwright cannot route: beacons of a page being unloaded."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # the base's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_leaving_the_page_beacons_the_queue_and_keeps_it_stored(tab: Tab, site: str) -> None:
    server = RecordingServer()
    try:
        tab.load({"host": server.url, "flushIntervalMs": 60_000})
        tab.js("profilestream.track('Leaving')")
        tab.page.goto(f"{site}/other.html")  # pagehide on the app page
        eventually(lambda: server.bodies, timeout=10)
        assert track_names(server.bodies[0]["batch"]) == ["$page", "Leaving"]
        # A beacon's answer is never seen: the events stay stored for the next page, which
        # sends them again (ingest keeps one copy, by messageId).
        assert stored_track_names(tab) == ["Leaving"]
    finally:
        server.close()


# --- single-page apps --------------------------------------------------------------------------


@pytest.mark.parametrize("opted_in", [False, True])
def test_route_changes_are_page_views_only_when_opted_in(tab: Tab, opted_in: bool) -> None:
    tab.load({"trackSpaRoutes": opted_in, "flushIntervalMs": 60_000})
    tab.js(
        """async () => {
        // popstate comes after history.back() returns; the SDK looks at the URL after that
        const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
        history.pushState({}, '', '/checkout?step=1');
        await settle();
        history.replaceState({saved: true}, '');  // same URL: not a page view
        await settle();
        history.pushState({}, '', '/checkout?step=1#summary');  // hash only: not one either
        await settle();
        history.back();
        await settle();
        history.back();
        await settle();
        }"""
    )
    tab.page.wait_for_timeout(200)
    tab.flush()
    tab.wait_for_requests(1)
    paths = [(e["properties"]["path"], e["properties"]["search"]) for e in tab.ingest.events]
    expected = [("/app.html", "")]
    if opted_in:
        expected += [("/checkout", "?step=1"), ("/app.html", "")]
    assert paths == expected
    assert tab.errors == []


# --- the page comes first ----------------------------------------------------------------------


def test_an_unreachable_ingest_never_breaks_the_page(tab: Tab) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    tab.load({"host": closed, "retryBaseMs": 50, "maxRetries": 3})
    tab.js(
        """() => {
        const circular = {}; circular.self = circular;
        profilestream.identify('ada', circular);
        profilestream.track();
        profilestream.track('Huge', {blob: 'x'.repeat(40000)});
        profilestream.group();
        profilestream.alias();
        profilestream.page(null, null, {timestamp: 'not a date'});
        for (let n = 0; n < 50; n++) profilestream.track('Clicked', {n});
        }"""
    )
    for _ in range(3):
        tab.page.click("#more")
    assert tab.page.inner_text("#count") == "3"
    # the oversize one, then the page view and the 50 clicks, given up on after 3 retries each
    tab.wait_for(lambda: tab.stats()["dropped"] == 52)
    stats = tab.stats()
    assert stats["retries"] >= 3 and stats["lastStatus"] == 0 and stats["delivered"] == 0
    assert tab.errors == [] and tab.js("window.__rejections") == []
    assert tab.warnings  # each mistake said so, none threw


def test_without_local_storage_events_still_go(open_tab: Callable[..., Tab], site: str) -> None:
    # Storage disabled by the user, or a sandboxed frame: localStorage throws on access.
    tab = open_tab(
        init_script="Object.defineProperty(window, 'localStorage', "
        "{get() { throw new DOMException('denied', 'SecurityError'); }})"
    )
    tab.page.goto(f"{site}/app.html")
    tab.load()
    tab.js("profilestream.track('A')")
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 2)
    anonymous_id = tab.js("profilestream.user().anonymousId")
    assert tab.cookies()["ps_anonymous_id"]["value"] == anonymous_id
    assert tab.errors == []


def test_the_snippet_does_not_wait_for_the_file_and_keeps_early_calls(
    open_tab: Callable[..., Tab], site: str
) -> None:
    tab = open_tab()
    tab.ingest.hold_sdk = True  # the file is slow to come
    tab.page.goto(f"{site}/snippet.html", wait_until="domcontentloaded")
    assert tab.js("window.__parsed") is True  # the page was parsed without the file
    tab.js("profilestream.identify('ada'); profilestream.track('Early', {n: 1})")
    tab.wait_for(lambda: tab.ingest.held)
    assert tab.js("profilestream.VERSION") is None
    tab.ingest.release_sdk()
    tab.page.wait_for_function("window.profilestream.VERSION")
    tab.flush()
    tab.wait_for(lambda: len(tab.ingest.events) == 3)
    assert track_names(tab.ingest.events) == ["$page", "$identify", "Early"]
    assert tab.ingest.requests[0].body["writeKey"] == KEY
    assert tab.ingest.events[2]["userId"] == "ada"
    assert tab.errors == []


# --- end to end ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_site_on_another_origin_reaches_the_profile_sequence_and_daily_counts(
    running_stack: RunningStack,
    query: httpx.Client,
    open_tab: Callable[..., Tab],
    tmp_path: Path,
) -> None:
    user = f"sdk-{uuid.uuid4().hex[:10]}"
    (tmp_path / "shop.html").write_text(
        html("Shop", documented_snippet(running_stack.ingest_url, WRITE_KEY))
    )
    tab = open_tab()
    # Each POST's answer as the network saw it, and each request that failed in the page
    # (a response CORS does not let the page read fails there).
    answers: list[str] = []
    tab.page.on(
        "response",
        lambda response: (
            answers.append(str(response.status)) if response.url.endswith("/v1/batch") else None
        ),
    )
    tab.page.on(
        "requestfailed",
        lambda request: (
            answers.append(f"failed: {request.failure}")
            if request.url.endswith("/v1/batch")
            else None
        ),
    )
    with static_site(tmp_path) as origin:
        tab.page.goto(f"{origin}/shop.html")
        tab.page.wait_for_function("window.profilestream && window.profilestream.VERSION")
        assert tab.page.evaluate("profilestream.VERSION") == SDK_VERSION
        tab.js(
            """async (user) => {
            profilestream.identify(user, {email: `${user}@example.com`, first_name: 'Ada'});
            for (let n = 0; n < 3; n++) profilestream.track('Song Played', {n});
            await profilestream.flush();
            }""",
            user,
        )
        tab.wait_for(lambda: tab.stats()["delivered"] == 5 or tab.stats()["retries"], 20)
        stats = tab.stats()
    # Every request answered 200 and readable by the page: no retry, so no duplicate sent.
    assert (stats["delivered"], stats["retries"], stats["dropped"]) == (5, 0, 0), (stats, answers)
    assert stats["lastStatus"] == 200 and answers and set(answers) == {"200"}, answers
    assert tab.errors == []

    profile = profile_when(query, user, lambda p: p["event_count"] == 5)
    assert profile["email"] == f"{user}@example.com" and profile["first_name"] == "Ada"
    assert profile["event_totals"] == {"$page": 1, "$identify": 1, "Song Played": 3}
    assert len(profile["anonymous_ids"]) == 1

    events = query.get(f"/v1/users/{user}/events").json()["events"]
    # identify and the tracks were called in one go and may share a millisecond (then the
    # messageIds order them); the page view was sent on load, before.
    assert Counter(e["name"] for e in events) == {"Song Played": 3, "$identify": 1, "$page": 1}
    assert events[-1]["name"] == "$page"
    tracked = [e["properties"]["n"] for e in events if e["name"] == "Song Played"]
    assert sorted(tracked) == [0, 1, 2]
    assert len({e["messageId"] for e in events}) == 5

    today = datetime.now(UTC).date().isoformat()
    daily = query.get(
        f"/v1/users/{user}/events/daily", params={"event": "Song Played", "days": 7}
    ).json()
    assert daily[-1] == {"date": today, "count": 3}
    assert all(row["count"] == 0 for row in daily[:-1])
    everyone = query.get("/v1/events/daily", params={"event": "Song Played", "days": 1}).json()
    assert everyone[0]["date"] == today and everyone[0]["count"] >= 3
