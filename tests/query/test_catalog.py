"""The event catalog (GET /v1/events/names, GET /v1/events/{name}/properties) and the CSV of a
user's sequence, through the query app on a real chDB and Valkey: names, counts and last seen
checked against a plain count of the inserted rows over ranges whose edges cut 15-minute
buckets (rows just outside each edge must not count), the properties of a sample, the sequence
CSV parsed back, 400s naming the parameter and 401s. Also the pure parts of query/catalog.py.

The rows go into a database of this module's own in the session's chDB, so the catalog holds
exactly them."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from query import catalog
from query.insights import periods
from tests.support.event_rows import EventRow, insert_events, make_profiles, own_database, query_api

TOKEN = "catalog-token"
PREFIX = f"cat-{uuid.uuid4().hex[:8]}"
MS = timedelta(milliseconds=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- pure: split_on_buckets, friendly_type, property_stats ----------------------------------


@pytest.mark.parametrize(
    ("start", "end", "whole", "edges"),
    [
        ("10:00", "12:00", ("10:00", "12:00"), []),
        ("10:07", "12:00", ("10:15", "12:00"), [("10:07", "10:15")]),
        ("10:00", "11:52", ("10:00", "11:45"), [("11:45", "11:52")]),
        ("10:07", "11:52", ("10:15", "11:45"), [("10:07", "10:15"), ("11:45", "11:52")]),
        # inside one bucket, and across one bucket edge only: no whole bucket
        ("10:02", "10:09", None, [("10:02", "10:09")]),
        ("10:05", "10:20", None, [("10:05", "10:20")]),
        ("10:05", "10:30", ("10:15", "10:30"), [("10:05", "10:15")]),
        ("10:00", "10:15", ("10:00", "10:15"), []),
        ("10:00", "10:00", None, []),
    ],
)
def test_split_on_buckets(
    start: str, end: str, whole: tuple[str, str] | None, edges: list[tuple[str, str]]
) -> None:
    def at(hhmm: str) -> datetime:
        return utc(f"2026-03-10T{hhmm}:00+00:00")

    found_whole, found_edges = periods.split_on_buckets(at(start), at(end))
    assert found_whole == (None if whole is None else (at(whole[0]), at(whole[1])))
    assert found_edges == [(at(a), at(b)) for a, b in edges]


def test_split_on_buckets_milliseconds_and_offsets() -> None:
    start = datetime.fromisoformat("2026-03-10T11:15:00.001+01:00")
    end = datetime.fromisoformat("2026-03-10T12:44:59.999+01:00")
    whole, edges = periods.split_on_buckets(start, end)
    assert whole == (utc("2026-03-10T10:30:00+00:00"), utc("2026-03-10T11:30:00+00:00"))
    assert edges == [(start, utc("2026-03-10T10:30:00+00:00")), (whole[1], end)]


@pytest.mark.parametrize(
    ("kind", "friendly"),
    [
        ("String", "string"),
        ("Int64", "number"),
        ("UInt64", "number"),
        ("Float64", "number"),
        ("Nullable(Float64)", "number"),
        ("Bool", "boolean"),
        ("Array(Nullable(String))", "array"),
        ("Array(JSON(max_dynamic_types=16, max_dynamic_paths=256))", "array"),
        ("Date", "date"),
        ("DateTime", "datetime"),
        ("DateTime64(9)", "datetime"),
        ("JSON", "object"),
        ("Tuple(a String)", "object"),
        ("UUID", "string"),
        ("None", "null"),
        ("Decimal(10, 2)", "number"),
        ("IntervalSecond", "intervalsecond"),
    ],
)
def test_friendly_type(kind: str, friendly: str) -> None:
    assert catalog.friendly_type(kind) == friendly


def test_property_stats_merges_types_orders_and_caps() -> None:
    found = [
        catalog.PathType("price", "Int64", 5),
        catalog.PathType("price", "Float64", 4),
        catalog.PathType("price", "String", 2),
        catalog.PathType("plan", "String", 11),
        catalog.PathType("b", "Bool", 3),
        catalog.PathType("a", "Bool", 3),
        *[catalog.PathType(f"k{n:03d}", "String", 1) for n in range(300)],
    ]
    stats = catalog.property_stats(found, {"plan": [("pro", 7)]})
    assert len(stats) == catalog.MAX_PROPERTIES
    assert [(s.property, s.types, s.count) for s in stats[:4]] == [
        ("plan", ["string"], 11),
        ("price", ["number", "string"], 11),
        ("a", ["boolean"], 3),
        ("b", ["boolean"], 3),
    ]
    assert stats[0].top_values == [("pro", 7)] and stats[1].top_values == []
    assert stats[4].property == "k000" and stats[-1].property == "k195"


# --- the rows -------------------------------------------------------------------------------

NAMES = ("Signup Started", "checkout done", "Checkout Failed", "Käse Gekauft", "=cmd|' /C calc'!A0")
OLD = "Old Event"  # only long before every range
VIEWED = "Product Viewed"
BIG = "Big Event"
SLASHED = "Page/Viewed"
EMPTY_KEY = "Empty Key"
UNSEEN = "Never Seen"


@dataclass(frozen=True)
class Range:
    """A query's time range and the UTC instants it stands for."""

    params: dict[str, str]
    start: datetime
    end: datetime


