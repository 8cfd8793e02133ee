"""A few hundred cases of the malformed-request corpus (tests/support/corpus.py) against the real
ingest over HTTP, on the whole embedded stack. Why: in-process runs cannot show that uvicorn,
the broker and the materializer survive the same input, nor that the valid events sent next to
bad ones come out of the query API, and exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from tests.support import corpus, provider_corpus
from tests.support.polling import eventually
from tests.support.stack import SOURCE_SECRET, WRITE_KEY, RunningStack

pytestmark = pytest.mark.e2e

LIVE_CASES = 300


def send(client: httpx.Client, case: corpus.BadRequest) -> httpx.Response:
    return client.request(case.method, case.path, content=case.body, headers=case.headers)


def send_alone(running_stack: RunningStack, case: corpus.BadRequest) -> httpx.Response:
    """On a connection of its own: uvicorn drops the connection of a request that crashed the
    app, so a kept-alive connection would fail the next request instead."""
    with httpx.Client(base_url=running_stack.ingest_url, timeout=30) as client:
        return send(client, case)


def stored_message_ids(query: httpx.Client, user: str) -> list[str] | None:
    """Every stored event's messageId of `user`, all pages; None while the user is unknown."""
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        response = query.get(f"/v1/users/{user}/events", params=params)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        page = response.json()
        ids += [e["messageId"] for e in page["events"]]
        if not page["next_cursor"]:
            return ids
        params["before"] = page["next_cursor"]


def ids_by_user(kept: Iterable[Any]) -> dict[str, Counter[str]]:
    """How many times each kept event's messageId is expected, by the profile it lands on."""
    expected: dict[str, Counter[str]] = {}
    for k in kept:
        expected.setdefault(k.profile_key, Counter())[k.message_id] += 1
    return expected


def stored_when_all_arrived(
    query: httpx.Client, expected: dict[str, Counter[str]]
) -> dict[str, list[str]]:
    """Each user's stored messageIds, once every expected one is there (30 s at most)."""

    def all_arrived() -> dict[str, list[str]] | None:
        found = {}
        for user, wanted in expected.items():
            ids = stored_message_ids(query, user)
            if ids is None or not set(wanted) <= set(ids):
                return None
            found[user] = ids
        return found

    return eventually(all_arrived, timeout=30)


def assert_alive(running_stack: RunningStack) -> None:
    exited = running_stack.stack.exited()
    assert not exited, f"exited: {[p.name for p in exited]}\n{running_stack.logs()}"


def test_corpus_cases_live(running_stack: RunningStack, query: httpx.Client) -> None:
    run = f"live-{uuid.uuid4().hex[:8]}"
    cases = corpus.live_selection(corpus.build_corpus(WRITE_KEY, run), LIVE_CASES)
    assert len(cases) == LIVE_CASES
    assert {c.category for c in cases} >= {"gzip-bomb", "huge-batch", "1mb-string", "mixed-batch"}

    problems: list[str] = []
    with httpx.Client(base_url=running_stack.ingest_url, timeout=30) as client:
        for case in cases:
            response = send(client, case)
            found = corpus.response_problems(case, response.status_code, response.content)
            problems += [f"{case.name}: {p}" for p in found]
    assert not problems, "\n".join(problems[:40])
    assert_alive(running_stack)

    # Every valid event sent among the bad ones is stored once; nothing else of this run is.
    kept = [k for c in cases if isinstance(c.expect, corpus.Partial) for k in c.expect.kept]
    expected = ids_by_user(kept)
    assert max(n for c in expected.values() for n in c.values()) == 1, "corpus reuses an id"
    assert sum(len(c) for c in expected.values()) >= 50

    stored = stored_when_all_arrived(query, expected)
    for user, ids in stored.items():
        mine = Counter(i for i in ids if i.startswith(run) or user.startswith(run))
        assert mine == expected[user], (
            f"{user}: missing {list(expected[user] - mine)[:5]}, "
            f"extra or repeated {list(mine - expected[user])[:5]}"
        )
    assert_alive(running_stack)


