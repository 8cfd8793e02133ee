"""Fixtures only (helpers live in tests.support): the static site of another origin that the
third-party browser-SDK tests load their pages from, and a page on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.npm_sdks import SDK_PACKAGES, NpmInstallError, install_sdk_packages
from tests.support.sdk_pages import SdkPage, sdk_page_in
from tests.support.static_site import static_site


@pytest.fixture(scope="session")
def sdk_site() -> Iterator[str]:
    """tests/sdk_packages/ (its pages, and the pinned SDKs `npm ci` installs there unless
    node_modules matches the lock) served on an origin of its own."""
    try:
        install_sdk_packages()
    except NpmInstallError as exc:
        pytest.fail(str(exc), pytrace=False)
    with static_site(SDK_PACKAGES) as origin:
        yield origin


@pytest.fixture
def sdk_page(browser: Any, sdk_site: str, request: pytest.FixtureRequest) -> Iterator[SdkPage]:
    """A page on `sdk_site` in a fresh browser context, named by the test's parameters (or its
    name); afterwards its Wire's summary is kept and, if the test failed, a screenshot."""
    callspec = getattr(request.node, "callspec", None)
    name = callspec.id if callspec is not None else request.node.name.removeprefix("test_")
    with sdk_page_in(browser, sdk_site, name) as opened:
        yield opened
        report = getattr(request.node, "report_call", None)
        opened.keep(failed=report is not None and report.failed)