RANGES = {
    "unaligned-paris": Range(
        {"from": "2026-03-10T11:07:13.250", "to": "2026-03-12T19:52:40.500", "tz": "Europe/Paris"},
        utc("2026-03-10T10:07:13.250+00:00"),
        utc("2026-03-12T18:52:40.500+00:00"),
    ),
    "dates-kolkata": Range(
        {"from": "2026-03-10", "to": "2026-03-11", "tz": "Asia/Kolkata"},
        utc("2026-03-09T18:30:00+00:00"),
        utc("2026-03-11T18:30:00+00:00"),
    ),
    "one-bucket": Range(
        {"from": "2026-03-10T10:02:00Z", "to": "2026-03-10T10:09:00Z"},
        utc("2026-03-10T10:02:00+00:00"),
        utc("2026-03-10T10:09:00+00:00"),
    ),
    "two-partial-buckets": Range(
        {"from": "2026-03-10T10:05:00+00:00", "to": "2026-03-10T10:20:00+00:00"},
        utc("2026-03-10T10:05:00+00:00"),
        utc("2026-03-10T10:20:00+00:00"),
    ),
    "aligned-start": Range(
        {"from": "2026-03-10T10:00:00Z", "to": "2026-03-12T18:52:40.500Z"},
        utc("2026-03-10T10:00:00+00:00"),
        utc("2026-03-12T18:52:40.500+00:00"),
    ),
    # New York's spring-forward day (23 hours), whole local days
    "dates-new-york-dst": Range(
        {"from": "2026-03-08", "to": "2026-03-08", "tz": "America/New_York"},
        utc("2026-03-08T05:00:00+00:00"),
        utc("2026-03-09T04:00:00+00:00"),
    ),
}


def _name_rows() -> list[EventRow]:
    """Rows around every edge of every range (at it, a millisecond and minutes to either side,
    in the same 15-minute bucket and the next), and random ones over the days around them."""
    rng = random.Random(14)
    moments: list[datetime] = []
    for period in RANGES.values():
        for edge in (period.start, period.end):
            for offset in (-16 * 60_000, -15 * 60_000, -7 * 60_000, -1, 0, 1, 7 * 60_000):
                moments.append(edge + offset * MS)
            moments.append(edge + timedelta(minutes=15) - MS)
    begin = utc("2026-03-07T00:00:00+00:00")
    moments += [begin + rng.randrange(7 * 86_400_000) * MS for _ in range(1500)]
    rows = [
        EventRow(f"{PREFIX}-n{n}", f"{PREFIX}-u{n % 17}", rng.choice(NAMES), moment)
        for n, moment in enumerate(moments)
    ]
    rows += [
        EventRow(f"{PREFIX}-old{n}", f"{PREFIX}-u1", OLD, utc("2026-01-05T12:00:00+00:00") + n * MS)
        for n in range(5)
    ]
    return rows


