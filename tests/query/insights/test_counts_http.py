"""GET /v1/insights/counts through the query app on a real chDB and Valkey: the answers checked
against a plain-Python count of the same rows (tests/support/insights.py) in several zones,
every interval and measure, DST days included, with filters, breakdowns, several events and a
merged user; the range's edges; CSV parsed back; and a 400 naming each bad parameter.

The rows go into a database of their own in the session's chDB (chDB allows one data directory
per process), so no other test's events are counted and these rows are in no other test's."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from profilestore.writer import ProfileWriter
from query.zones import zone as service_zone
from tests.support import profiles
from tests.support.event_rows import own_database, query_api
from tests.support.insights import (
    CHECKOUT,
    DST_CHANGES,
    ODD_KEY,
    SIGNED_UP,
    VIEWED,
    Counts,
    Dataset,
    Row,
    assert_same_answer,
    assert_same_csv,
    build_dataset,
    csv_rows_of,
    edge_rows,
    insert_rows,
    local,
    midnight,
    parse_csv,
)

pytestmark = pytest.mark.integration

TOKEN = "insights-token"
PREFIX = f"ins-{uuid.uuid4().hex[:8]}"
DATA = build_dataset(PREFIX)
ONE_USER = f"{PREFIX}-u07"  # a user with no merged id
EDGE = "Edge Probe"  # only the edge rows have it
# A Paris day and its neighbours' edges: 29 March 2026 has 23 hours.
EDGE_START = local("2026-03-29T00:00", "Europe/Paris")
EDGE_END = local("2026-03-30T00:00", "Europe/Paris")
EDGES = edge_rows(PREFIX, (EDGE_START, EDGE_END), EDGE)
# One user on both sides of each of Lord Howe's 30-minute changes, within one local hour
# period: a unique-users count of that hour is 1.
LORD_HOWE = "Lord Howe Probe"
PROBES = [
    Row(f"{PREFIX}-lh{n}", f"{PREFIX}-u01", LORD_HOWE, moment, {})
    for n, moment in enumerate(
        (
            local("2026-04-05T01:10", "Australia/Lord_Howe"),  # +11:00, fold 0
            local("2026-04-05T01:40", "Australia/Lord_Howe").replace(fold=1),  # +10:30
            local("2026-10-04T01:10", "Australia/Lord_Howe"),  # +10:30
            local("2026-10-04T02:40", "Australia/Lord_Howe"),  # +11:00
        )
    )
]
PROBES = [replace(row, timestamp=row.timestamp.astimezone(UTC)) for row in PROBES]
ROWS: tuple[Row, ...] = DATA.rows + tuple(EDGES) + tuple(PROBES)


@dataclass
class Insights:
    http: httpx.AsyncClient
    data: Dataset

    async def get(self, params: list[tuple[str, str]], **headers: str) -> httpx.Response:
        query = httpx.QueryParams(tuple(params))
        return await self.http.get("/v1/insights/counts", params=query, headers=headers)

    async def answer(self, case: Counts) -> dict[str, Any]:
        response = await self.get(case.params())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def _merge(redis_url: str, user: str, anonymous_id: str) -> None:
    """The anonymous id's profile folded into the user's, as the worker does on identify."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        writer = ProfileWriter(client)
        t, today = profiles.T, profiles.TODAY
        await writer.apply_changes(
            {anonymous_id: [profiles.event(t)], ONE_USER: [profiles.event(t)]}, today=today
        )
        await writer.apply_changes(
            {user: [profiles.event(t + 1, kn=1, mg=anonymous_id)]}, today=today
        )
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
async def insights(valkey_url: str, chdb_client: Any) -> AsyncIterator[Insights]:
    with own_database(chdb_client, "insights") as clickhouse:
        insert_rows(clickhouse, ROWS)
        await _merge(valkey_url, DATA.merged_user, DATA.anonymous_id)
        async with query_api(valkey_url, clickhouse, TOKEN) as http:
            yield Insights(http, DATA)


