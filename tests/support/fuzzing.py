"""What the property-based tests of ingest's providers share: hypothesis settings under which
every run tests the same examples, arbitrary JSON, and a synchronous client to the app
(hypothesis' tests are synchronous, the app is asyncio)."""

from __future__ import annotations

import asyncio
from typing import Any, Self

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ingest.app import create_app
from tests.support.publishers import RecordingPublisher


def fuzz_settings(max_examples: int) -> settings:
    """`max_examples` examples, derandomized and without an example database (so CI stays
    stable), no deadline, and no health check that only says the generation is slow or large."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def json_scalars(max_int: int = 2**64 - 1, max_text: int = 12) -> st.SearchStrategy[Any]:
    """null, booleans, integers from -2**63 to `max_int`, finite floats, short strings."""
    return (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=max_int)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=max_text)
    )


def json_values(
    scalars: st.SearchStrategy[Any], max_items: int = 4, max_leaves: int = 16
) -> st.SearchStrategy[Any]:
    """Any JSON value of `scalars`: lists and objects (short keys) of up to `max_items`, nested,
    with at most `max_leaves` scalars in all."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=max_items)
            | st.dictionaries(st.text(max_size=8), inner, max_size=max_items)
        ),
        max_leaves=max_leaves,
    )


class SyncIngestClient:
    """A synchronous face on an in-process client to ingest's app over `publisher` (built with
    the settings it was made with); each request starts with the publisher's records cleared.
    Closed by `close` or on leaving a `with` block."""

    def __init__(self, publisher: RecordingPublisher, base_url: str = "http://ingest") -> None:
        self.publisher = publisher
        self.runner = asyncio.Runner()
        # raise_app_exceptions=False: a crash must show as the 500 a client would get.
        transport = httpx.ASGITransport(
            app=create_app(publisher.settings, publisher), raise_app_exceptions=False
        )
        self.http = httpx.AsyncClient(transport=transport, base_url=base_url)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.publisher.records.clear()
        return self.runner.run(self.http.request(method, path, **kwargs))

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