NAME_ROWS = _name_rows()


def expected_names(period: Range) -> list[tuple[str, int, datetime]]:
    """The oracle: a plain count of the rows in [start, end), by count desc then name."""
    counts: dict[str, int] = {}
    last: dict[str, datetime] = {}
    for row in NAME_ROWS:
        if period.start <= row.timestamp < period.end:
            counts[row.event] = counts.get(row.event, 0) + 1
            last[row.event] = max(last.get(row.event, row.timestamp), row.timestamp)
    ordered = sorted(counts, key=lambda name: (-counts[name], name.encode()))
    return [(name, counts[name], last[name]) for name in ordered]


# The properties of "Product Viewed" in May 2026: what each event carries, and how many.
PROPS_START, PROPS_END = utc("2026-05-01T00:00:00+00:00"), utc("2026-06-01T00:00:00+00:00")
PROPERTY_MIX: list[tuple[int, dict[str, Any]]] = [
    (12, {"plan": "pro", "price": 10, "company": {"name": "Acme", "size": 5}}),
    (9, {"plan": "free", "price": 99, "flag": True}),
    (6, {"plan": "team", "price": 12.5, "tags": ["a", "b"], "it's": "x"}),
    (2, {"plan": "enterprise", "price": "13", "a.b": 1, "with space": "v"}),
    (2, {"back\\slash`tick": "y", "tab\tand\nnewline": "z"}),
    (1, {"plan": "", "flag": False}),
    (5, {"plan": None, "note": "=1+1"}),  # null: not set
    (3, {}),
]


def _property_rows() -> list[EventRow]:
    rows: list[EventRow] = []
    moment = PROPS_START + timedelta(days=3)
    for count, properties in PROPERTY_MIX:
        for _ in range(count):
            moment += timedelta(minutes=37)
            rows.append(
                EventRow(f"{PREFIX}-p{len(rows)}", f"{PREFIX}-u2", VIEWED, moment, properties)
            )
    # Just outside the range: never sampled.
    for n, moment in enumerate((PROPS_START - MS, PROPS_END, PROPS_END + timedelta(hours=1))):
        rows.append(EventRow(f"{PREFIX}-px{n}", f"{PREFIX}-u2", VIEWED, moment, {"outside": 1}))
    # More than a sample: the oldest ten alone carry `old_only`.
    first = PROPS_START + timedelta(days=10)
    for n in range(catalog.SAMPLE_SIZE + 10):
        properties = {"old_only": 1} if n < 10 else {"n": n % 7}
        rows.append(
            EventRow(f"{PREFIX}-b{n}", f"{PREFIX}-u3", BIG, first + n * 1000 * MS, properties)
        )
    rows.append(EventRow(f"{PREFIX}-s0", f"{PREFIX}-u3", SLASHED, first, {"path": "/home"}))
    # a key that is the empty string: a path no filter can name, and no Identifier binds
    rows.append(EventRow(f"{PREFIX}-e0", f"{PREFIX}-u3", EMPTY_KEY, first, {"": 5, "ok": 1}))
    return rows


# The sequence: a user with an anonymous id merged into it, events stored under both (some
# sharing a timestamp across the CSV's page boundaries), another user's, and an eventless user.
USER, ANONYMOUS, OTHER_USER, EMPTY_USER = (
    f"{PREFIX}-ada",
    f"{PREFIX}-anon",
    f"{PREFIX}-bob",
    f"{PREFIX}-eve",
)
SEQUENCE_SIZE = 2345
TRICKY_TEXTS = ('say "hi", then\nleave', "Zürich: 🎉", "-5", "=SUM(A1)", "+1 555", "a,b")