def _around(change: datetime, tz: str, hours: int = 30) -> tuple[datetime, datetime]:
    """A range around a DST change that starts and ends mid-hour (partial first and last
    periods), as local times."""
    zone = service_zone(tz)
    start = change - timedelta(hours=hours, minutes=7, seconds=13)
    end = change + timedelta(hours=hours, minutes=41)
    return start.astimezone(zone), end.astimezone(zone)


# The DST changes each zone has in the rows' weeks (UTC needs none: Paris's are used).
CHANGES_OF = {
    "UTC": (DST_CHANGES[1], DST_CHANGES[4]),
    "Europe/Paris": (DST_CHANGES[1], DST_CHANGES[4]),
    "America/New_York": (DST_CHANGES[0], DST_CHANGES[5]),
    "Asia/Kolkata": (DST_CHANGES[1], DST_CHANGES[5]),
    "Australia/Lord_Howe": (DST_CHANGES[2], DST_CHANGES[3]),
    "America/Havana": (DST_CHANGES[0], DST_CHANGES[5]),  # 2 hours after New York's
}
TWO_EVENTS = (VIEWED, CHECKOUT)


def _cases() -> list[Any]:
    cases: list[Any] = []

    def add(case_id: str, case: Counts) -> None:
        cases.append(pytest.param(case, id=case_id))

    for tz, changes in CHANGES_OF.items():
        short = tz.rsplit("/", 1)[-1]
        for n, change in enumerate(changes):
            start, end = _around(change, tz)
            add(f"hour-{short}-{n}", Counts(start, end, tz, "hour", events=TWO_EVENTS))
        # days of both windows, whole local days, with the empty months between them zero-filled
        add(
            f"day-{short}",
            Counts(midnight(date(2026, 2, 27), tz), midnight(date(2026, 11, 5), tz), tz, "day"),
        )
        # a partial first and last day
        start, end = local("2026-03-27T13:37", tz), local("2026-04-02T09:05", tz)
        add(f"day-partial-{short}", Counts(start, end, tz, "day", events=(SIGNED_UP,)))
        for week_start in ("monday", "sunday", "wednesday"):
            add(
                f"week-{week_start}-{short}",
                Counts(
                    local("2026-09-29T06:00", tz),
                    local("2026-11-06T00:00", tz),
                    tz,
                    "week",
                    week_start=week_start,
                    events=TWO_EVENTS,
                ),
            )
        add(
            f"month-{short}",
            Counts(local("2026-02-26T12:00", tz), midnight(date(2026, 11, 6), tz), tz, "month"),
        )
        start, end = midnight(date(2026, 10, 20), tz), midnight(date(2026, 11, 4), tz)
        for measure in ("users", "per_user"):
            add(f"{measure}-day-{short}", Counts(start, end, tz, "day", measure, events=TWO_EVENTS))
        add(
            f"users-week-{short}",
            Counts(start, end, tz, "week", "users", week_start="sunday"),
        )
        start, end = _around(changes[1], tz, hours=20)
        add(f"per_user-hour-{short}", Counts(start, end, tz, "hour", "per_user"))

    paris = "Europe/Paris"
    spring = Counts(midnight(date(2026, 3, 1), paris), midnight(date(2026, 4, 9), paris), paris)
    filters = {
        "eq": ("plan:eq:pro",),
        "eq-colons": ("note:eq:x:y:z",),
        "eq-number": ("price:eq:150",),  # 150 and "150"
        "eq-float": ("price:eq:261.75",),
        "eq-bool": ("flag:eq:true",),
        "eq-nested": ("company.name:eq:Initech: West",),
        "neq": ("plan:neq:pro",),  # not set included
        "eq-empty": ("note:eq:",),  # an empty text, not an absent note
        "neq-empty": ("note:neq:",),
        "contains": ("company.name:contains:acme",),
        "contains-non-ascii": ("company.name:contains:zür",),
        "contains-colon": ("note:contains:A:B",),
        "gt": ("price:gt:100",),  # numeric strings included, "free" not
        "lt": ("price:lt:20.5",),
        "gt-negative": ("price:gt:-1",),
        "lt-nested": ("company.size:lt:2500",),
        "set": ("plan:set",),  # null is not set
        "not_set": ("plan:not_set",),
        "not_set-nested": ("company.name:not_set",),
        "and": ("plan:eq:pro", "price:gt:100", "flag:set"),
    }
    for name, where in filters.items():
        add(f"where-{name}", replace(spring, where=where, events=TWO_EVENTS))
    add("where-all-events", replace(spring, where=("price:lt:50",)))
    add("where-users", replace(spring, where=("price:gt:100",), measure="users"))

    add("breakdown-plan-top2", replace(spring, breakdown="plan", breakdown_limit=2))
    add("breakdown-plan-all", replace(spring, breakdown="plan", events=TWO_EVENTS))
    add("breakdown-not-set-in-top", replace(spring, breakdown="plan", breakdown_limit=3))
    add(
        "breakdown-nested-filtered",
        replace(
            spring,
            breakdown="company.name",
            breakdown_limit=3,
            where=("price:gt:50",),
            events=(CHECKOUT, VIEWED, SIGNED_UP),
        ),
    )
    add("breakdown-number", replace(spring, breakdown="qty", interval="week", events=TWO_EVENTS))
    add("breakdown-bool", replace(spring, breakdown="flag"))
    add(
        "breakdown-per_user",
        replace(spring, breakdown="plan", breakdown_limit=2, measure="per_user", events=TWO_EVENTS),
    )
    add(
        "breakdown-hour-dst",
        Counts(
            *_around(DST_CHANGES[4], paris, hours=10),
            paris,
            "hour",
            breakdown="plan",
            breakdown_limit=1,
            events=(VIEWED,),
        ),
    )

    add("events-in-given-order", replace(spring, events=(SIGNED_UP, CHECKOUT, VIEWED)))
    add("event-never-sent", replace(spring, events=("Never Sent", VIEWED)))

    autumn = Counts(
        midnight(date(2026, 9, 28), paris), midnight(date(2026, 11, 6), paris), paris, "week"
    )
    ids = frozenset({DATA.merged_user, DATA.anonymous_id})
    for who in ("merged_user", "anonymous_id"):
        user = getattr(DATA, who)
        add(f"user-{who}", replace(autumn, user=user, user_ids=ids))
    add(
        "user-filter-users",
        replace(
            autumn,
            user=DATA.merged_user,
            user_ids=ids,
            interval="day",
            measure="users",
            where=("plan:set",),
        ),
    )
    add("user-one-id", replace(autumn, user=ONE_USER, user_ids=frozenset({ONE_USER})))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES)
