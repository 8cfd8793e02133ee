"""What the worker could not write, for operators: reading the dead-letter topic, and replaying a
letter's original (or repaired) bytes to the topic it came from.

A letter's id is `<partition>-<offset>` of the letter in the dead-letter topic. The topic is read
by a consumer of no group (it joins no rebalance and commits nothing), assigned to the
partitions it needs, up to the end offsets taken when it started, and closed after the request.

Replays are remembered in Redis, per life of the dead-letter topic (its topic id: the embedded
broker starts every topic again at offset 0, and a letter id of an earlier life must not mark a
new letter as replayed): `replay all` skips the letters replayed before, so a letter that fails
again (and so comes back as a new letter) is not replayed twice by two `all` replays in a row.
An explicit id is replayed whenever asked: the events carry messageIds, and the worker applies
one messageId once."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple, Self

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, Field, ValidationError

from infra.publisher import Record
from infra.settings import Settings
from infra.topic_ids import TopicId
from profilestore.layout import dead_letters_replayed_key
from query.csv_export import iso_utc
from schemas.messages import DeadLetterMessage

MAX_LIST = 1000
MAX_REPLAY_IDS = 1000
# Letters published per produce call of a `replay all`: what it holds in memory at once.
REPLAY_CHUNK = 100

_LETTER_ID = re.compile(r"(\d{1,6})-(\d{1,19})")
# A read of the topic gives up when this many polls in a row bring nothing before the end
# offsets taken at its start: the broker stopped answering.
_POLL_MS = 500
_IDLE_POLLS = 20


class BadLetterId(ValueError):
    pass


class DeadLettersUnavailable(Exception):
    """The broker could not be read."""


class BadRepair(ValueError):
    pass


class LetterId(NamedTuple):
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.partition}-{self.offset}"


def parse_letter_id(text: str) -> LetterId:
    matched = _LETTER_ID.fullmatch(text)
    if matched is None:
        raise BadLetterId(f"{text[:40]!r} is not a dead letter id: <partition>-<offset>, e.g. 0-12")
    return LetterId(int(matched[1]), int(matched[2]))


@dataclass(frozen=True)
class StoredLetter:
    """One record of the dead-letter topic. `letter` is None for a record that is not a dead
    letter of a version this service reads (it is listed, never replayed)."""

    id: LetterId
    time: datetime | None
    letter: DeadLetterMessage | None
    size: int  # of the original value, in bytes


def stored_letter(letter_id: LetterId, timestamp_ms: int, value: bytes | None) -> StoredLetter:
    """Pure: a dead-letter record as read."""
    time = datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms >= 0 else None
    try:
        letter = DeadLetterMessage.model_validate_json(value or b"")
        size = len(original_value(letter))
    except (ValidationError, binascii.Error):
        return StoredLetter(letter_id, time, None, 0)
    return StoredLetter(letter_id, time, letter, size)


def without_value(stored: StoredLetter) -> StoredLetter:
    """The letter with its bytes dropped (a list keeps only what it shows)."""
    if stored.letter is None:
        return stored
    return StoredLetter(
        stored.id, stored.time, stored.letter.model_copy(update={"value_b64": ""}), stored.size
    )


def original_value(letter: DeadLetterMessage) -> bytes:
    return base64.b64decode(letter.value_b64, validate=True)


def newest_first(letters: Iterable[StoredLetter]) -> list[StoredLetter]:
    """By the letter's time, newest first; letters of one moment by id, highest first."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(
        letters, key=lambda s: (s.time or oldest, s.id.offset, s.id.partition), reverse=True
    )


def letter_summary(stored: StoredLetter, replayed: dict[str, Any] | None) -> dict[str, Any]:
    """What the list shows of a letter: where it came from and why, never its bytes."""
    letter = stored.letter
    return {
        "id": str(stored.id),
        "time": None if stored.time is None else iso_utc(stored.time),
        "reason": letter.reason if letter else "unreadable: not a dead letter of version 1",
        "topic": letter.topic if letter else None,
        "partition": letter.partition if letter else None,
        "offset": letter.offset if letter else None,
        "key": letter.key if letter else None,
        "size": stored.size,
        "replayed": replayed,
    }


def letter_detail(stored: StoredLetter, replayed: dict[str, Any] | None) -> dict[str, Any]:
    """The summary and the original value: parsed when it is JSON (`encoding: json`), else
    base64 (`encoding: base64`)."""
    detail = letter_summary(stored, replayed)
    if stored.letter is None:
        return {**detail, "encoding": None, "value": None}
    raw = original_value(stored.letter)
    try:
        return {**detail, "encoding": "json", "value": orjson.loads(raw)}
    except orjson.JSONDecodeError:
        return {**detail, "encoding": "base64", "value": stored.letter.value_b64}


def repaired_value(value: Any) -> bytes:
    """The bytes an operator's repaired value stands for: a JSON object as it is, a string as
    base64 of the bytes (for what is not JSON)."""
    if isinstance(value, dict):
        return orjson.dumps(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise BadRepair(
                "a string value must be base64 (a JSON message is sent as an object)"
            ) from None
    raise BadRepair("a JSON object (the message), or a base64 string of its bytes")


def replay_record(letter: DeadLetterMessage, value: bytes | None = None) -> Record:
    """The record that replays `letter`: its original (or the repaired `value`) with its key,
    to the topic it came from."""
    key: Any = letter.key.encode() if letter.key is not None else None  # None: any partition
    return (letter.topic, key, original_value(letter) if value is None else value)


class ReplayRequest(BaseModel):
    """`{"ids": [...]}` or `{"all": true}`; `value` repairs the one letter of `ids`."""

    ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_REPLAY_IDS)
    all: bool = False
    value: Any = Field(
        default=None, description="for one id: a JSON object, or a base64 string of the bytes"
    )