def _sequence_rows() -> list[EventRow]:
    rng = random.Random(7)
    rows: list[EventRow] = []
    base = utc("2026-04-01T00:00:00+00:00")
    for n in range(SEQUENCE_SIZE):
        kind = ("track", "page", "identify")[n % 3]
        rows.append(
            EventRow(
                message_id=f"{PREFIX}-q{n:05d}",
                user_id=ANONYMOUS if n % 4 == 0 else USER,
                # three events per millisecond: the cursor's tie-break is the messageId
                timestamp=base + (n // 3) * 1013 * MS,
                event=rng.choice(("Played", '=HYPERLINK("x")', "Paused"))
                if kind == "track"
                else "",
                type=kind,
                name="Pricing" if kind == "page" else "",
                properties={"n": n, "text": rng.choice(TRICKY_TEXTS), "nested": {"k": [1, None]}},
                traits={"email": f"ada{n}@example.com", "plan": "pro"}
                if kind == "identify"
                else {},
                protocol="posthog" if n % 5 == 0 else "",
            )
        )
    rows.append(EventRow(f"{PREFIX}-bob0", OTHER_USER, "Played", base))
    return rows


SEQUENCE_ROWS = _sequence_rows()


@pytest.fixture(scope="module")
async def api(valkey_url: str, chdb_client: Any) -> AsyncIterator[httpx.AsyncClient]:
    with own_database(chdb_client, "catalog") as clickhouse:
        insert_events(clickhouse, NAME_ROWS)
        insert_events(clickhouse, _property_rows())
        insert_events(clickhouse, SEQUENCE_ROWS)
        await make_profiles(valkey_url, [OTHER_USER, EMPTY_USER], {ANONYMOUS: USER})
        async with query_api(valkey_url, clickhouse, TOKEN) as http:
            yield http


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_csv(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.text, newline="")))


def guarded(text: str) -> str:
    """A text as the CSV writes it (formula-injection guard)."""
    numeric = text.lstrip("+-").replace(".", "", 1).isdigit()
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not numeric else text


# --- GET /v1/events/names -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("case", list(RANGES), ids=list(RANGES))
async def test_names_match_a_plain_count(api: httpx.AsyncClient, case: str) -> None:
    period = RANGES[case]
    response = await api.get("/v1/events/names", params=period.params)
    assert response.status_code == 200, response.text
    body = response.json()
    got = [(e["name"], e["count"], datetime.fromisoformat(e["last_seen"])) for e in body["events"]]
    assert got == expected_names(period)
    assert OLD not in {e["name"] for e in body["events"]}
    assert datetime.fromisoformat(body["from"]) == period.start
    assert datetime.fromisoformat(body["to"]) == period.end


def test_the_edge_rows_make_the_oracle_meaningful() -> None:
    """Each range has rows just outside both edges, in the bucket of the edge."""
    for period in RANGES.values():
        times = {row.timestamp for row in NAME_ROWS}
        assert period.start - MS in times and period.end in times
        assert period.start in times and period.end - MS in times


@pytest.mark.integration
async def test_names_search_and_limit(api: httpx.AsyncClient) -> None:
    period = RANGES["unaligned-paris"]
    expected = expected_names(period)
    found = await api.get("/v1/events/names", params={**period.params, "q": "CHECKOUT"})
    assert [e["name"] for e in found.json()["events"]] == [
        name for name, _, _ in expected if "checkout" in name.lower()
    ]
    assert {e["name"] for e in found.json()["events"]} == {"checkout done", "Checkout Failed"}
    umlaut = await api.get("/v1/events/names", params={**period.params, "q": "KÄSE"})
    assert [e["name"] for e in umlaut.json()["events"]] == ["Käse Gekauft"]
    nothing = await api.get("/v1/events/names", params={**period.params, "q": "zzz"})
    assert nothing.json()["events"] == []
    limited = await api.get("/v1/events/names", params={**period.params, "limit": "2"})
    assert [(e["name"], e["count"]) for e in limited.json()["events"]] == [
        (name, n) for name, n, _ in expected[:2]
    ]
    # An empty q is no filter.
    everything = await api.get("/v1/events/names", params={**period.params, "q": ""})
    assert len(everything.json()["events"]) == len(expected)


