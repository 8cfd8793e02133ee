"""Dead letters: list and show what the worker could not decode or write, and replay it (its
original bytes, or a repaired value) to the topic it came from. See query/dead_letters.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from infra.http import ApiError, bad_parameter
from infra.publisher import BrokerUnavailable, Position, Record
from infra.topic_ids import TopicId
from query.audit import record_audit
from query.dead_letters import (
    MAX_LIST,
    MAX_REPLAY_IDS,
    REPLAY_CHUNK,
    BadLetterId,
    BadRepair,
    DeadLettersUnavailable,
    DeadLetterTopic,
    LetterId,
    ReplayRequest,
    StoredLetter,
    letter_detail,
    letter_summary,
    mark_replayed,
    parse_letter_id,
    repaired_value,
    replay_marks,
    replay_problems,
    replay_record,
    replayed_ids,
)
from query.deps import AdminDep, PublisherDep, RedisDep, SettingsDep, require_reader
from schemas.messages import FieldError

router = APIRouter(prefix="/v1/dead-letters", tags=["dead letters"])


def _unavailable(settings: SettingsDep, exc: Exception) -> ApiError:
    return ApiError(503, str(exc), headers={"Retry-After": str(settings.retry_after_s)})


async def _topic_id(publisher: PublisherDep, settings: SettingsDep) -> TopicId:
    try:
        return await publisher.current_topic_id(settings.dead_letter_topic)
    except BrokerUnavailable as exc:
        raise _unavailable(settings, exc) from None


@router.get("", dependencies=[Depends(require_reader)])
async def list_dead_letters(
    settings: SettingsDep,
    redis: RedisDep,
    publisher: PublisherDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> dict[str, Any]:
    """The newest letters first: id, time, reason, where the original was, its key and size
    (never its bytes), and its last replay."""
    topic_id = await _topic_id(publisher, settings)
    try:
        async with DeadLetterTopic(settings) as topic:
            letters = await topic.newest(limit)
    except DeadLettersUnavailable as exc:
        raise _unavailable(settings, exc) from None
    marks = await replay_marks(redis, topic_id, [s.id for s in letters])
    return {"letters": [letter_summary(s, marks.get(s.id)) for s in letters]}


@router.get("/{letter_id}", dependencies=[Depends(require_reader)])
async def show_dead_letter(
    letter_id: str, settings: SettingsDep, redis: RedisDep, publisher: PublisherDep
) -> dict[str, Any]:
    """One letter with its original value: parsed when it is JSON, else base64."""
    try:
        wanted = parse_letter_id(letter_id)
    except BadLetterId as exc:
        raise bad_parameter("letter_id", exc) from None
    topic_id = await _topic_id(publisher, settings)
    try:
        async with DeadLetterTopic(settings) as topic:
            stored = await topic.letter(wanted)
    except DeadLettersUnavailable as exc:
        raise _unavailable(settings, exc) from None
    if stored is None:
        raise ApiError(404, f"no dead letter {letter_id}")
    marks = await replay_marks(redis, topic_id, [wanted])
    return letter_detail(stored, marks.get(wanted))


async def _publish(
    publisher: PublisherDep, settings: SettingsDep, records: Sequence[Record]
) -> list[Position]:
    try:
        return await publisher.publish_with_positions(records)
    except BrokerUnavailable as exc:
        raise _unavailable(settings, exc) from None


def _replayed(stored: StoredLetter, position: Position) -> dict[str, Any]:
    assert stored.letter is not None
    return {
        "id": str(stored.id),
        "topic": stored.letter.topic,
        "partition": position.partition,
        "offset": position.offset,
    }


async def _letters_by_id(topic: DeadLetterTopic, texts: list[str]) -> list[StoredLetter]:
    """The letters named, in order; 404 naming the first missing, 409 for one that cannot be
    replayed. Nothing is replayed unless every one can be."""
    found: list[StoredLetter] = []
    for index, text in enumerate(texts):
        stored = await topic.letter(parse_letter_id(text))
        if stored is None:
            reason = f"no dead letter {text}"
            raise ApiError(404, reason, [FieldError(field=f"ids.{index}", reason=reason)])
        if stored.letter is None:
            reason = f"{text} is not a dead letter of a version this service reads"
            raise ApiError(409, reason, [FieldError(field=f"ids.{index}", reason=reason)])
        found.append(stored)
    return found


@router.post("/replay")
async def replay_dead_letters(
    body: ReplayRequest,
    request: Request,
    operator: AdminDep,
    settings: SettingsDep,
    redis: RedisDep,
    publisher: PublisherDep,
) -> dict[str, Any]:
    """Publish each letter's original value (or, for one id, the repaired `value`) with its key
    to the topic it came from, acknowledged by the broker. `all`: the letters not replayed
    before, at most MAX_REPLAY_IDS a call (`more`: call again). Safe to repeat: the worker
    applies an event's messageId once."""
    problems = replay_problems(body)
    if problems:
        errors = [FieldError(field=field, reason=reason) for field, reason in problems]
        raise ApiError(400, "invalid replay request", errors)
    repaired: bytes | None = None
    if "value" in body.model_fields_set:
        try:
            repaired = repaired_value(body.value)
        except BadRepair as exc:
            raise bad_parameter("value", exc) from None
    topic_id = await _topic_id(publisher, settings)
    replayed: list[dict[str, Any]] = []
    skipped = 0
    more = False
    try:
        async with DeadLetterTopic(settings) as topic:
            if body.ids is not None:
                letters = await _letters_by_id(topic, body.ids)
                replayed += await _replay(
                    publisher, settings, redis, topic_id, letters, operator.name, repaired
                )
            else:
                # At most MAX_REPLAY_IDS a call, so the answer, the audit entry and the call's
                # time stay bounded; `more` tells the caller to call again (the ones replayed
                # now are skipped then).
                done = await replayed_ids(redis, topic_id)
                chunk: list[StoredLetter] = []
                async for stored in topic.every_letter():
                    if stored.letter is None or str(stored.id) in done:
                        skipped += 1
                        continue
                    if len(replayed) + len(chunk) == MAX_REPLAY_IDS:
                        more = True
                        break
                    chunk.append(stored)
                    if len(chunk) == REPLAY_CHUNK:
                        replayed += await _replay(
                            publisher, settings, redis, topic_id, chunk, operator.name
                        )
                        chunk = []
                replayed += await _replay(
                    publisher, settings, redis, topic_id, chunk, operator.name
                )
    except DeadLettersUnavailable as exc:
        raise _unavailable(settings, exc) from None
    finally:
        # What was replayed before a failure is recorded too.
        if replayed:
            await record_audit(request, operator, "dead_letters.replay", audit_target(replayed))
    return {"replayed": replayed, "skipped": skipped, "more": more}


def audit_target(replayed: Sequence[dict[str, Any]]) -> str:
    """The replayed ids, or for many of them their number, the first and the last."""
    ids = [entry["id"] for entry in replayed]
    if len(ids) <= 10:
        return ",".join(ids)
    return f"{len(ids)} letters: {ids[0]} … {ids[-1]}"


async def _replay(
    publisher: PublisherDep,
    settings: SettingsDep,
    redis: RedisDep,
    topic_id: TopicId,
    letters: Sequence[StoredLetter],
    by: str,
    repaired: bytes | None = None,
) -> list[dict[str, Any]]:
    """Publish the letters (acknowledged), then remember them as replayed."""
    if not letters:
        return []
    records = [replay_record(s.letter, repaired) for s in letters if s.letter]
    positions = await _publish(publisher, settings, records)
    ids: list[LetterId] = [s.id for s in letters]
    await mark_replayed(redis, topic_id, ids, datetime.now(UTC), by)
    return [_replayed(s, p) for s, p in zip(letters, positions, strict=True)]
