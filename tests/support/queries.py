"""Naming the users a test sends events for, and reading what the stack stored of them through
the query API, as the tests wait for it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.polling import eventually


def uid(prefix: str = "user") -> str:
    """A user id no other test or run uses: the stack is shared, and never flushed."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


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