def test_edge_cases_live(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client
) -> None:
    """The corpus' edge cases (deep nesting, timestamps out of datetime's range, invalid
    messageIds), live: each is answered as its expectation says, the processes outlive them, and
    the next valid event still flows through."""
    cases = [c for c in corpus.build_corpus(WRITE_KEY, f"edges-{uuid.uuid4().hex[:8]}") if c.edge]
    assert cases
    problems: list[str] = []
    for case in cases:
        response = send_alone(running_stack, case)
        found = corpus.response_problems(case, response.status_code, response.content)
        problems += [f"{case.name}: {p}" for p in found]
    assert not problems, "\n".join(problems[:40])
    assert_alive(running_stack)
    user = f"after-edges-{uuid.uuid4().hex[:8]}"
    response = ingest.post("/v1/track", json={"userId": user, "event": "Still Up"})
    assert response.status_code == 200, response.text
    eventually(lambda: stored_message_ids(query, user))
    assert_alive(running_stack)


# --- the third-party endpoints ---------------------------------------------------------------

LIVE_PROVIDER_CASES = 160


def send_provider(client: httpx.Client, case: provider_corpus.ProviderRequest) -> httpx.Response:
    return client.request(case.method, case.path, content=case.body, headers=case.headers)


def test_provider_corpus_cases_live(running_stack: RunningStack, query: httpx.Client) -> None:
    """Bad PostHog, Mixpanel, Amplitude and webhook requests over HTTP: each answered in the
    provider's shape without a 5xx, and the valid events sent beside the bad ones stored, each
    once, in the query API."""
    run = f"plive-{uuid.uuid4().hex[:8]}"
    cases = provider_corpus.live_provider_selection(
        provider_corpus.build_provider_corpus(WRITE_KEY, SOURCE_SECRET, run), LIVE_PROVIDER_CASES
    )
    assert len(cases) == LIVE_PROVIDER_CASES
    assert {c.protocol for c in cases} == set(provider_corpus.PROTOCOLS)

    problems: list[str] = []
    with httpx.Client(base_url=running_stack.ingest_url, timeout=30) as client:
        for case in cases:
            response = send_provider(client, case)
            found = provider_corpus.provider_answer_problems(
                case, response.status_code, response.content
            )
            problems += [f"{case.name}: {p}" for p in found]
    assert not problems, "\n".join(problems[:40])
    assert_alive(running_stack)

    kept = [k for c in cases if isinstance(c.expect, provider_corpus.Keep) for k in c.expect.kept]
    expected = ids_by_user(kept)
    assert set(expected) == {f"{run}-{p}-user" for p in provider_corpus.PROTOCOLS}
    assert max(n for c in expected.values() for n in c.values()) == 1, "corpus reuses an id"

    stored = stored_when_all_arrived(query, expected)
    for user, ids in stored.items():
        repeated = [i for i, n in Counter(ids).items() if n > 1]
        assert not repeated, f"{user}: stored more than once: {repeated[:5]}"
        assert set(expected[user]) <= set(ids)
    assert_alive(running_stack)


def test_provider_edge_cases_live(running_stack: RunningStack, query: httpx.Client) -> None:
    """The provider corpus' edge cases (nesting past orjson's limit, with and without the id a
    provider would otherwise hash), live, each on a connection of its own."""
    run = f"pedges-{uuid.uuid4().hex[:8]}"
    cases = [
        c for c in provider_corpus.build_provider_corpus(WRITE_KEY, SOURCE_SECRET, run) if c.edge
    ]
    assert cases
    problems: list[str] = []
    for case in cases:
        with httpx.Client(base_url=running_stack.ingest_url, timeout=30) as client:
            response = send_provider(client, case)
        found = provider_corpus.provider_answer_problems(
            case, response.status_code, response.content
        )
        problems += [f"{case.name}: {p}" for p in found]
    assert_alive(running_stack)
    assert not problems, f"edge: {cases[0].edge}\n" + "\n".join(problems[:40])