async def test_counts_equal_a_plain_count_of_the_rows(insights: Insights, case: Counts) -> None:
    expected = case.answer(ROWS)
    assert any(s["total"] for s in expected["series"]) or case.events == ("Never Sent",)
    assert_same_answer(await insights.answer(case), expected)


async def test_the_oracle_sees_what_the_cases_are_meant_to_test() -> None:
    """The cases are not vacuous: filters select some rows and leave some, breakdowns have an
    "other" and a "(not set)", DST days have 23 and 25 hours."""
    spring = Counts(local("2026-03-01T00:00", "UTC"), local("2026-04-09T00:00", "UTC"))
    everything = len(spring.selected(ROWS))
    for where in ("price:gt:100", "price:eq:150", "plan:neq:pro", "note:eq:x:y:z", "flag:eq:true"):
        assert 0 < len(replace(spring, where=(where,)).selected(ROWS)) < everything, where
    assert replace(spring, where=("company.name:contains:zür",)).selected(ROWS)
    numeric_strings = replace(spring, where=("price:gt:0",)).selected(ROWS)
    assert any(isinstance(r.properties["price"], str) for r in numeric_strings)
    top2 = replace(spring, breakdown="plan", breakdown_limit=2).answer(ROWS)
    assert [s["breakdown_value"] for s in top2["series"]] == ["free", "pro", None]
    assert top2["series"][-1]["other"] is True
    top3 = replace(spring, breakdown="plan", breakdown_limit=3).answer(ROWS)
    assert None in [s["breakdown_value"] for s in top3["series"] if not s["other"]]


