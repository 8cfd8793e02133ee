"""Roles in the dashboard (Chromium against the session stack): an analyst reads the user pages
and sees no write controls; an admin makes a token in the Tokens page, signs in with it, revokes
it, and finds both in the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser_pages import screenshotted_pages, table_cells
from tests.support.operators import sign_in_as
from tests.support.polling import eventually
from tests.support.stack import ADMIN_TOKEN, RunningStack

pytestmark = pytest.mark.e2e


@pytest.fixture
def pages(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    def failed() -> bool:
        report = getattr(request.node, "report_call", None)
        return report is not None and bool(report.failed)

    with screenshotted_pages(browser, request.node.name, failed) as open_page:
        yield open_page


def test_an_analyst_reads_users_without_write_controls(
    running_stack: RunningStack, query: httpx.Client, pages: Any
) -> None:
    base = running_stack.query_url
    name = f"analyst-{uuid.uuid4().hex[:6]}"
    token = query.post("/v1/tokens", json={"name": name, "role": "analyst"}).json()["token"]
    user_id = f"seen-{uuid.uuid4().hex[:6]}"
    created = query.post(
        "/v1/users",
        json={"user_id": user_id, "first_name": "Grace", "email": f"{user_id}@example.com"},
    )
    assert created.status_code in (200, 201, 202), created.text
    eventually(lambda: query.get(f"/v1/users/{user_id}").status_code == 200)

    page = pages("analyst")
    sign_in_as(page, base, token)
    expect(page.locator("#whoami")).to_have_text(f"Signed in as {name} (analyst)")
    nav = page.locator("#nav")
    expect(nav.get_by_role("link", name="Users")).to_be_visible()
    expect(nav.get_by_role("link", name="Tokens")).to_be_hidden()
    expect(nav.get_by_role("link", name="Audit log")).to_be_hidden()
    expect(page.get_by_role("button", name="Create user")).to_have_count(0)

    page.goto(f"{base}/dashboard/#/users/{user_id}")
    page.get_by_role("heading", name="Grace").wait_for()
    page.get_by_role("heading", name="Properties", exact=True).wait_for()  # the overview tab drew
    for control in ("Delete", "Disable", "Activate"):
        expect(page.get_by_role("button", name=control, exact=True)).to_have_count(0)
    tabs = page.get_by_role("navigation", name="User sections")
    expect(tabs.get_by_role("link")).to_have_text(["Overview", "Configs", "Events"])
    tabs.get_by_role("link", name="Events").click()
    page.get_by_role("heading", name="Event sequence").wait_for()

    page.goto(f"{base}/dashboard/#/users/{user_id}/edit")  # typed in: the overview instead
    page.get_by_role("heading", name="Properties", exact=True).wait_for()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)

    page.get_by_role("link", name="Properties").click()
    page.get_by_role("heading", name="Default properties").wait_for()
    expect(page.get_by_role("button", name="Add property")).to_have_count(0)

    for address in ("#/tokens", "#/audit", "#/users/new", "#/properties/new"):
        page.goto(f"{base}/dashboard/{address}")
        page.get_by_text("This needs the admin role").wait_for()
    assert page.errors == []


def test_an_admin_makes_a_token_signs_in_with_it_and_revokes_it(
    running_stack: RunningStack, pages: Any
) -> None:
    base = running_stack.query_url
    name = f"made-in-ui-{uuid.uuid4().hex[:6]}"
    page = pages("admin")
    sign_in_as(page, base, ADMIN_TOKEN)
    expect(page.locator("#whoami")).to_have_text("Signed in as admin (admin)")

    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("Token name").fill(name)
    page.get_by_label("Role").select_option("analyst")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_test_id("new-token").text_content()
    assert token and token.startswith("ps_")
    page.get_by_text("it is not shown again").wait_for()
    tokens = page.get_by_role("table", name="Tokens")
    tokens.get_by_role("cell", name=name, exact=True).wait_for()  # the list is drawn again
    rows = table_cells(tokens)
    [row] = [r for r in rows if r[0] == name]
    assert row[1] == "analyst" and row[3] == "admin"

    other = pages("with-the-new-token")
    sign_in_as(other, base, token)
    expect(other.locator("#whoami")).to_have_text(f"Signed in as {name} (analyst)")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke {name}").click()
    page.get_by_text(f"Revoked the token {name}.").wait_for()
    expect(page.get_by_role("button", name=f"Revoke {name}")).to_have_count(0)

    # The revoked token's page is signed out at its next request
    other.get_by_role("link", name="Properties").click()
    other.get_by_role("heading", name="Sign in").wait_for()

    page.get_by_role("link", name="Audit log").click()
    table = page.get_by_role("table", name="Audit log")
    table.wait_for()
    actions = [r[2] for r in table_cells(table) if r[3] == name]
    assert actions == ["token.revoke", "token.create"]
    assert page.errors == [] and other.errors == []
