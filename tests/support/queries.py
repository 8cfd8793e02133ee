"""Reading what the stack stored, through the query API, as the tests wait for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support.polling import eventually


def profile_when(
    query: httpx.Client, user: str, ready: Callable[[Any], bool], timeout: float = 30
) -> dict[str, Any]:
    """The user's profile once `ready(profile)` holds (fails after `timeout` seconds)."""

    def probe() -> dict[str, Any] | None:
        response = query.get(f"/v1/users/{user}")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if ready(body) else None

    return eventually(probe, timeout=timeout)