@pytest.mark.parametrize(
    "extra",
    [[], [("where", "plan:eq:pro")], [("breakdown", "plan")]],
    ids=["counts-projection", "filtered-rows", "breakdown-rows"],
)
async def test_rows_at_from_count_and_rows_at_to_do_not(
    insights: Insights, extra: list[tuple[str, str]]
) -> None:
    tz = "Europe/Paris"
    for params in (
        [("from", EDGE_START.isoformat()), ("to", EDGE_END.isoformat())],
        [("from", "2026-03-29"), ("to", "2026-03-29")],  # a date `to` includes its day
        [("from", "2026-03-29T00:00:00"), ("to", "2026-03-30T00:00:00")],  # local in tz
        [("from", "2026-03-28T23:00:00Z"), ("to", "2026-03-29T22:00:00+00:00")],
    ):
        response = await insights.get(
            [*params, *extra, ("tz", tz), ("event", EDGE), ("interval", "hour")]
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["from"], body["to"]) == (
            "2026-03-29T00:00:00+01:00",
            "2026-03-30T00:00:00+02:00",
        )
        [series] = body["series"]
        # at from and 1 ms after; 1 ms before to; not 1 ms before from, nor at or after to
        assert series["total"] == 3, params
        assert len(body["periods"]) == 23  # the spring-forward day
        assert series["values"][0] == 2 and series["values"][-1] == 1
        assert body["periods"][:3] == [
            "2026-03-29T00:00:00+01:00",
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
        ]


async def test_a_fall_back_day_has_25_hours_with_two_2_oclocks(insights: Insights) -> None:
    case = Counts(
        midnight(date(2026, 10, 25), "Europe/Paris"),
        midnight(date(2026, 10, 26), "Europe/Paris"),
        "Europe/Paris",
        "hour",
    )
    body = await insights.answer(case)
    assert len(body["periods"]) == 25
    assert body["periods"][2:4] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]
    assert_same_answer(body, case.answer(ROWS))
    assert sum(body["series"][0]["values"][2:4]) > 0


@pytest.mark.parametrize(
    ("day", "hour"),
    [("2026-04-05", "2026-04-05T01:00:00+11:00"), ("2026-10-04", "2026-10-04T01:00:00+10:30")],
)
async def test_lord_howe_hours_across_a_30_minute_change_count_a_user_once(
    insights: Insights, day: str, hour: str
) -> None:
    tz = "Australia/Lord_Howe"
    case = Counts(
        midnight(date.fromisoformat(day), tz),
        midnight(date.fromisoformat(day) + timedelta(days=1), tz),
        tz,
        "hour",
        "users",
        events=(LORD_HOWE,),
    )
    expected = case.answer(ROWS)
    assert expected["series"][0]["values"][expected["periods"].index(hour)] == 1
    if day == "2026-10-04":  # no hour starts at 02:00 that day: 02:30-02:59 ends the 01:00 hour
        assert not [label for label in expected["periods"] if "T02:" in label]
    assert_same_answer(await insights.answer(case), expected)
    events = await insights.answer(replace(case, measure="events"))
    assert events["series"][0]["values"][events["periods"].index(hour)] == 2


async def test_partial_periods_count_only_the_rows_in_range(insights: Insights) -> None:
    tz = "America/New_York"
    whole = Counts(midnight(date(2026, 3, 2), tz), midnight(date(2026, 3, 16), tz), tz, "week")
    part = replace(whole, start=local("2026-03-04T10:00", tz), end=local("2026-03-11T15:30", tz))
    whole_body, part_body = await insights.answer(whole), await insights.answer(part)
    assert part_body["periods"] == ["2026-03-02", "2026-03-09"] == whole_body["periods"]
    assert_same_answer(part_body, part.answer(ROWS))
    for cut, full in zip(
        part_body["series"][0]["values"], whole_body["series"][0]["values"], strict=True
    ):
        assert 0 < cut < full


