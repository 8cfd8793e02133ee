"""A user's export: the pure document building (query/export.py), and GET
/v1/users/{user_id}/export through the query app on a real chDB and Valkey, with pages of 3
rows so that the keyset paging crosses pages, ties of time included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from query.export import export_chunks, exported_event, row_position
from query.routes import export as export_route
from tests.support.event_rows import EventRow, insert_events, make_profiles, own_database, query_api

TOKEN = "export-token"
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def stored_row(message_id: str, user: str, anonymous: str = "", **changes: Any) -> tuple[Any, ...]:
    """A row as query.sql.user_events_oldest_first returns it (EXPORT_COLUMNS order)."""
    values: dict[str, Any] = {
        "message_id": message_id,
        "user_id": user,
        "anonymous_id": anonymous,
        "type": "track",
        "event": "Clicked",
        "name": "",
        "timestamp": datetime(2026, 5, 1, 12, 0, 0, 123000),  # naive UTC, as ClickHouse gives
        "received_at": datetime(2026, 5, 1, 12, 0, 1),
        "properties": '{"plan":"pro","n":[1,2]}',
        "traits": "{}",
        "context": '{"ip":"10.0.0.1"}',
        "source": "web",
        **changes,
    }
    return tuple(values.values())


# --- pure ---------------------------------------------------------------------------------------


def test_an_exported_event_has_every_stored_field_with_json_parsed_back() -> None:
    event = exported_event(stored_row("m1", "ada"))
    assert event == {
        "messageId": "m1",
        "userId": "ada",
        "anonymousId": None,
        "type": "track",
        "event": "Clicked",
        "name": None,
        "timestamp": "2026-05-01T12:00:00.123Z",
        "receivedAt": "2026-05-01T12:00:01.000Z",
        "properties": {"plan": "pro", "n": [1, 2]},
        "traits": {},
        "context": {"ip": "10.0.0.1"},
        "source": "web",
    }


def test_an_event_stored_under_its_anonymous_id_has_no_user_id() -> None:
    event = exported_event(stored_row("m1", "anon-1", "anon-1"))
    assert event["userId"] is None and event["anonymousId"] == "anon-1"
    identified = exported_event(stored_row("m2", "ada", "anon-1"))
    assert identified["userId"] == "ada" and identified["anonymousId"] == "anon-1"


def test_a_stored_text_that_is_not_json_is_kept_as_text() -> None:
    assert exported_event(stored_row("m1", "ada", properties="{broken"))["properties"] == "{broken"


def test_row_position_is_the_keyset_of_the_next_page() -> None:
    assert row_position(stored_row("m9", "ada")) == (
        datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        "m9",
    )


async def _pages(*pages: Sequence[tuple[Any, ...]]) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
    for page in pages:
        yield page


async def _joined(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


PROFILE = {"user_id": "ada", "anonymous_ids": ["anon-1"]}


@pytest.mark.parametrize("pages", [[], [[]], [[], []]])
async def test_an_export_without_events(pages: list[list[tuple[Any, ...]]]) -> None:
    ndjson = await _joined(export_chunks(PROFILE, _pages(*pages), "ndjson"))
    assert ndjson.splitlines() == [b'{"kind":"profile","profile":' + orjson.dumps(PROFILE) + b"}"]
    document = orjson.loads(await _joined(export_chunks(PROFILE, _pages(*pages), "json")))
    assert document == {"profile": PROFILE, "events": []}


async def test_both_formats_hold_the_same_events_in_order() -> None:
    pages = [[stored_row("m1", "ada"), stored_row("m2", "ada")], [], [stored_row("m3", "ada")]]
    lines = (await _joined(export_chunks(PROFILE, _pages(*pages), "ndjson"))).splitlines()
    parsed = [orjson.loads(line) for line in lines]
    assert parsed[0] == {"kind": "profile", "profile": PROFILE}
    assert [e.pop("kind") for e in parsed[1:]] == ["event"] * 3
    document = orjson.loads(await _joined(export_chunks(PROFILE, _pages(*pages), "json")))
    assert document["events"] == parsed[1:]
    assert [e["messageId"] for e in document["events"]] == ["m1", "m2", "m3"]


async def test_one_chunk_per_page() -> None:
    pages = [[stored_row("m1", "ada")], [stored_row("m2", "ada")]]
    assert len([c async for c in export_chunks(PROFILE, _pages(*pages), "ndjson")]) == 3
    assert len([c async for c in export_chunks(PROFILE, _pages(*pages), "json")]) == 4


# --- the route, on chDB and Valkey ---------------------------------------------------------------


def _rows(user: str, anonymous: str, other: str) -> list[EventRow]:
    """The user's and the merged anonymous id's events, several at one moment (ties broken by
    messageId), and another user's, which must not be exported."""
    rows = [EventRow(f"u{n}", user, "Clicked", T0 + timedelta(seconds=n // 2)) for n in range(5)]
    rows += [
        EventRow(f"a{n}", anonymous, "Viewed", T0 + timedelta(seconds=n), properties={"n": n})
        for n in range(4)
    ]
    rows += [EventRow(f"o{n}", other, "Clicked", T0) for n in range(3)]
    return rows


async def test_the_route_pages_through_every_id_oldest_first(
    chdb_client: Any, valkey_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_route, "EXPORT_PAGE", 3)
    tag = uuid.uuid4().hex[:8]
    user, anonymous, other = f"ex-user-{tag}", f"ex-anon-{tag}", f"ex-other-{tag}"
    rows = _rows(user, anonymous, other)
    expected = [r.message_id for r in sorted(rows, key=lambda r: (r.timestamp, r.message_id))]
    expected = [m for m in expected if not m.startswith("o")]
    with own_database(chdb_client, "export") as clickhouse:
        insert_events(clickhouse, rows)
        await make_profiles(valkey_url, [user, other], {anonymous: user})
        async with query_api(valkey_url, clickhouse, TOKEN) as api:
            answer = await api.get(f"/v1/users/{user}/export")
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/x-ndjson"
            assert f'filename="export_{user}_' in answer.headers["content-disposition"]
            lines = [orjson.loads(line) for line in answer.content.splitlines()]
            assert lines[0]["profile"]["user_id"] == user
            assert anonymous in lines[0]["profile"]["anonymous_ids"]
            assert [e["messageId"] for e in lines[1:]] == expected
            assert lines[-1]["properties"] == {"n": 3}

            as_json = await api.get(f"/v1/users/{user}/export", params={"format": "json"})
            assert as_json.headers["content-type"] == "application/json"
            document = orjson.loads(as_json.content)
            assert [e["messageId"] for e in document["events"]] == expected

            # An anonymous id merged into the user exports the user.
            merged = await api.get(f"/v1/users/{anonymous}/export")
            assert merged.content == answer.content

            missing = await api.get(f"/v1/users/nobody-{tag}/export")
            assert missing.status_code == 404 and missing.json()["success"] is False
            bad = await api.get(f"/v1/users/{user}/export", params={"format": "csv"})
            assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "format"
