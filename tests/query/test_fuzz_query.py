"""schemathesis against the query service's own OpenAPI document, on the real Valkey and chDB,
with the admin token: no input may give a 5xx. Why: the admin plane parses ids, cursors, time
zones, positions and property definitions from its callers; a crash there is a bug whoever the
caller is. A user seeded through the real materializer pipeline gives the fuzzing a profile and
stored events to reach, and writes answer 202 at once (PS_APPLIED_WAIT_S=0, no materializer)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from infra.settings import Settings
from materializer.pipeline import BatchProcessor
from materializer.processing import MessageMeta, RawMessage
from materializer.sinks.clickhouse import ClickHouseEventSink
from materializer.sinks.redis import RedisProfileSink
from query.app import create_app
from query.consistency import BadPosition, parse_position
from schemas.events import Event
from schemas.messages import DeadLetterMessage, events_message
from tests.support.publishers import TOPIC_ID, RecordingPublisher

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "fuzz-admin-token"
HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# A database of its own on the shared Valkey: the fuzzing writes property definitions and
# customer-id reservations, and is cleared before and after.
REDIS_DB = 9
SEEDED_USER = f"fuzz-seeded-{uuid.uuid4().hex[:8]}"

FUZZ = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: a failure is reported as found, which keeps a failing run short too.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _settings(redis_url: str) -> Settings:
    return Settings.from_environment(
        {
            "PS_REDIS_URL": redis_url,
            "PS_ADMIN_TOKEN": ADMIN_TOKEN,
            "PS_APPLIED_WAIT_S": "0",
            # Wrong tokens on purpose, all from one address: no auth-failure throttle here
            # (tests/query/test_auth_throttle.py tests it).
            "PS_AUTH_FAILURES_PER_MINUTE": "0",
        }
    )


def _operations() -> list[tuple[str, str]]:
    """The documented operations, read at collection from an app that connects to nothing."""
    config = _settings("redis://127.0.0.1:9/0")
    document = create_app(
        config,
        aioredis.Redis.from_url("redis://127.0.0.1:9/0"),
        object(),
        RecordingPublisher(config),
    ).openapi()
    return [(path, method.upper()) for path, item in document["paths"].items() for method in item]


OPERATIONS = _operations()


async def _seed(redis_url: str, chdb_client: Any) -> None:
    """A profile with identify traits and a few tracks, through the materializer's own sinks,
    in one version 2 message as ingest sends them."""
    client = aioredis.Redis.from_url(redis_url)

    async def refuse(letter: DeadLetterMessage) -> None:
        raise AssertionError(f"seed event dead-lettered: {letter.reason}")

    processor = BatchProcessor(RedisProfileSink(client), ClickHouseEventSink(chdb_client), refuse)
    now = datetime.now(UTC)
    encoded = []
    for n in range(5):
        event = Event(
            message_id=f"{SEEDED_USER}-{n}",
            type="identify" if n == 0 else "track",
            user_id=SEEDED_USER,
            event=None if n == 0 else "Fuzz Seeded",
            traits={"email": "seed@example.com", "plan": "pro"} if n == 0 else {},
            properties={"n": n},
            timestamp=now - timedelta(hours=n),
            received_at=now,
        )
        encoded.append(event.model_dump_json().encode())
    meta = MessageMeta("ps.events", 0, 0, TOPIC_ID)
    try:
        await processor.process([RawMessage(SEEDED_USER.encode(), events_message(encoded), meta)])
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def schema(valkey_url: str, chdb_client: Any) -> Iterator[Any]:
    redis_url = f"{valkey_url.rsplit('/', 1)[0]}/{REDIS_DB}"
    sync = redis.Redis.from_url(redis_url)
    sync.flushdb()
    asyncio.run(_seed(redis_url, chdb_client))
    # The app's own client is first used on schemathesis' event loop thread, and only there.
    # Management writes are recorded, never applied.
    config = _settings(redis_url)
    app = create_app(
        config, aioredis.Redis.from_url(redis_url), chdb_client, RecordingPublisher(config)
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    sync.flushdb()
    sync.close()


def documented_wait(status: int, headers: Any, after: object) -> bool:
    """A read given a well-formed `after` position answers 503 + Retry-After until the
    materializer applied it (none runs here), or 410 when it names another life of the topic:
    the documented answers, not a crash."""
    if not isinstance(after, str):
        return False
    if not (status == 410 or (status == 503 and "retry-after" in headers)):
        return False
    try:
        parse_position(after)
    except (BadPosition, ValueError):
        return False
    return True


def broker_needed(status: int, headers: Any, path: str) -> bool:
    """The dead-letter routes read the dead-letter topic from the broker, which this test does
    not run: their documented answer then is 503 + Retry-After, not a crash."""
    return path.startswith("/v1/dead-letters") and status == 503 and "retry-after" in headers


def no_server_error(ctx: Any, response: Any, case: schemathesis.Case[Any]) -> bool | None:
    after = (case.query or {}).get("after")
    if documented_wait(response.status_code, response.headers, after):
        return None
    if broker_needed(response.status_code, response.headers, case.operation.path):
        return None
    return not_a_server_error(ctx, response, case)


def _fuzz(operation: Any, **fixed: Any) -> None:
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode, **fixed))
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=HEADERS, checks=[no_server_error])

        run()


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_operation_never_5xx(schema: Any, path: str, method: str) -> None:
    """Generated and schema-violating input, with the admin token: a 2xx or a 4xx."""
    operation = schema[path][method]
    _fuzz(operation)
    if "{user_id}" in path:
        # Random ids all miss; the seeded user gets past the 404 to the code behind it.
        _fuzz(operation, path_parameters={"user_id": SEEDED_USER})


def test_every_route_refuses_a_missing_or_wrong_token(schema: Any) -> None:
    """Every documented operation needs the admin token (the OpenAPI document does not)."""
    for path, method in OPERATIONS:
        operation = schema[path][method]

        @settings(FUZZ, max_examples=3)
        @given(case=operation.as_strategy(path_parameters={"user_id": SEEDED_USER}))
        def run(case: schemathesis.Case[Any]) -> None:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
                response = case.call(headers=headers)
                assert response.status_code == 401, (case.operation.label, response.text)

        run()


@pytest.fixture(scope="module")
def http(schema: Any) -> Iterator[Any]:
    """A plain client on the fuzzed app, for the inputs found while reading the code."""
    from schemathesis.python.asgi import get_client

    with get_client(schema.app) as client:
        client.headers.update(HEADERS)
        yield client


@pytest.mark.parametrize(
    "query",
    [
        pytest.param({"tz": "Etc/UTC"}, id="zone"),
        pytest.param({"tz": "Nowhere/City"}, id="unknown-zone"),
        pytest.param({"tz": "../../etc/passwd"}, id="path"),
        # A directory of the time-zone database: ZoneInfo raises IsADirectoryError, not
        # ZoneInfoNotFoundError, for these.
        *[
            pytest.param({"tz": name}, id=f"directory-{name}")
            for name in ("America", "Etc", "Europe")
        ],
        pytest.param({"after": "x:1"}, id="after-letters"),
        pytest.param({"after": "\u0661:\u0661"}, id="after-arabic-indic-digits"),
        # Superscripts pass str.isdigit() but int() refuses them with a bare ValueError.
        *[
            pytest.param({"after": value}, id=f"after-superscript-{label}")
            for label, value in (("partition", "\u00b2:1"), ("offset", "0:\u00b3"))
        ],
    ],
)
def test_time_zone_and_position_parameters_never_5xx(http: Any, query: dict[str, str]) -> None:
    for path in ("/v1/events/daily", f"/v1/users/{SEEDED_USER}/events/daily"):
        response = http.get(path, params=query)
        documented = documented_wait(response.status_code, response.headers, query.get("after"))
        assert response.status_code < 500 or documented, response.text