async def test_the_default_range_is_the_last_30_days(insights: Insights) -> None:
    response = await insights.get([("tz", "Asia/Kolkata")])
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["periods"]) == 30 and body["interval"] == "day"
    today = datetime.now(service_zone("Asia/Kolkata")).date()
    assert body["periods"][-1] in {today.isoformat(), (today - timedelta(days=1)).isoformat()}
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert start == midnight(date.fromisoformat(body["periods"][0]), "Asia/Kolkata")
    assert_same_answer(body, Counts(start, end, "Asia/Kolkata").answer(ROWS))


@pytest.mark.parametrize(
    ("last", "interval", "count"),
    [("24h", "hour", 24), ("30d", "day", 30), ("12w", "week", 12), ("6m", "month", 6)],
)
async def test_last_n_is_the_current_period_and_the_n_1_before(
    insights: Insights, last: str, interval: str, count: int
) -> None:
    tz = "Australia/Lord_Howe"
    response = await insights.get(
        [("last", last), ("interval", interval), ("tz", tz), ("week_start", "sunday")]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["periods"]) == count
    start = datetime.fromisoformat(body["from"])
    if interval == "week":
        assert date.fromisoformat(body["periods"][0]).isoweekday() == 7
    if interval == "month":
        assert body["periods"][0].endswith("-01")
    assert datetime.fromisoformat(body["to"]) <= datetime.now(UTC) + timedelta(seconds=1)
    assert_same_answer(
        body,
        Counts(start, datetime.fromisoformat(body["to"]), tz, interval, week_start="sunday").answer(
            ROWS
        ),
    )


# --- CSV --------------------------------------------------------------------------------------

_FILENAME = re.compile(r'attachment; filename="(insights_[A-Za-z0-9._-]+\.csv)"')


@pytest.mark.parametrize(
    "case",
    [
        Counts(
            midnight(date(2026, 3, 1), "Europe/Paris"),
            midnight(date(2026, 4, 9), "Europe/Paris"),
            "Europe/Paris",
            events=(VIEWED, CHECKOUT),
            breakdown="note",  # values that start a formula, and "-5", which is a number
            breakdown_limit=50,
            where=("price:gt:10",),
        ),
        Counts(
            *_around(DST_CHANGES[5], "America/New_York"),
            "America/New_York",
            "hour",
            "per_user",
        ),
        Counts(
            midnight(date(2026, 9, 28), "Asia/Kolkata"),
            midnight(date(2026, 11, 6), "Asia/Kolkata"),
            "Asia/Kolkata",
            "week",
            "users",
            breakdown="plan",
            breakdown_limit=2,
        ),
    ],
    ids=["breakdown-formulas", "per_user-hour", "users-other"],
)
async def test_csv_parsed_back_equals_the_json_answer(insights: Insights, case: Counts) -> None:
    answer = await insights.answer(case)
    expected = csv_rows_of(answer)
    assert_same_csv(csv_rows_of(case.answer(ROWS)), expected)
    by_format = await insights.get([*case.params(), ("format", "csv")])
    by_accept = await insights.get(case.params(), accept="text/csv")
    for response in (by_format, by_accept):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert _FILENAME.fullmatch(response.headers["content-disposition"])
        assert_same_csv(parse_csv(response.text), expected)
    assert by_format.content == by_accept.content
    if case.breakdown == "note":
        cells = {row[1] for row in parse_csv(by_format.text)}
        assert '\'=HYPERLINK("http://x")' in cells and "-5" in cells and "'+1 555" in cells


async def test_csv_of_no_rows_has_its_header(insights: Insights) -> None:
    case = Counts(
        midnight(date(2026, 6, 1), "UTC"), midnight(date(2026, 6, 3), "UTC"), events=("Nope",)
    )
    response = await insights.get([*case.params(), ("format", "csv")])
    assert response.status_code == 200, response.text
    assert parse_csv(response.text) == [
        ["event", "breakdown", "period", "events"],
        ["Nope", "", "2026-06-01", "0"],
        ["Nope", "", "2026-06-02", "0"],
    ]


# --- bad parameters ---------------------------------------------------------------------------

