"""Positions and `after=`: a mark vouches for a position only in the same life of the topic
(its id); a position of a life that is gone is said to be gone instead of waited for. The app
runs on the real Valkey of the session, with a publisher that stands in for the broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from infra.publisher import BrokerUnavailable, Position
from infra.settings import Settings
from profilestore.layout import AppliedMark, applied_offsets_key, encode_applied
from query.app import create_app
from query.consistency import BadPosition, covers, format_position, parse_position

CURRENT = "0190a1b2c3d4e5f60718293a4b5c6d7e"
EARLIER = "0190a1b2c3d4e5f60718293a4b5c0000"


def test_a_position_round_trips() -> None:
    position = Position(3, 1234, CURRENT)
    assert format_position(position) == f"3:1234@{CURRENT}"
    assert parse_position(format_position(position)) == position


@pytest.mark.parametrize(
    "text",
    [
        "3:1234",  # before positions named their topic's life: cannot be told apart
        f"3:1234@{CURRENT[:-1]}",
        f"3:1234@{CURRENT.upper()}",
        f"x:1@{CURRENT}",
        f"\u00b2:1@{CURRENT}",
        "",
    ],
)
def test_malformed_positions_are_refused(text: str) -> None:
    with pytest.raises(BadPosition, match="<partition>:<offset>@<topic id>"):
        parse_position(text)


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        (None, False),
        (AppliedMark(CURRENT, 9), False),
        (AppliedMark(CURRENT, 10), True),
        (AppliedMark(CURRENT, 11), True),
        (AppliedMark(EARLIER, 500), False),  # the previous life got further: vouches nothing
    ],
)
def test_a_mark_covers_a_position_of_its_own_life_only(
    mark: AppliedMark | None, expected: bool
) -> None:
    assert covers(mark, Position(0, 10, CURRENT)) is expected


class StandInBroker:
    """The query service's publisher, with the topic id the broker would give."""

    def __init__(self, topic_id: str | None) -> None:
        self.topic_id = topic_id

    async def current_topic_id(self, topic: str) -> str:
        if self.topic_id is None:
            raise BrokerUnavailable("the broker did not acknowledge: KafkaTimeoutError")
        return self.topic_id

    async def close(self) -> None:
        pass


@pytest.fixture
async def redis_db(valkey_url: str) -> AsyncIterator[tuple[str, aioredis.Redis]]:
    url = f"{valkey_url.rsplit('/', 1)[0]}/7"
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    yield url, client
    await client.flushdb()
    await client.aclose()


async def read_after(
    redis_db: tuple[str, aioredis.Redis], broker: StandInBroker, after: str
) -> httpx.Response:
    url, client = redis_db
    settings = Settings.from_environment(
        {"PS_REDIS_URL": url, "PS_ADMIN_TOKEN": "the-token", "PS_APPLIED_WAIT_S": "0.3"}
    )
    app = create_app(settings, client, object(), broker)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://query",
        headers={"Authorization": "Bearer the-token"},
    ) as http:
        return await http.get(f"/v1/users/{uuid.uuid4().hex}", params={"after": after})


async def mark(redis_db: tuple[str, aioredis.Redis], topic_id: str, offset: int) -> None:
    _, client = redis_db
    settings = Settings.from_environment({})
    await client.hset(
        applied_offsets_key(settings.events_topic), "0", encode_applied(topic_id, offset)
    )


async def test_an_applied_position_answers_at_once(redis_db: Any) -> None:
    await mark(redis_db, CURRENT, 10)
    response = await read_after(redis_db, StandInBroker(CURRENT), f"0:10@{CURRENT}")
    assert response.status_code == 404  # waited for nothing; the user does not exist


async def test_a_mark_of_the_earlier_life_makes_a_read_wait(redis_db: Any) -> None:
    await mark(redis_db, EARLIER, 500)  # what Valkey keeps across a broker restart
    response = await read_after(redis_db, StandInBroker(CURRENT), f"0:10@{CURRENT}")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"


async def test_a_position_not_reached_yet_makes_a_read_wait(redis_db: Any) -> None:
    await mark(redis_db, CURRENT, 9)
    response = await read_after(redis_db, StandInBroker(CURRENT), f"0:10@{CURRENT}")
    assert response.status_code == 503, response.text


async def test_a_position_of_a_life_that_is_gone_is_410(redis_db: Any) -> None:
    await mark(redis_db, CURRENT, 3)
    response = await read_after(redis_db, StandInBroker(CURRENT), f"0:10@{EARLIER}")
    assert response.status_code == 410, response.text
    assert response.json()["code"] == "gone"
    [error] = response.json()["errors"]
    assert error["field"] == "after" and "earlier life" in error["reason"]


async def test_a_gone_life_whose_mark_is_still_there_is_410_unless_the_mark_covers_it(
    redis_db: Any,
) -> None:
    # No traffic of the new life has reached the partition yet: its mark names the old life.
    await mark(redis_db, EARLIER, 5)
    lost = await read_after(redis_db, StandInBroker(CURRENT), f"0:10@{EARLIER}")
    assert lost.status_code == 410, lost.text
    applied_then = await read_after(redis_db, StandInBroker(CURRENT), f"0:5@{EARLIER}")
    assert applied_then.status_code == 404, applied_then.text  # answered: the user is unknown


async def test_when_the_broker_cannot_say_a_read_waits_as_usual(redis_db: Any) -> None:
    await mark(redis_db, CURRENT, 3)
    response = await read_after(redis_db, StandInBroker(None), f"0:10@{EARLIER}")
    assert response.status_code == 503, response.text


async def test_an_old_style_position_is_a_400_naming_after(redis_db: Any) -> None:
    response = await read_after(redis_db, StandInBroker(CURRENT), "0:10")
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "after"