@pytest.mark.integration
async def test_names_default_range_is_the_last_30_days(api: httpx.AsyncClient) -> None:
    body = (await api.get("/v1/events/names")).json()
    assert body["events"] == []  # every row is from before
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert start.utcoffset() == timedelta(0) and start.hour == 0
    assert timedelta(days=29) < end - start <= timedelta(days=30)


@pytest.mark.integration
async def test_names_as_csv(api: httpx.AsyncClient) -> None:
    period = RANGES["unaligned-paris"]
    response = await api.get("/v1/events/names", params={**period.params, "format": "csv"})
    rows = parse_csv(response)
    assert rows[0] == ["name", "count", "last_seen"]
    assert rows[1:] == [
        [guarded(name), str(n), iso_utc(last)] for name, n, last in expected_names(period)
    ]
    assert "'=cmd|' /C calc'!A0" in {row[0] for row in rows}
    assert response.headers["content-disposition"] == (
        'attachment; filename="event-names_2026-03-10_2026-03-12.csv"'
    )
    accepted = await api.get(
        "/v1/events/names", params=period.params, headers={"Accept": "text/csv"}
    )
    assert accepted.content == response.content
    empty = await api.get(
        "/v1/events/names", params={**period.params, "q": "zzz"}, headers={"Accept": "text/csv"}
    )
    assert parse_csv(empty) == [["name", "count", "last_seen"]]


# --- GET /v1/events/{name}/properties -------------------------------------------------------

MAY = {"from": "2026-05-01", "to": "2026-05-31"}