OK = [("from", "2026-03-01"), ("to", "2026-03-31")]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ([*OK, *[("event", f"E{n}") for n in range(11)]], "event"),
        ([*OK, ("event", "")], "event"),
        ([*OK, ("event", "x" * 256)], "event"),
        ([*OK, ("interval", "minute")], "interval"),
        ([*OK, ("interval", "")], "interval"),
        ([*OK, ("measure", "sessions")], "measure"),
        ([("from", "2026-13-01")], "from"),
        ([("from", "yesterday")], "from"),
        ([("from", "2026-03-01T25:00")], "from"),
        ([("from", "2026-03-01"), ("to", "next week")], "to"),
        ([("to", "2026-03-01")], "from"),
        ([*OK, ("last", "7d")], "last"),
        ([("from", "2026-03-02"), ("to", "2026-03-01")], "to"),
        ([("from", "2026-03-01T10:00:00Z"), ("to", "2026-03-01T10:00:00Z")], "to"),
        ([("from", "2026-03-01T12:00:00+01:00"), ("to", "2026-03-01T11:00:00Z")], "to"),
        ([("last", "0d")], "last"),
        ([("last", "30x")], "last"),
        ([("last", "d")], "last"),
        ([("last", "1.5d")], "last"),
        ([("last", "-1d")], "last"),
        ([("last", "30 d")], "last"),
        ([("from", "2026-01-01"), ("to", "2026-12-01"), ("interval", "hour")], "interval"),
        ([("last", "2001d")], "interval"),
        ([("last", "99999m"), ("interval", "month")], "last"),  # before 1970
        ([*OK, ("tz", "Mars/Olympus")], "tz"),
        ([*OK, ("tz", "")], "tz"),
        ([*OK, ("week_start", "funday")], "week_start"),
        ([*OK, ("where", "plan:like:pro")], "where"),
        ([*OK, ("where", "plan")], "where"),
        ([*OK, ("where", "plan:eq")], "where"),
        ([*OK, ("where", ":eq:pro")], "where"),
        ([*OK, ("where", "price:gt:abc")], "where"),
        ([*OK, ("where", "price:lt:")], "where"),
        ([*OK, *[("where", f"p{n}:set") for n in range(11)]], "where"),
        ([*OK, ("breakdown", "")], "breakdown"),
        ([*OK, ("breakdown", "x" * 256)], "breakdown"),
        ([*OK, ("breakdown", "plan"), ("breakdown_limit", "0")], "breakdown_limit"),
        ([*OK, ("breakdown", "plan"), ("breakdown_limit", "51")], "breakdown_limit"),
        ([*OK, ("breakdown", "plan"), ("breakdown_limit", "ten")], "breakdown_limit"),
        ([*OK, ("format", "xml")], "format"),
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(
    insights: Insights, params: list[tuple[str, str]], field: str
) -> None:
    response = await insights.get(params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["success"] is False and body["code"] == "bad_request"
    assert body["message"]
    assert [error["field"].split(".")[0] for error in body["errors"]] == [field], body
    assert all(error["reason"] for error in body["errors"])


async def test_the_most_of_each_parameter_is_accepted(insights: Insights) -> None:
    response = await insights.get(
        [
            ("from", "2026-01-01"),
            ("to", "2026-03-24"),  # 83 days: 1,992 hours
            ("interval", "hour"),
            *[("event", f"E{n}" + "x" * 250) for n in range(10)],
            *[("where", f"p{n}:not_set") for n in range(10)],
            ("breakdown", "b" * 255),
            ("breakdown_limit", "50"),
        ]
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["periods"]) == 1992


async def test_an_unknown_user_is_a_404(insights: Insights) -> None:
    response = await insights.get([*OK, ("user", f"{PREFIX}-nobody")])
    assert response.status_code == 404, response.text
    assert response.json()["success"] is False


async def test_the_admin_token_is_required(insights: Insights) -> None:
    response = await insights.http.get(
        "/v1/insights/counts",
        params=httpx.QueryParams(tuple(OK)),
        headers={"Authorization": "Bearer wrong"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        *("my key", "a`b", "a'b", 'a"b', "a.b.c.d", "é", "1", "company", "tags", "price.x"),
        *("a..b", ".a", "a.", "`", "\\", "a;DROP TABLE events", "x" * 255, ODD_KEY),
    ],
)
async def test_odd_property_paths_answer_or_are_refused_never_fail(
    insights: Insights, path: str
) -> None:
    """Paths are ClickHouse identifiers bound as parameters: whatever an analyst types is
    answered (nothing matches a path no event has) or refused with a 400, never a 500."""
    spring = Counts(midnight(date(2026, 3, 1), "UTC"), midnight(date(2026, 3, 8), "UTC"))
    cases = [
        ("where", replace(spring, where=(f"{path}:eq:x",))),
        ("where", replace(spring, where=(f"{path}:set",))),
        ("breakdown", replace(spring, breakdown=path)),
    ]
    for field, case in cases:
        response = await insights.get(case.params())
        assert response.status_code in (200, 400), (case, response.text)
        if response.status_code == 400:
            assert response.json()["errors"][0]["field"] == field
        elif path not in ("company", "tags"):  # an object or an array: what it prints is open
            assert_same_answer(response.json(), case.answer(ROWS))


async def test_rows_fall_in_the_periods_the_answer_names_whatever_clickhouses_zone_data(
    valkey_url: str, chdb_client: Any
) -> None:
    """The zone's rules are the service's (query/zones.py), not ClickHouse's own copy: from
    November 2026 chDB 26.9 puts America/Winnipeg an hour behind tzdata 2026f, and the rows
    just after local midnight used to land on the day before the one the answer names (and a
    row in no named period was a 500). Samoa skipped Friday 30 December 2011: its week from
    Friday is named by the 31st."""
    winnipeg = service_zone("America/Winnipeg")
    moments = [datetime(2026, 12, d, 5, 30, tzinfo=UTC) for d in (1, 2, 3)] + [
        datetime(2026, 12, 2, 18, tzinfo=UTC)
    ]
    apia = [datetime(2011, 12, 30, 12, tzinfo=UTC), datetime(2012, 1, 3, 12, tzinfo=UTC)]
    rows = [Row(f"zones-{i}", f"zones-u{i % 2}", "Zones", m, {}) for i, m in enumerate(moments)]
    rows += [Row(f"apia-{i}", "apia-u", "Apia", m, {}) for i, m in enumerate(apia)]
    with own_database(chdb_client, "zones") as clickhouse:
        insert_rows(clickhouse, rows)
        async with query_api(valkey_url, clickhouse, TOKEN) as http:
            expected_days: dict[str, int] = {}
            users_of: dict[str, set[str]] = {}
            for row in rows[: len(moments)]:
                day = row.timestamp.astimezone(winnipeg).date().isoformat()
                expected_days[day] = expected_days.get(day, 0) + 1
                users_of.setdefault(day, set()).add(row.user_id)
            expected_users = {day: len(users) for day, users in users_of.items()}
            for extra in ([], [("measure", "users")], [("where", "x:not_set")]):
                params = [
                    ("event", "Zones"),
                    ("tz", "America/Winnipeg"),
                    ("from", "2026-11-30"),
                    ("to", "2026-12-03"),
                    *extra,
                ]
                response = await http.get(
                    "/v1/insights/counts", params=httpx.QueryParams(tuple(params))
                )
                assert response.status_code == 200, response.text
                body = response.json()
                [series] = body["series"]
                got = dict(zip(body["periods"], series["values"], strict=True))
                wanted = expected_users if extra == [("measure", "users")] else expected_days
                assert {d: n for d, n in got.items() if n} == wanted, extra
            response = await http.get(
                "/v1/insights/counts",
                params=httpx.QueryParams(
                    (
                        ("event", "Apia"),
                        ("tz", "Pacific/Apia"),
                        ("interval", "week"),
                        ("week_start", "friday"),
                        ("from", "2011-12-24"),
                        ("to", "2012-01-06"),
                    )
                ),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["periods"] == ["2011-12-23", "2011-12-31"]
            assert body["series"][0]["values"] == [0, 2]
