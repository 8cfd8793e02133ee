"""What the third-party SDK tests read back through the query API once an SDK has sent: a user's
stored events (waited for), configs and daily counts, and the checks on them (each event stored
once; everything sent before a point processed)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from tests.support.polling import eventually

# How long an SDK's events may take from its send to the query API (batching, retries, the
# pipeline): generous, as shared machines are slow.
DELIVERY_TIMEOUT_S = 60.0
# What `stored_after_all_sent_for` sends behind an SDK's events; tests leave it out of counts.
SENTINEL = "Sentinel"


def stored_events(query: httpx.Client, user: str) -> list[dict[str, Any]]:
    """The user's stored events, oldest first; [] while the user has none."""
    response = query.get(f"/v1/users/{user}/events", params={"limit": 1000})
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json()["events"])


def events_when(
    query: httpx.Client, user: str, expected: Counter[str], timeout: float = DELIVERY_TIMEOUT_S
) -> list[dict[str, Any]]:
    """The user's stored events once at least `expected` (by name) are there."""

    def probe() -> list[dict[str, Any]] | None:
        found = stored_events(query, user)
        names = Counter(e["name"] for e in found)
        return found if all(names[n] >= k for n, k in expected.items()) else None

    return eventually(probe, timeout=timeout)


def events_counting(
    query: httpx.Client, user: str, count: int, timeout: float = DELIVERY_TIMEOUT_S
) -> list[dict[str, Any]]:
    """The user's stored events once there are at least `count`."""
    return eventually(
        lambda: found if len(found := stored_events(query, user)) >= count else None,
        timeout=timeout,
    )


def configs_of(query: httpx.Client, user: str) -> dict[str, str]:
    """The variation served to the user, by config."""
    response = query.get(f"/v1/users/{user}/configs")
    assert response.status_code == 200, response.text
    return {c["config"]: c["variation"] for c in response.json()}


def daily_counts(query: httpx.Client, user: str, event: str) -> dict[str, int]:
    """How many `event`s of the user the daily counts hold, by date, for today and yesterday
    (UTC): a test's events, even when it runs over midnight."""
    daily = query.get(
        f"/v1/users/{user}/events/daily", params={"event": event, "days": 2, "tz": "UTC"}
    )
    assert daily.status_code == 200, daily.text
    return {row["date"]: row["count"] for row in daily.json()}


def recent_count(query: httpx.Client, user: str, event: str) -> int:
    """The sum of `daily_counts`: how many `event`s of the user today and yesterday (UTC)."""
    return int(sum(daily_counts(query, user, event).values()))


def assert_stored_once(events: list[dict[str, Any]], exactly: set[str] | None = None) -> None:
    """No message id is stored twice; given `exactly` (the ids an SDK sent), the stored ones are
    those."""
    by_id = Counter(e["messageId"] for e in events)
    assert {k: n for k, n in by_id.items() if n > 1} == {}, "stored twice"
    if exactly is not None:
        assert set(by_id) == exactly


def stored_after_all_sent_for(
    ingest: httpx.Client, query: httpx.Client, user: str, ids: list[str]
) -> list[dict[str, Any]]:
    """The user's stored events (sentinels left out) once every event sent for `ids` before this
    call has been processed: a sentinel per id, sent through the Segment API, lands on the same
    partition (the key is the id) after them, and shows in `user`'s sequence (an anonymous id's
    once it is merged into the user)."""
    for n, profile_id in enumerate(ids):
        field = "userId" if profile_id == user else "anonymousId"
        sent = ingest.post(
            "/v1/track", json={field: profile_id, "event": SENTINEL, "properties": {"n": n}}
        )
        assert sent.status_code == 200, sent.text
    events_when(query, user, Counter({SENTINEL: len(ids)}))
    return [e for e in stored_events(query, user) if e["name"] != SENTINEL]
