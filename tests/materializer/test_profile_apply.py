"""Profile operations through the real batch pipeline (Valkey and chDB): event-time ordering,
set_once/unset/increment/union/remove, constraints, configs, identity merge, commands and
deletion."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from infra.warehouse import EVENTS_TABLE
from materializer.pipeline import BatchProcessor
from materializer.processing import MessageMeta, RawMessage
from materializer.sinks.clickhouse import ClickHouseEventSink
from materializer.sinks.redis import RedisProfileSink
from profilestore.layout import CUSTOMER_IDS, PROPERTY_DEFINITIONS, USERS_INDEX
from profilestore.read import configs_from_fields, read_fields, read_profile, stored_ids
from schemas.commands import UserCommand
from schemas.events import Event
from schemas.messages import CommandMessage, DeadLetterMessage, EventMessage
from schemas.profiles import Profile
from schemas.properties import PropertyDefinition
from tests.support.builders import TOPIC_ID

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
_offsets = itertools.count(10_000)


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def event(key_user: str | None, minutes: float, **fields: Any) -> RawMessage:
    """An event at T0 + minutes; `key_user` is the userId (None: anonymous only)."""
    kind = fields.pop("type", "track")
    e = Event(
        message_id=fields.pop("message_id", uid("m")),
        type=kind,
        user_id=key_user,
        event=fields.pop("event", "Played" if kind == "track" else None),
        timestamp=at(minutes),
        received_at=T0,
        **fields,
    )
    value = EventMessage(event=e).model_dump_json().encode()
    return RawMessage(
        e.profile_key.encode(), value, MessageMeta("events", 0, next(_offsets), TOPIC_ID)
    )


def identify(user: str | None, minutes: float, traits: dict[str, Any], **fields: Any) -> RawMessage:
    return event(user, minutes, type="identify", traits=traits, **fields)


def command(op: str, user: str, minutes: float, **fields: Any) -> RawMessage:
    c = UserCommand(command_id=uid("c"), op=op, user_id=user, issued_at=at(minutes), **fields)
    value = CommandMessage(command=c).model_dump_json().encode()
    return RawMessage(user.encode(), value, MessageMeta("events", 0, next(_offsets), TOPIC_ID))


@pytest.fixture
def processor(redis: aioredis.Redis, chdb_client: Any) -> BatchProcessor:
    async def dead_letter(letter: DeadLetterMessage) -> None:
        raise AssertionError(f"unexpected dead letter: {letter.reason}")

    return BatchProcessor(RedisProfileSink(redis), ClickHouseEventSink(chdb_client), dead_letter)


async def profile_of(redis: aioredis.Redis, user: str) -> Profile:
    profile = await read_profile(redis, user)
    assert profile is not None, f"no profile for {user}"
    return profile


def stored_count(chdb_client: Any, ids: list[str]) -> int:
    result = chdb_client.query(
        f"SELECT count() FROM {EVENTS_TABLE} WHERE user_id IN {{ids:Array(String)}}",
        parameters={"ids": ids},
    )
    return int(result.result_rows[0][0])


async def test_a_late_older_set_never_overwrites_a_newer_value(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada = uid()
    await processor.process([identify(ada, 10, {"plan": "pro", "email": "new@example.com"})])
    await processor.process([identify(ada, 5, {"plan": "free", "email": "old@example.com"})])
    profile = await profile_of(redis, ada)
    assert profile.custom["plan"] == "pro"
    assert profile.email == "new@example.com"


async def test_set_once_keeps_the_earliest_and_never_replaces_a_set(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada = uid()
    await processor.process([identify(ada, 10, {"$set_once": {"source": "ads"}})])
    await processor.process([identify(ada, 20, {"$set_once": {"source": "email"}})])
    await processor.process([identify(ada, 5, {"$set_once": {"source": "organic"}})])
    assert (await profile_of(redis, ada)).custom["source"] == "organic"
    # a plain set wins over set_once whatever the order; a later set_once changes nothing
    await processor.process([identify(ada, 1, {"source": "partner"})])
    await processor.process([identify(ada, 30, {"$set_once": {"source": "late"}})])
    assert (await profile_of(redis, ada)).custom["source"] == "partner"


async def test_unset_leaves_a_tombstone_that_older_sets_cannot_pass(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada = uid()
    await processor.process([identify(ada, 1, {"coupon": "A"})])
    await processor.process([identify(ada, 10, {"$unset": ["coupon"]})])
    await processor.process([identify(ada, 5, {"coupon": "B"})])
    assert "coupon" not in (await profile_of(redis, ada)).custom
    await processor.process([identify(ada, 11, {"coupon": "C"})])
    assert (await profile_of(redis, ada)).custom["coupon"] == "C"


async def test_increment_union_and_remove(processor: BatchProcessor, redis: aioredis.Redis) -> None:
    ada = uid()
    await processor.process(
        [
            identify(ada, 1, {"$increment": {"logins": 1}}),
            identify(ada, 2, {"$increment": {"logins": 2}}),
            identify(ada, 3, {"$union": {"devices": ["ios", "web"]}}),
            identify(ada, 4, {"$union": {"devices": ["web", "android"]}}),
            identify(ada, 5, {"$remove": {"devices": ["ios"]}}),
        ]
    )
    profile = await profile_of(redis, ada)
    assert profile.custom["logins"] == 3
    assert profile.custom["devices"] == ["web", "android"]
    # an increment older than the newest set is void: the set replaced what it added to
    await processor.process([identify(ada, 10, {"logins": 100})])
    await processor.process([identify(ada, 6, {"$increment": {"logins": 5}})])
    assert (await profile_of(redis, ada)).custom["logins"] == 100
    await processor.process([identify(ada, 7, {"$remove": {"devices": ["web", "android"]}})])
    assert (await profile_of(redis, ada)).custom["devices"] == []


async def test_a_constraint_violation_is_recorded_and_the_event_still_stored(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    name = f"plan_{uuid.uuid4().hex[:6]}"
    definition = PropertyDefinition(name=name, type="enum", allowed_values=["free", "pro"])
    await redis.hset(PROPERTY_DEFINITIONS, name, definition.model_dump_json())
    try:
        ada = uid()
        bad = identify(ada, 1, {name: "gold", "email": "not-an-email", "city": "Oslo"})
        await processor.process([bad])
        profile = await profile_of(redis, ada)
        assert name not in profile.custom and profile.email is None
        assert profile.city == "Oslo"  # the rest of the event's traits still apply
        reasons = {r.field: r.reason for r in profile.rejections}
        assert set(reasons) == {f"traits.{name}", "traits.email"}
        assert "is not one of" in reasons[f"traits.{name}"]
        assert "gold" not in reasons[f"traits.{name}"]  # reasons never quote values
        assert stored_count(chdb_client, [ada]) == 1
        await processor.process([identify(ada, 2, {name: "pro"})])
        assert (await profile_of(redis, ada)).custom[name] == "pro"
    finally:
        await redis.hdel(PROPERTY_DEFINITIONS, name)


async def test_served_configs_keep_variation_times_and_dated_history(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada = uid()
    served = [
        (10, "$config_served", {"config": "checkout", "variation": "A"}),
        (30, "$config_served", {"config": "checkout", "variation": "B"}),
        (20, "$config_served", {"config": "checkout", "variation": "A"}),  # late, same run
        (5, "Experiment Viewed", {"experiment_name": "banner", "variation_id": 2}),
        (40, "Experiment Viewed", {"experiment_id": "banner", "variation_name": "big"}),
    ]
    for minutes, name, props in served:
        await processor.process([event(ada, minutes, event=name, properties=props)])
    found = await read_fields(redis, ada)
    assert found is not None
    configs = {c.config: c for c in configs_from_fields(found[1])}
    checkout = configs["checkout"]
    assert (checkout.variation, checkout.times_served) == ("B", 3)
    assert (checkout.first_served, checkout.last_served) == (at(10), at(30))
    assert [(h.variation, h.at) for h in checkout.history] == [("A", at(10)), ("B", at(30))]
    banner = configs["banner"]
    assert [(h.variation, h.at) for h in banner.history] == [("2", at(5)), ("big", at(40))]
    assert banner.variation == "big"


async def test_identify_merges_the_anonymous_profile_and_keeps_every_event_once(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    ada, anon = uid(), uid("anon")
    await processor.process(
        [
            event(None, 1, anonymous_id=anon),
            event(None, 2, anonymous_id=anon, event="Viewed"),
            identify(None, 3, {"plan": "free", "referrer": "ads"}, anonymous_id=anon),
            event(
                None,
                3.5,
                anonymous_id=anon,
                event="$config_served",
                properties={"config": "onboarding", "variation": "short"},
            ),
        ]
    )
    await processor.process([identify(ada, 4, {"plan": "pro"})])  # known user, own events
    await processor.process([identify(ada, 5, {"email": "ada@example.com"}, anonymous_id=anon)])
    # after the merge, events sent under the anonymous id alone land on the user
    await processor.process([event(None, 6, anonymous_id=anon)])

    profile = await profile_of(redis, ada)
    assert profile.anonymous_ids == [anon]
    assert profile.event_count == 7
    assert profile.event_totals == {"Played": 2, "Viewed": 1, "$identify": 3, "$config_served": 1}
    assert profile.custom == {"plan": "pro", "referrer": "ads"}
    assert profile.first_seen == at(1) and profile.last_seen == at(6)
    found = await read_fields(redis, anon)  # the anonymous id resolves to the user
    assert found is not None and found[0] == ada
    assert [c.config for c in configs_from_fields(found[1])] == ["onboarding"]
    ids = await stored_ids(redis, ada)
    assert ids is not None and sorted(ids[1]) == sorted([ada, anon])
    assert stored_count(chdb_client, ids[1]) == 7
    assert await redis.zscore(USERS_INDEX, anon) is None


async def test_two_identified_users_are_never_merged(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada, bob = uid(), uid()
    await processor.process([identify(ada, 1, {"plan": "pro"}), identify(bob, 1, {"plan": "x"})])
    await processor.process([event(ada, 2, type="alias", previous_id=bob, event=None)])
    await processor.process([event(ada, 3, type="alias", previous_id=bob, event=None)])
    ada_profile, bob_profile = await profile_of(redis, ada), await profile_of(redis, bob)
    assert ada_profile.anonymous_ids == [] and bob_profile.custom == {"plan": "x"}
    assert ada_profile.event_count == 3 and bob_profile.event_count == 1
    # refused once, visibly, and not re-recorded on every later event
    assert [r.field for r in ada_profile.rejections] == ["anonymousId"]
    assert "never merged" in ada_profile.rejections[0].reason


async def test_commands_and_events_are_ordered_by_time_with_tags_and_status(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada = uid()
    await processor.process(
        [
            command(
                "create",
                ada,
                10,
                set={"customer_id": f"C-{ada}", "first_name": "Ada"},
                tags_add=["vip", "beta"],
                status="active",
            ),
            identify(ada, 5, {"first_name": "Old"}),  # an older SDK write arrives later
            command("update", ada, 11, tags_remove=["beta"], status="disabled"),
            command("update", ada, 9, tags_add=["beta"], status="active"),  # older: void
        ]
    )
    profile = await profile_of(redis, ada)
    assert profile.first_name == "Ada" and profile.customer_id == f"C-{ada}"
    assert profile.tags == ["vip"] and profile.status == "disabled"
    assert profile.identified and profile.created_at == at(5)
    assert await redis.hget(CUSTOMER_IDS, f'"C-{ada}"') == ada.encode()
    # the customer id is unique: another user's SDK write of it is refused on that profile
    bob = uid()
    await processor.process([identify(bob, 12, {"customer_id": f"C-{ada}"})])
    bob_profile = await profile_of(redis, bob)
    assert bob_profile.customer_id is None
    assert bob_profile.rejections[0].field == "customer_id"


async def test_delete_removes_the_profile_and_every_stored_event_including_merged_ids(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    ada, anon, other = uid(), uid("anon"), uid()
    await processor.process(
        [
            event(None, 1, anonymous_id=anon),
            command("create", ada, 2, set={"customer_id": f"C-{ada}"}),
            identify(ada, 3, {"email": "a@example.com"}, anonymous_id=anon),
            event(other, 3),
        ]
    )
    assert stored_count(chdb_client, [ada, anon]) == 2
    # the delete comes mid-batch: events before it go, the user's events after it stay
    await processor.process(
        [event(ada, 4), command("delete", ada, 5), event(ada, 6, event="Came Back")]
    )
    assert stored_count(chdb_client, [ada, anon]) == 1
    assert stored_count(chdb_client, [other]) == 1
    profile = await profile_of(redis, ada)
    assert profile.event_totals == {"Came Back": 1} and profile.customer_id is None
    assert await read_profile(redis, anon) is None
    assert await redis.hget(CUSTOMER_IDS, f'"C-{ada}"') is None
    # a replay of the whole batch (a crash before the commit) converges to the same state
    await processor.process([command("delete", ada, 7)])
    assert await read_profile(redis, ada) is None
    assert stored_count(chdb_client, [ada, anon]) == 0
    assert await redis.zscore(USERS_INDEX, ada) is None


async def test_delete_in_the_merging_batch_takes_only_ids_the_merge_really_took(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    ada, bob, bobs_anon, adas_anon = uid(), uid(), uid("anon"), uid("anon")
    await processor.process(
        [
            event(None, 1, anonymous_id=bobs_anon),
            identify(bob, 2, {}, anonymous_id=bobs_anon),
            event(None, 3, anonymous_id=adas_anon),
        ]
    )
    # in one batch: ada claims bob's anonymous id (refused) and her own (merged), then goes
    await processor.process(
        [
            identify(ada, 4, {}, anonymous_id=bobs_anon),
            identify(ada, 5, {}, anonymous_id=adas_anon),
            command("delete", ada, 6),
        ]
    )
    assert await read_profile(redis, ada) is None
    assert stored_count(chdb_client, [ada, adas_anon]) == 0
    bob_profile = await profile_of(redis, bob)
    assert bob_profile.anonymous_ids == [bobs_anon] and bob_profile.event_count == 2
    assert stored_count(chdb_client, [bob, bobs_anon]) == 2


async def test_stored_ids_are_the_user_and_the_anonymous_ids_on_its_own_profile(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada, anon = uid(), uid("anon")
    await processor.process(
        [event(None, 1, anonymous_id=anon), identify(ada, 2, {}, anonymous_id=anon)]
    )
    sink = RedisProfileSink(redis)
    assert await sink.stored_ids(ada) == [ada, anon]
    assert await sink.stored_ids(anon) == [anon]  # merged_into is not followed


def stored_traits(chdb_client: Any, message_id: str) -> Any:
    result = chdb_client.query(
        f"SELECT traits FROM {EVENTS_TABLE} WHERE message_id = {{m:String}}",
        parameters={"m": message_id},
    )
    return orjson.loads(result.result_rows[0][0])


async def test_profile_ops_on_track_and_page_events_and_every_config_served(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    ada = uid()
    ops = {"plan": "pro", "$append": {"visits": ["home", 1]}, "$increment": {"n": 2}}
    await processor.process(
        [
            event(ada, 1, message_id=f"{ada}-1", profile_ops=ops, configs={"a": "x", "b": "y"}),
            event(ada, 2, type="page", profile_ops={"$prepend": {"visits": [12345678901234]}}),
            event(ada, 3, type="screen", profile_ops={"$union_front": {"visits": [True, 1]}}),
            event(ada, 4, configs={"a": "z"}),
        ]
    )
    profile = await profile_of(redis, ada)
    assert profile.custom == {"plan": "pro", "visits": [True, 12345678901234, "home", 1], "n": 2}
    found = await read_fields(redis, ada)
    assert found is not None
    configs = {c.config: (c.variation, c.times_served) for c in configs_from_fields(found[1])}
    assert configs == {"a": ("z", 2), "b": ("y", 1)}
    # the event's sequence shows what it did to the profile
    assert stored_traits(chdb_client, f"{ada}-1") == ops


async def test_clear_all_from_an_event_keeps_required_properties(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    name = f"tier_{uuid.uuid4().hex[:6]}"
    definition = PropertyDefinition(name=name, type="string", required=True)
    await redis.hset(PROPERTY_DEFINITIONS, name, definition.model_dump_json())
    try:
        ada = uid()
        await processor.process(
            [identify(ada, 1, {name: "gold", "plan": "pro", "email": "ada@example.com"})]
        )
        await processor.process([event(ada, 3, profile_ops={"$clear_all": True, "late": 1})])
        await processor.process([identify(ada, 2, {"plan": "free", name: "silver"})])  # older
        profile = await profile_of(redis, ada)
        assert profile.custom == {name: "silver", "late": 1} and profile.email is None
    finally:
        await redis.hdel(PROPERTY_DEFINITIONS, name)
