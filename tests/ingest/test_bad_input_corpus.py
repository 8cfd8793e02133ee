"""Every case of the malformed-request corpus (tests/support/corpus.py) against the ingest app
in-process, with a publisher that records what would reach Kafka. Why: a bad request must cost
the client a 4xx that names the problem, never a 5xx, and must never cost the valid events sent
next to it."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from infra.publisher import Record
from infra.settings import Settings
from ingest.app import create_app
from schemas.events import Event
from schemas.messages import RejectionMessage
from tests.support.corpus import (
    EVENT_TYPES,
    BadRequest,
    Partial,
    Refused,
    build_corpus,
    response_problems,
)
from tests.support.messages import grouping_problems, message_events
from tests.support.provider_corpus import (
    PROTOCOLS,
    Keep,
    ProviderRequest,
    Refuse,
    build_provider_corpus,
    provider_answer_problems,
)
from tests.support.publishers import RecordingPublisher

WRITE_KEY = "corpus-write-key"
SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": f"{WRITE_KEY}:corpus"})
CASES = build_corpus(WRITE_KEY)
CATEGORIES = {
    "invalid-json",
    "wrong-type",
    "deep-nesting",
    "1mb-string",
    "invalid-utf8",
    "bad-timestamp",
    "huge-batch",
    "gzip-bomb",
    "unknown-type",
    "missing-id",
    "oversized-id",
    "oversized-event",
    "mixed-batch",
    "all-bad-batch",
    "batch-structure",
    "bad-gzip",
    "bad-encoding",
    "auth",
    "tolerated",
    "wrong-method",
    "unknown-path",
}


@pytest.fixture(scope="module")
async def ingest() -> AsyncIterator[tuple[httpx.AsyncClient, RecordingPublisher]]:
    publisher = RecordingPublisher(SETTINGS)
    # raise_app_exceptions=False: a crash must show as the 500 a client would get.
    transport = httpx.ASGITransport(app=create_app(SETTINGS, publisher), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield client, publisher


def published_problems(case: BadRequest, records: list[Record]) -> list[str]:
    """What is wrong with what the request produced: only the kept events, each once, in a
    message of its profile key's partition (tests.support.messages.grouping_problems), each a
    valid `Event`; a rejection record for each rejected index."""
    problems = grouping_problems(records, SETTINGS.events_topic, SETTINGS.topic_partitions)
    events: list[Event] = []
    rejections: list[RejectionMessage] = []
    for topic, _, value in records:
        if topic == SETTINGS.events_topic:
            for event in message_events(value):
                Event.model_validate(event.model_dump())  # re-validates: storable times, ids
                events.append(event)
        elif topic == SETTINGS.rejections_topic:
            rejections.append(RejectionMessage.model_validate_json(value))
        else:
            problems.append(f"produced to unexpected topic {topic!r}")
    if isinstance(case.expect, Refused):
        if events:
            problems.append(f"a refused request produced {len(events)} events")
        return problems
    expected = Counter((k.message_id, k.profile_key) for k in case.expect.kept)
    produced = Counter((e.message_id, e.profile_key) for e in events)
    if produced != expected:
        problems.append(
            f"produced events differ: missing {list(expected - produced)[:5]}, "
            f"unexpected {list(produced - expected)[:5]}"
        )
    indices = {r.index: r for r in rejections}
    if set(indices) != set(case.expect.rejected) or len(rejections) != len(indices):
        problems.append(f"rejection records for {sorted(indices)[:10]}, expected others")
    for index, rejected in case.expect.rejected.items():
        record = indices.get(index)
        if record is not None and record.message_id != rejected.message_id:
            problems.append(f"rejection record {index} echoes {str(record.message_id)[:60]!r}")
    return problems


def _param(case: BadRequest) -> object:
    return pytest.param(case, id=case.name)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
async def test_bad_request(
    case: BadRequest, ingest: tuple[httpx.AsyncClient, RecordingPublisher]
) -> None:
    client, publisher = ingest
    publisher.records.clear()
    response = await client.request(case.method, case.path, content=case.body, headers=case.headers)
    problems = response_problems(case, response.status_code, response.content)
    if response.status_code < 500:
        problems += published_problems(case, publisher.records)
    assert not problems, f"{case.name}:\n" + "\n".join(problems)


def test_corpus_covers_every_category_and_endpoint() -> None:
    """At least 1,000 cases, over every category and on every endpoint, refusals naming what
    they refuse, and no messageId kept twice."""
    assert len(CASES) >= 1000
    assert {c.category for c in CASES} == CATEGORIES
    paths = {c.path for c in CASES}
    assert {f"/v1/{t}" for t in EVENT_TYPES} | {"/v1/batch"} <= paths
    partial = [c for c in CASES if isinstance(c.expect, Partial) and c.expect.rejected]
    assert len(partial) >= 200, "bad events inside batches of valid ones"
    for case in CASES:
        if isinstance(case.expect, Refused) and case.edge is None:
            assert case.expect.field or case.expect.mentions, f"{case.name} names nothing"
    # The live test counts each valid event once in the query API: ids must not repeat.
    kept = Counter(
        k.message_id for c in CASES if isinstance(c.expect, Partial) for k in c.expect.kept
    )
    assert kept and max(kept.values()) == 1


def test_corpus_is_deterministic() -> None:
    again = build_corpus(WRITE_KEY)
    assert [(c.name, c.body, c.headers, c.expect) for c in again] == [
        (c.name, c.body, c.headers, c.expect) for c in CASES
    ]


# --- the third-party endpoints: /posthog, /mixpanel, /amplitude, /webhooks -----------------------

PROVIDER_SECRET = "corpus-source-secret"
PROVIDER_SETTINGS = Settings.from_environment(
    {
        "PS_WRITE_KEYS": f"{WRITE_KEY}:corpus",
        "PS_SOURCE_SECRETS": f"{PROVIDER_SECRET}:corpus",
        "PS_SEGMENT_WEBHOOK_BATCHED_SOURCES": "corpus",
    }
)
PROVIDER_CASES = build_provider_corpus(WRITE_KEY, PROVIDER_SECRET)


@pytest.fixture(scope="module")
async def provider_ingest() -> AsyncIterator[tuple[httpx.AsyncClient, RecordingPublisher]]:
    publisher = RecordingPublisher(PROVIDER_SETTINGS)
    app = create_app(PROVIDER_SETTINGS, publisher)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield client, publisher


def provider_published_problems(case: ProviderRequest, records: list[Record]) -> list[str]:
    """Nothing published for a refused request; else every valid event once, in a message of
    its profile key's partition, as a valid `Event`, and a rejection record for each refused
    index."""
    grouping = grouping_problems(
        records, PROVIDER_SETTINGS.events_topic, PROVIDER_SETTINGS.topic_partitions
    )
    events: list[Event] = []
    indices: list[int] = []
    for topic, _, value in records:
        if topic == PROVIDER_SETTINGS.events_topic:
            for event in message_events(value):
                Event.model_validate(event.model_dump())
                events.append(event)
        elif topic == PROVIDER_SETTINGS.rejections_topic:
            indices.append(RejectionMessage.model_validate_json(value).index)
    if isinstance(case.expect, Refuse):
        return [f"a refused request published {len(events)} events"] if events else []
    expect = case.expect
    problems: list[str] = grouping
    wanted = Counter((k.message_id, k.profile_key) for k in expect.kept)
    produced = Counter((e.message_id, e.profile_key) for e in events)
    missing = wanted - produced
    repeated = [pair for pair in wanted if produced[pair] > 1]
    others = sum((produced - wanted).values())
    if missing or repeated:
        problems.append(f"valid events lost {list(missing)[:5]} or repeated {repeated[:5]}")
    if others > len(expect.either):
        problems.append(f"{others} events published beyond the valid ones")
    listed = set(indices)
    absent = sorted(set(expect.rejected) - listed)[:10]
    stray = sorted(listed - set(expect.rejected) - set(expect.either))[:10]
    if absent or stray or len(indices) != len(listed):
        problems.append(f"rejection records: missing {absent}, unexpected {stray}")
    return problems


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in PROVIDER_CASES])
async def test_provider_bad_request(
    case: ProviderRequest, provider_ingest: tuple[httpx.AsyncClient, RecordingPublisher]
) -> None:
    client, publisher = provider_ingest
    publisher.records.clear()
    response = await client.request(case.method, case.path, content=case.body, headers=case.headers)
    problems = provider_answer_problems(case, response.status_code, response.content)
    if response.status_code < 500:
        problems += provider_published_problems(case, publisher.records)
    edge = f" (edge: {case.edge})" if case.edge else ""
    assert not problems, f"{case.name}{edge}:\n" + "\n".join(problems)


def test_provider_corpus_covers_every_endpoint_and_kind_of_input() -> None:
    """Every provider, each in every category of bad input, refusals naming fields, and no
    valid event's messageId used twice (the live test counts each once)."""
    assert {c.protocol for c in PROVIDER_CASES} == set(PROTOCOLS)
    for protocol in PROTOCOLS:
        categories = {c.category for c in PROVIDER_CASES if c.protocol == protocol}
        assert categories >= {
            "valid",
            "wrong-item",
            "odd-item",
            "bad-body",
            "gzip-bomb",
            "bad-encoding",
            "huge-batch",
            "auth",
            "bad-shape",
            "wrong-method",
            "unknown-path",
            "deep-nesting",
        }, protocol
    kept = Counter(
        k.message_id for c in PROVIDER_CASES if isinstance(c.expect, Keep) for k in c.expect.kept
    )
    assert kept and max(kept.values()) == 1
    partial = [c for c in PROVIDER_CASES if isinstance(c.expect, Keep) and c.expect.rejected]
    assert len(partial) >= 150, "bad items among valid ones"


def test_provider_corpus_is_deterministic() -> None:
    again = build_provider_corpus(WRITE_KEY, PROVIDER_SECRET)
    assert [(c.name, c.body, c.headers, c.expect) for c in again] == [
        (c.name, c.body, c.headers, c.expect) for c in PROVIDER_CASES
    ]
