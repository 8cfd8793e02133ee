"""A page of tests/sdk_packages/pages/ in Chromium, for the third-party browser-SDK tests: a
fresh browser context, the page opened with a Wire watching what it sends, until its script
has called the SDK, and what is kept afterwards (the Wire's summary in test-artifacts/,
printed; a failed test's page as a screenshot)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from tests.support.browser import ARTIFACTS
from tests.support.page_wire import Wire, compact
from tests.support.stack import WRITE_KEY

PAGE_TIMEOUT_MS = 15_000

W = TypeVar("W", bound=Wire)


@dataclass
class SdkPage:
    """A page in a fresh browser context, on the static site at `site`; `name` names what is
    kept of it in test-artifacts/."""

    context: Any
    page: Any
    site: str
    name: str
    wire: Wire | None = None

    def open(
        self,
        wire_class: type[W],
        page_file: str,
        sends_to: str,
        user: str,
        extra: dict[str, str] | None = None,
        timeout_ms: float = PAGE_TIMEOUT_MS,
    ) -> tuple[dict[str, Any], W]:
        """pages/<page_file> with its SDK sending to `sends_to` (ingest, or a proxy in front of
        it) with the test write key for `user` (and `extra` in the query string), watched by a
        `wire_class` Wire on that origin. Waits until the page's script has called the SDK;
        returns the script's `window.sdkTest` and the Wire."""
        wire = wire_class.attach(self.context, self.page, ingest=sends_to, site=self.site)
        self.wire = wire
        params = {"ingest": sends_to, "writeKey": WRITE_KEY, "user": user, **(extra or {})}
        self.page.goto(f"{self.site}/pages/{page_file}?{urlencode(params)}")
        self.page.wait_for_function(
            "() => window.sdkTest && window.sdkTest.state !== 'loading'", timeout=timeout_ms
        )
        state: dict[str, Any] = self.page.evaluate("() => window.sdkTest")
        assert state["state"] == "called", state
        return state, wire

    def keep(self, failed: bool) -> None:
        """The Wire's summary written to test-artifacts/sdk-wire-<name>.json and printed (if a
        Wire watched), and the page screenshotted to test-artifacts/sdk-<name>.png if `failed`."""
        if self.wire is not None:
            summary = self.wire.summary()
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / f"sdk-wire-{self.name}.json").write_text(
                json.dumps(summary, indent=2) + "\n"
            )
            print(f"\n{self.name}: what the page at {self.site} sent to {self.wire.ingest}")
            print(compact(summary))
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS / f"sdk-{self.name}.png"), full_page=True)


@contextmanager
def sdk_page_in(browser: Any, site: str, name: str) -> Iterator[SdkPage]:
    """A SdkPage in a new context of `browser`, the context closed on exit."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        yield SdkPage(context, page, site, name)
    finally:
        context.close()


def assert_page_quiet(wire: Wire) -> None:
    """The page fetched nothing from a third origin, threw nothing, and logged no error."""
    assert wire.foreign_urls() == [], "the page fetched from another origin"
    assert wire.page_errors == []
    assert [c for c in wire.console if c["type"] == "error"] == []