@pytest.mark.integration
async def test_properties_types_counts_and_top_values(api: httpx.AsyncClient) -> None:
    response = await api.get(f"/v1/events/{quote(VIEWED)}/properties", params=MAY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["event"] == VIEWED
    assert body["sampled"] == sum(count for count, _ in PROPERTY_MIX)
    found = {p["property"]: p for p in body["properties"]}
    assert "outside" not in found  # outside the range
    assert found["plan"] == {
        "property": "plan",
        "types": ["string"],
        "count": 30,  # the nulls are not set
        "top_values": [
            {"value": "pro", "count": 12},
            {"value": "free", "count": 9},
            {"value": "team", "count": 6},
            {"value": "enterprise", "count": 2},
            {"value": "", "count": 1},
        ],
    }
    # mixed types, the most common first; numbers as ClickHouse prints them
    assert found["price"]["types"] == ["number", "string"]
    assert found["price"]["count"] == 29
    assert found["price"]["top_values"] == [
        {"value": "10", "count": 12},
        {"value": "99", "count": 9},
        {"value": "12.5", "count": 6},
        {"value": "13", "count": 2},
    ]
    # nested paths, dotted
    assert found["company.name"]["top_values"] == [{"value": "Acme", "count": 12}]
    assert found["company.size"]["types"] == ["number"] and found["company.size"]["count"] == 12
    assert found["flag"]["types"] == ["boolean"]
    assert found["flag"]["top_values"] == [
        {"value": "true", "count": 9},
        {"value": "false", "count": 1},
    ]
    assert found["tags"]["types"] == ["array"] and found["tags"]["count"] == 6
    assert found["a.b"]["top_values"] == [{"value": "1", "count": 2}]
    assert found["with space"]["top_values"] == [{"value": "v", "count": 2}]
    assert found["note"]["top_values"] == [{"value": "=1+1", "count": 5}]
    # keys the query client would escape in a bound parameter
    assert found["it's"]["top_values"] == [{"value": "x", "count": 6}]
    assert found["back\\slash`tick"]["top_values"] == [{"value": "y", "count": 2}]
    assert found["tab\tand\nnewline"]["top_values"] == [{"value": "z", "count": 2}]
    counts = [(-p["count"], p["property"]) for p in body["properties"]]
    assert counts == sorted(counts)


@pytest.mark.integration
async def test_properties_sample_the_latest_events(api: httpx.AsyncClient) -> None:
    body = (await api.get(f"/v1/events/{quote(BIG)}/properties", params=MAY)).json()
    assert body["sampled"] == catalog.SAMPLE_SIZE
    assert [p["property"] for p in body["properties"]] == ["n"]  # not the oldest ten's old_only
    values = body["properties"][0]["top_values"]
    assert len(values) == catalog.TOP_VALUES
    assert sum(v["count"] for v in values) < catalog.SAMPLE_SIZE


@pytest.mark.integration
async def test_properties_of_a_name_with_a_slash_and_of_an_unseen_name(
    api: httpx.AsyncClient,
) -> None:
    slashed = await api.get(f"/v1/events/{quote(SLASHED, safe='')}/properties", params=MAY)
    assert slashed.status_code == 200, slashed.text
    assert slashed.json()["event"] == SLASHED
    assert slashed.json()["properties"][0]["top_values"] == [{"value": "/home", "count": 1}]
    empty_key = await api.get(f"/v1/events/{quote(EMPTY_KEY)}/properties", params=MAY)
    assert empty_key.status_code == 200, empty_key.text
    assert [p["property"] for p in empty_key.json()["properties"]] == ["ok"]
    unseen = await api.get(f"/v1/events/{quote(UNSEEN)}/properties", params=MAY)
    assert unseen.status_code == 200
    assert unseen.json() == {"event": UNSEEN, "sampled": 0, "properties": []}
    outside = await api.get(f"/v1/events/{quote(VIEWED)}/properties", params={"last": "7d"})
    assert outside.json()["sampled"] == 0


# --- GET /v1/users/{id}/events as CSV -------------------------------------------------------

SEQUENCE_HEADER = [
    "timestamp",
    "received_at",
    "type",
    "event",
    "page_name",
    "message_id",
    "source",
    "protocol",
    "properties",
    "traits",
]


def expected_sequence(user_ids: set[str], event: str | None = None) -> list[EventRow]:
    rows = [
        row
        for row in SEQUENCE_ROWS
        if row.user_id in user_ids and (event is None or row.event == event)
    ]
    return sorted(rows, key=lambda row: (row.timestamp, row.message_id), reverse=True)


def assert_same_sequence(got: list[list[str]], expected: list[EventRow]) -> None:
    assert got[0] == SEQUENCE_HEADER
    assert len(got) - 1 == len(expected)
    for line, row in zip(got[1:], expected, strict=True):
        *texts, properties, traits = line
        assert texts == [
            iso_utc(row.timestamp),
            iso_utc(row.received_at),
            row.type,
            guarded(row.event),
            row.name,
            row.message_id,
            row.source,
            row.protocol,
        ]
        assert json.loads(properties) == row.properties
        assert json.loads(traits) == row.traits


@pytest.mark.integration
async def test_sequence_csv_has_every_event_of_the_user_and_its_merged_id(
    api: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC).date().isoformat()
    response = await api.get(f"/v1/users/{USER}/events", params={"format": "csv", "limit": "5"})
    after = datetime.now(UTC).date().isoformat()
    expected = expected_sequence({USER, ANONYMOUS})
    assert len(expected) == SEQUENCE_SIZE  # more than two pages of the CSV's reads
    assert_same_sequence(parse_csv(response), expected)
    # today's date, read around the request (it may cross midnight)
    assert response.headers["content-disposition"] in {
        f'attachment; filename="events_{USER}_{day}.csv"' for day in (before, after)
    }
    accepted = await api.get(f"/v1/users/{USER}/events", headers={"Accept": "text/csv"})
    assert accepted.content == response.content


@pytest.mark.integration
async def test_sequence_csv_honours_event_and_before(api: httpx.AsyncClient) -> None:
    played = await api.get(f"/v1/users/{USER}/events", params={"format": "csv", "event": "Played"})
    assert_same_sequence(parse_csv(played), expected_sequence({USER, ANONYMOUS}, "Played"))
    page = (await api.get(f"/v1/users/{USER}/events", params={"limit": "100"})).json()
    cursor = page["next_cursor"]
    rest = await api.get(f"/v1/users/{USER}/events", params={"format": "csv", "before": cursor})
    assert_same_sequence(parse_csv(rest), expected_sequence({USER, ANONYMOUS})[100:])


@pytest.mark.integration
async def test_sequence_json_is_unchanged(api: httpx.AsyncClient) -> None:
    response = await api.get(
        f"/v1/users/{USER}/events",
        params={"format": "json", "limit": "3"},
        headers={"Accept": "text/csv"},
    )
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    expected = expected_sequence({USER, ANONYMOUS})[:3]
    assert [e["messageId"] for e in body["events"]] == [row.message_id for row in expected]
    assert body["events"][0]["properties"] == expected[0].properties
    assert body["next_cursor"]


@pytest.mark.integration
async def test_sequence_csv_of_users_without_events(api: httpx.AsyncClient) -> None:
    empty = await api.get(f"/v1/users/{EMPTY_USER}/events", params={"format": "csv"})
    assert empty.content == (",".join(SEQUENCE_HEADER) + "\r\n").encode()
    other = await api.get(f"/v1/users/{OTHER_USER}/events", params={"format": "csv"})
    assert [line[5] for line in parse_csv(other)[1:]] == [f"{PREFIX}-bob0"]
    unknown = await api.get(f"/v1/users/{PREFIX}-nobody/events", params={"format": "csv"})
    assert unknown.status_code == 404


# --- bad input ------------------------------------------------------------------------------

CATALOG_PATHS = ("/v1/events/names", f"/v1/events/{quote(VIEWED)}/properties")


@pytest.mark.integration
@pytest.mark.parametrize("path", CATALOG_PATHS)
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-10", "to": "soon"}, "to"),
        ({"to": "2026-03-10"}, "from"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "2026-03-10", "last": "7d"}, "last"),
        ({"last": "7y"}, "last"),
        ({"last": "0d"}, "last"),
        ({"week_start": "someday"}, "week_start"),
        ({"from": "x" * 65}, "from"),
    ],
)
async def test_bad_time_range_names_the_parameter(
    api: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    response = await api.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False
    assert [e["field"] for e in body["errors"]] == [field]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"q": "x" * 256}, "q"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_bad_names_parameters(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/v1/events/names", params=params)
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.integration
async def test_bad_sequence_csv_parameters(api: httpx.AsyncClient) -> None:
    bad_cursor = await api.get(f"/v1/users/{USER}/events", params={"format": "csv", "before": "x"})
    assert bad_cursor.status_code == 400
    assert [e["field"] for e in bad_cursor.json()["errors"]] == ["before"]
    bad_format = await api.get(f"/v1/users/{USER}/events", params={"format": "xls"})
    assert [e["field"] for e in bad_format.json()["errors"]] == ["format"]
    long_name = await api.get(f"/v1/events/{'x' * 256}/properties")
    assert long_name.status_code == 400
    assert [e["field"] for e in long_name.json()["errors"]] == ["name"]


@pytest.mark.integration
@pytest.mark.parametrize(
    "path",
    [*CATALOG_PATHS, f"/v1/users/{USER}/events?format=csv"],
)
async def test_the_token_is_required(api: httpx.AsyncClient, path: str) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        response = await api.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert "text/csv" not in response.headers["content-type"]
