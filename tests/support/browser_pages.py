"""Dashboard pages in the tests' Chromium: named pages that are screenshotted when the test
fails, signing in, and reading the tables the dashboard draws."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from tests.support.browser import ARTIFACTS
from tests.support.stack import ADMIN_TOKEN

TIMEOUT_MS = 15_000


class PageOpener(Protocol):
    def __call__(
        self, name: str, width: int = 1280, height: int = 800, timezone: str | None = None
    ) -> Any: ...


@contextmanager
def screenshotted_pages(browser: Any, test_name: str, failed: Any) -> Iterator[PageOpener]:
    """Opens pages (one context each, en-US, optionally in a time zone) whose uncaught script
    errors collect in `page.errors`; if `failed()` says so at the end, each page is saved to
    test-artifacts/<test>-<name>.png."""
    opened: dict[str, Any] = {}
    contexts: list[Any] = []

    def open_page(
        name: str, width: int = 1280, height: int = 800, timezone: str | None = None
    ) -> Any:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale="en-US",
            timezone_id=timezone,
            accept_downloads=True,
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        opened[name] = page
        return page

    try:
        yield open_page
    finally:
        if failed():
            ARTIFACTS.mkdir(exist_ok=True)
            for name, page in opened.items():
                page.screenshot(path=str(ARTIFACTS / f"{test_name}-{name}.png"), full_page=True)
        for context in contexts:
            context.close()


def sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/dashboard/")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Users").wait_for()


def number(text: str) -> float:
    """A number as the dashboard prints it in en-US ("1,234", "0.5")."""
    return float(text.replace(",", ""))


def table_cells(table: Any) -> list[list[str]]:
    """The texts of every row's header and data cells, the head's row first, the foot's last."""
    rows: list[list[str]] = table.locator("tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    return rows
