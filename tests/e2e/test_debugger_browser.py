"""The dashboard's live debugger in Chromium while Segment's official analytics-next (unchanged,
from tests/sdk_packages) sends good events and a bad one from a page of another origin, against
the real embedded stack: both show, the refused one with its reason; filtering by event name
narrows the list (and is kept in the hash); pause stops the updates and resume brings the
missed event; a row opens to its full body, without the write key. On failure the pages are
saved as screenshots under test-artifacts/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser_pages import screenshotted_pages, sign_in
from tests.support.debugger import records_until, wait_until_live
from tests.support.page_wire import Wire
from tests.support.sdk_pages import SdkPage
from tests.support.stack import WRITE_KEY, RunningStack

pytestmark = pytest.mark.e2e

UPDATE_TIMEOUT_MS = 30_000
# analytics-next sends a name of any length; ingest refuses one over 255 characters.
TOO_LONG = "x" * 300


@pytest.fixture
def pages(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    def failed() -> bool:
        report = getattr(request.node, "report_call", None)
        return report is not None and bool(report.failed)

    with screenshotted_pages(browser, request.node.name, failed) as open_page:
        yield open_page


def rows(page: Any) -> Any:
    return page.locator("table.debugger tr.debugger-row")


def track(sdk: SdkPage, name: str, properties: dict[str, Any]) -> None:
    sdk.page.evaluate(
        "([name, properties]) => window.sdkTrack(name, properties)", [name, properties]
    )


def test_the_debugger_shows_what_an_sdk_sends_good_and_bad(
    running_stack: RunningStack, query: httpx.Client, pages: Any, sdk_page: SdkPage
) -> None:
    suffix = uuid.uuid4().hex[:8]
    user = f"debugger-sdk-{suffix}"
    good, later, bad = f"Good {suffix}", f"Later {suffix}", f"Bad {suffix} {TOO_LONG}"
    wait_until_live(query)  # the reader runs: what the SDK sends from now on is seen

    page = pages("debugger")
    sign_in(page, running_stack.query_url)
    page.get_by_role("link", name="Debugger").click()
    page.get_by_label("User").fill(user)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"#/debugger\?user={user}$"))
    expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible()

    sdk_page.open(Wire, "segment-debugger.html", running_stack.ingest_url, user)
    track(sdk_page, good, {"n": 1})
    track(sdk_page, good, {"n": 2})
    track(sdk_page, bad, {"n": 3})

    # the identify, two good tracks and the refused one, newest on top
    expect(rows(page)).to_have_count(4, timeout=UPDATE_TIMEOUT_MS)
    rejected = rows(page).filter(has_text="rejected")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("event: String should have at most 255 characters")
    expect(rejected).to_contain_text(user)
    expect(rows(page).first).to_contain_text("rejected")
    expect(rows(page).filter(has_text=good)).to_have_count(2)
    expect(rows(page).filter(has_text="identify")).to_have_count(1)

    # a row opens to its full body, as text, without the write key
    rejected.click()
    body = page.locator("tr.debugger-detail:not([hidden]) pre.json")
    expect(body).to_contain_text(f'"event": "{bad}"')
    expect(body).to_contain_text('"userId": "' + user + '"')
    shown = body.inner_text()
    assert WRITE_KEY not in shown and '"writeKey"' not in shown  # (the page's URL names it)
    rejected.click()
    expect(body).to_have_count(0)

    # the event name filter narrows the list, and is kept in the hash
    page.get_by_label("Event name").fill("good")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"#/debugger\?(?=.*\bevent=good\b)(?=.*\buser={user}\b)"))
    expect(rows(page)).to_have_count(2)
    expect(rows(page).filter(has_text=good)).to_have_count(2)
    page.get_by_label("Event name").fill("")
    page.get_by_role("button", name="Filter").click()
    expect(rows(page)).to_have_count(4)

    # paused: nothing new shows, though the server has it; resumed: it comes
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status").filter(has_text="Paused")).to_be_visible()
    after = records_until(query, 0, lambda rs: len(rs) >= 4, user=user)[-1]["seq"]
    track(sdk_page, later, {"n": 4})
    records_until(query, after, lambda rs: any(r["event"] == later for r in rs), user=user)
    page.wait_for_timeout(1500)  # longer than a poll: an update would have come by now
    expect(rows(page)).to_have_count(4)
    page.get_by_role("button", name="Resume").click()
    expect(rows(page)).to_have_count(5, timeout=UPDATE_TIMEOUT_MS)
    expect(rows(page).first).to_contain_text(later)

    assert page.errors == []
    assert sdk_page.page.evaluate("() => window.sdkTest.sent") == 4
