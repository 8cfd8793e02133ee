"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against the real
embedded stack: sign in, properties, create with a constraint error, events and the chart,
status and tags, configs, delete with confirmation. On failure every open page is saved as a
screenshot under test-artifacts/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser_pages import screenshotted_pages, sign_in
from tests.support.polling import eventually
from tests.support.stack import RunningStack, restart_broker_and_services, start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def pages(browser: Any, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Browser pages by name (`pages["open"](name)`); all of them are screenshotted if the test
    fails."""

    def failed() -> bool:
        report = getattr(request.node, "report_call", None)
        return report is not None and bool(report.failed)

    with screenshotted_pages(browser, request.node.name, failed) as open_page:
        yield {"open": open_page}


def test_sign_in_refuses_a_wrong_token(running_stack: RunningStack, pages: dict[str, Any]) -> None:
    page = pages["open"]("signin")
    page.goto(f"{running_stack.query_url}/dashboard/")
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="not valid").wait_for()
    sign_in(page, running_stack.query_url)
    assert page.get_by_role("button", name="Create user").is_visible()


def test_an_operator_manages_a_user_end_to_end(
    running_stack: RunningStack,
    ingest: httpx.Client,
    query: httpx.Client,
    pages: dict[str, Any],
) -> None:
    base = running_stack.query_url
    suffix = uuid.uuid4().hex[:6]
    plan = f"plan_{suffix}"
    page = pages["open"]("desktop")
    sign_in(page, base)

    # a custom property, defined in the properties page
    page.get_by_role("link", name="Properties").click()
    page.get_by_role("button", name="Add property").click()
    page.get_by_label("Name").fill(plan)
    page.get_by_label("Type").select_option("enum")
    page.get_by_label("Allowed values").fill("free, pro")
    page.get_by_role("button", name="Add property").click()
    page.get_by_role("table", name="Custom properties").get_by_text(plan).wait_for()

    # create: the server's field errors appear next to the fields
    page.get_by_role("link", name="Users").click()
    page.get_by_role("button", name="Create user").click()
    page.get_by_label("Email *").fill("not-an-email")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label(plan).select_option("pro")
    page.get_by_role("button", name="Create user").last.click()
    email_field = page.locator('.field[data-field="email"]')
    email_field.locator(".error").filter(has_text="is not an email address").wait_for()
    customer = f"C-{suffix}"
    page.get_by_label("Email *").fill(f"ada-{suffix}@example.com")
    page.get_by_label("Customer ID *").fill(customer)
    page.get_by_label("User ID").fill(f"ada-{suffix}")
    page.get_by_label("Tags").fill("vip")
    page.get_by_role("button", name="Create user").last.click()
    page.get_by_role("heading", name=re.compile("^Ada")).wait_for()
    user = f"ada-{suffix}"
    assert page.url.endswith(f"#/users/{user}")
    overview = page.locator("main")
    overview.get_by_text(customer).wait_for()  # the profile is read after the create answers

    # events sent through ingest show in the Events tab and in the chart
    for n in range(3):
        ingest.post(
            "/v1/track", json={"userId": user, "event": "Song Played", "properties": {"n": n}}
        ).raise_for_status()
    ingest.post(
        "/v1/track",
        json={
            "userId": user,
            "event": "$config_served",
            "properties": {"config": "checkout", "variation": "B"},
        },
    ).raise_for_status()
    eventually(
        lambda: query.get(f"/v1/users/{user}").json()["event_count"] == 4 or None, timeout=20
    )
    page.get_by_role("link", name="Events").click()
    events = page.get_by_role("table", name="Events")
    expect(events.locator("tbody tr")).to_have_count(4)
    page.get_by_label("Event", exact=True).select_option("Song Played")
    page.get_by_text("3 events (Song Played) in the last 30 days").wait_for()
    bars = page.locator("svg.chart rect.bar")
    assert bars.count() == 30
    assert bars.last.get_attribute("data-count") == "3"
    page.get_by_label("Period").select_option("7")
    page.get_by_text("3 events (Song Played) in the last 7 days").wait_for()
    page.get_by_label("Filter by event name").fill("$config_served")
    page.get_by_role("button", name="Filter").click()
    expect(events.locator("tbody tr")).to_have_count(1)
    assert events.locator("tbody tr td").nth(1).inner_text() == "$config_served"

    # configs tab
    page.get_by_role("link", name="Configs").click()
    configs = page.get_by_role("table", name="Configs")
    configs.wait_for()
    assert (
        configs.get_by_text("checkout").is_visible() and configs.get_by_text("B").first.is_visible()
    )

    # status and tags
    page.get_by_role("button", name="Disable").click()
    page.get_by_role("button", name="Activate").wait_for()
    assert page.locator("h1 .badge").inner_text() == "disabled"
    page.get_by_role("link", name="Edit").click()
    page.get_by_role("button", name="Remove tag vip").click()
    page.get_by_label("Add a tag").fill("beta")
    page.get_by_role("button", name="Add tag").click()
    page.get_by_label("Last name").fill("Lovelace")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Changes saved.").wait_for()
    profile = query.get(f"/v1/users/{user}").json()
    assert profile["tags"] == ["beta"] and profile["last_name"] == "Lovelace"
    assert profile["status"] == "disabled" and profile["custom"] == {plan: "pro"}

    # the users list finds it by status and tag
    page.goto(f"{base}/dashboard/#/users?status=disabled&tag=beta")
    page.get_by_role("table", name="Users").get_by_role("link", name=user).wait_for()

    # delete, with a confirmation whose "Yes" deletes
    page.get_by_role("link", name=user).click()
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Cancel").click()
    assert query.get(f"/v1/users/{user}").status_code == 200
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Yes, delete").click()
    page.get_by_text("Deleted Ada Lovelace.").wait_for()
    assert query.get(f"/v1/users/{user}").status_code == 404
    assert page.errors == []


def test_phone_width_users_list_and_empty_states(
    running_stack: RunningStack, pages: dict[str, Any]
) -> None:
    page = pages["open"]("phone", width=390, height=844)
    sign_in(page, running_stack.query_url)
    page.goto(f"{running_stack.query_url}/dashboard/#/users?q=nobody-{uuid.uuid4().hex}")
    page.get_by_text("No users match these filters.").wait_for()
    # nothing overflows the phone's width
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    page.goto(f"{running_stack.query_url}/dashboard/#/users/nobody-{uuid.uuid4().hex}")
    page.get_by_text("No such user").wait_for()


@pytest.fixture(scope="module")
def restarted_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack whose broker was restarted with Valkey's data kept, and whose writes answer
    without waiting for the materializer (PS_APPLIED_WAIT_S=0: every write is a 202)."""
    running = start_stack(tmp_path_factory.mktemp("restarted"), PS_APPLIED_WAIT_S="0")
    try:
        with running.ingest() as ingest, running.query() as query:
            batch = [
                {"type": "track", "userId": f"before-{i}", "event": "Before"} for i in range(40)
            ]
            ingest.post("/v1/batch", json={"batch": batch}).raise_for_status()
            eventually(lambda: query.get("/v1/users/before-39").status_code == 200, timeout=60)
        restart_broker_and_services(running)
        yield running
    finally:
        running.stack.stop()


def test_after_a_broker_restart_a_created_user_shows_once_applied(
    restarted_stack: RunningStack, pages: dict[str, Any]
) -> None:
    """Straight after the restart (the worker still joining its group), "Create user" answers
    202; the user's page waits for that write instead of saying "No such user"."""
    page = pages["open"]("restarted")
    sign_in(page, restarted_stack.query_url)
    page.get_by_role("button", name="Create user").click()
    suffix = uuid.uuid4().hex[:6]
    page.get_by_label("Email *").fill(f"grace-{suffix}@example.com")
    page.get_by_label("First name").fill("Grace")
    page.get_by_role("button", name="Create user").last.click()
    page.get_by_text("User accepted; it appears once the materializer applies it.").wait_for()
    page.get_by_role("heading", name=re.compile("^Grace")).wait_for(timeout=40_000)
    assert page.get_by_text(f"grace-{suffix}@example.com").is_visible()
    assert page.errors == []