def replay_problems(request: ReplayRequest) -> list[tuple[str, str]]:
    """Pure: (field, reason) for each rule the request breaks."""
    problems: list[tuple[str, str]] = []
    if request.all == (request.ids is not None):
        problems.append(("ids", "give either ids or all: true"))
    if "value" in request.model_fields_set and (request.ids is None or len(request.ids) != 1):
        problems.append(("value", "a repaired value replaces the value of exactly one id"))
    for index, text in enumerate(request.ids or []):
        try:
            parse_letter_id(text)
        except BadLetterId as exc:
            problems.append((f"ids.{index}", str(exc)))
    return problems


def replayed_key(topic_id: TopicId) -> str:
    """letter id -> {"at": ISO time, "by": operator name} of its last replay, per life of the
    dead-letter topic (its ids start again at 0 when it is created anew)."""
    return dead_letters_replayed_key(topic_id)


async def replay_marks(
    redis: aioredis.Redis, topic_id: TopicId, ids: Sequence[LetterId]
) -> dict[LetterId, dict[str, Any]]:
    """The last replay of each of `ids` that was replayed."""
    if not ids:
        return {}
    values = await redis.hmget(replayed_key(topic_id), [str(i) for i in ids])
    return {i: orjson.loads(v) for i, v in zip(ids, values, strict=True) if v is not None}


async def replayed_ids(redis: aioredis.Redis, topic_id: TopicId) -> set[str]:
    names = await redis.hkeys(replayed_key(topic_id))
    return {name.decode() if isinstance(name, bytes) else name for name in names}


async def mark_replayed(
    redis: aioredis.Redis, topic_id: TopicId, ids: Sequence[LetterId], at: datetime, by: str
) -> None:
    if ids:
        mark = orjson.dumps({"at": iso_utc(at), "by": by})
        await redis.hset(replayed_key(topic_id), mapping={str(i): mark for i in ids})


class DeadLetterTopic:
    """One request's reader of the dead-letter topic (`async with`): the partitions and the
    offsets between which letters are, as they were when it started."""

    def __init__(self, settings: Settings) -> None:
        self._topic = settings.dead_letter_topic
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="profilestream-dead-letters",
            request_timeout_ms=settings.kafka_request_timeout_ms,
            # a letter holds a message of up to 1 MB, as base64
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        # partition -> (first offset, end offset)
        self.ranges: dict[int, tuple[int, int]] = {}

    async def __aenter__(self) -> Self:
        try:
            await self._consumer.start()
            await self._consumer.topics()  # fetches the metadata
            partitions = sorted(self._consumer.partitions_for_topic(self._topic) or ())
            tps = [TopicPartition(self._topic, p) for p in partitions]
            if tps:
                begins = await self._consumer.beginning_offsets(tps)
                ends = await self._consumer.end_offsets(tps)
                self.ranges = {tp.partition: (begins[tp], ends[tp]) for tp in tps}
        except BaseException as exc:
            # Whatever ends the start (the client went away, too): the consumer stops.
            await asyncio.shield(self._consumer.stop())
            if isinstance(exc, (KafkaError, OSError, TimeoutError)):
                raise DeadLettersUnavailable(
                    f"cannot read the dead letters: {type(exc).__name__}"
                ) from exc
            raise
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def _records(self, partition: int, start: int, end: int) -> AsyncGenerator[Any, None]:
        """Every record of `partition` from `start` up to (not including) `end`."""
        tp = TopicPartition(self._topic, partition)
        self._consumer.assign([tp])
        self._consumer.seek(tp, start)
        position, idle = start, 0
        try:
            while position < end:
                fetched = await self._consumer.getmany(
                    tp, timeout_ms=_POLL_MS, max_records=REPLAY_CHUNK
                )
                records = fetched.get(tp, [])
                if not records:
                    idle += 1
                    if idle >= _IDLE_POLLS:
                        raise DeadLettersUnavailable("the broker stopped answering")
                    continue
                idle = 0
                for record in records:
                    if record.offset >= end:
                        return
                    if record.offset >= start:
                        yield record
                # (the consumer's own position: it also steps over offsets that hold no record)
                position = await self._consumer.position(tp)
        except KafkaError as exc:
            raise DeadLettersUnavailable(
                f"cannot read the dead letters: {type(exc).__name__}"
            ) from exc

    async def _letters(
        self, partition: int, start: int, end: int
    ) -> AsyncGenerator[StoredLetter, None]:
        async for record in self._records(partition, start, end):
            letter_id = LetterId(partition, record.offset)
            yield stored_letter(letter_id, record.timestamp, record.value)

    async def newest(self, limit: int) -> list[StoredLetter]:
        """The `limit` newest letters, without their bytes."""
        found: list[StoredLetter] = []
        for partition, (begin, end) in self.ranges.items():
            async for stored in self._letters(partition, max(begin, end - limit), end):
                found.append(without_value(stored))
        return newest_first(found)[:limit]

    async def letter(self, letter_id: LetterId) -> StoredLetter | None:
        begin, end = self.ranges.get(letter_id.partition, (0, 0))
        if not begin <= letter_id.offset < end:
            return None
        offset = letter_id.offset
        async with aclosing(self._letters(letter_id.partition, offset, offset + 1)) as letters:
            async for stored in letters:
                return stored
        return None

    async def every_letter(self) -> AsyncGenerator[StoredLetter, None]:
        """Every letter, partition by partition, oldest first in each."""
        for partition, (begin, end) in self.ranges.items():
            async for stored in self._letters(partition, begin, end):
                yield stored
