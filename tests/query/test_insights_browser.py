"""The dashboard's Insights page and the Events tab's event picker in Chromium against the real
embedded stack: events sent through ingest on several days, then the page's table checked
against the API's answer for the query in the URL and against the sent events, the catalog's
autocomplete, a filter and a breakdown in the legend, bars, the CSV download, reload, back, a
shared link, a refused query, and the catalog's names in a user's Events tab."""

from __future__ import annotations

import csv
import io
import re
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser_pages import PageOpener, screenshotted_pages, sign_in
from tests.support.polling import eventually
from tests.support.stack import ADMIN_TOKEN, RunningStack

pytestmark = pytest.mark.e2e

ZONE = "Europe/Paris"  # the browser's zone: the page's default tz
DAYS_AGO = (1, 2, 3, 5)  # at 12:00 UTC: the same date in Paris
PLANS = ("pro", "free", None)  # by the event's index within its day; None: no plan property
NOT_SET = "(not set)"
SEP = " \u00b7 "  # "Viewed · pro"


@dataclass(frozen=True)
class Sent:
    user: str | None
    event: str
    timestamp: datetime
    properties: dict[str, Any]


@dataclass(frozen=True)
class Seeded:
    suffix: str
    viewed: str
    bought: str
    elsewhere: str  # sent by another user only
    first_user: str
    rows: list[Sent]

    def per_day(self, event: str) -> Counter[str]:
        zone = ZoneInfo(ZONE)
        return Counter(
            r.timestamp.astimezone(zone).date().isoformat() for r in self.rows if r.event == event
        )


def _seed(ingest: httpx.Client, query: httpx.Client) -> Seeded:
    suffix = uuid.uuid4().hex[:8]
    viewed, bought, elsewhere = f"Viewed {suffix}", f"Bought {suffix}", f"Shared {suffix}"
    users = [f"insights-{suffix}-{i}" for i in range(3)]
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    rows: list[Sent] = []
    for days_ago in DAYS_AGO:
        day = noon - timedelta(days=days_ago)
        for n in range(days_ago + 1):
            properties: dict[str, Any] = {"price": 10 * n + days_ago}
            plan = PLANS[n % len(PLANS)]
            if plan is not None:
                properties["plan"] = plan
            rows.append(Sent(users[n % 3], viewed, day + timedelta(minutes=n), properties))
        if days_ago % 2:
            rows.append(Sent(users[0], bought, day, {"plan": "pro", "price": 99}))
    rows.append(Sent(f"elsewhere-{suffix}", elsewhere, noon - timedelta(days=1), {"n": 1}))
    batch = [
        {
            "type": "track",
            "userId": r.user,
            "event": r.event,
            "timestamp": r.timestamp.isoformat().replace("+00:00", "Z"),
            "properties": r.properties,
        }
        for r in rows
    ]
    ingest.post("/v1/batch", json={"batch": batch}).raise_for_status()
    wanted = Counter(r.event for r in rows)

    def stored() -> bool:
        answer = query.get(
            "/v1/insights/counts",
            params=httpx.QueryParams([*(("event", name) for name in wanted), ("last", "30d")]),
        ).json()
        return [s["total"] for s in answer["series"]] == list(wanted.values())

    eventually(stored, timeout=60)
    return Seeded(suffix, viewed, bought, elsewhere, users[0], rows)


@pytest.fixture(scope="module")
def seeded(ingest: httpx.Client, query: httpx.Client) -> Seeded:
    return _seed(ingest, query)


@pytest.fixture
def pages(browser: Any, request: pytest.FixtureRequest) -> Iterator[PageOpener]:
    def failed() -> bool:
        report = getattr(request.node, "report_call", None)
        return report is not None and bool(report.failed)

    with screenshotted_pages(browser, request.node.name, failed) as open_page:
        yield open_page


# --- what the page shows, and what the API answers for the query in its URL -----------------


def query_in_url(page: Any) -> list[tuple[str, str]]:
    """The API parameters of the page's hash (#/insights?...), without the page's own `chart`."""
    fragment = urllib.parse.urlsplit(page.url).fragment
    assert fragment.startswith("/insights?"), page.url
    pairs = urllib.parse.parse_qsl(fragment.split("?", 1)[1], keep_blank_values=True)
    return [(key, value) for key, value in pairs if key != "chart"]


def shown(page: Any) -> dict[str, Any]:
    """The table: series labels, periods, each series' values and totals (as numbers)."""
    table = page.get_by_role("table", name="Counts by period")
    labels = table.locator("thead th").all_text_contents()[1:]
    rows = table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.period,"
        " ...[...r.cells].slice(1).map(c => c.textContent.trim())])"
    )
    totals = table.locator("tfoot td").all_text_contents()
    as_number = lambda text: float(text.replace(",", ""))  # noqa: E731 - en-US grouping
    return {
        "labels": labels,
        "periods": [row[0] for row in rows],
        "values": [[as_number(row[1 + i]) for row in rows] for i in range(len(labels))],
        "totals": [as_number(t) for t in totals],
    }


def expected(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "labels": [s["label"] for s in answer["series"]],
        "periods": answer["periods"],
        "values": [[float(v) for v in s["values"]] for s in answer["series"]],
        "totals": [float(s["total"]) for s in answer["series"]],
    }


def answer_shown(page: Any, query: httpx.Client) -> dict[str, Any]:
    """Waits until the page's table is the API's answer to the query in the page's URL (the
    table of the previous query may still be on screen for a moment), and returns the answer."""
    last: dict[str, Any] = {}

    def same() -> bool:
        response = query.get(
            "/v1/insights/counts", params=urllib.parse.urlencode(query_in_url(page))
        )
        response.raise_for_status()
        last["answer"] = response.json()
        table = page.get_by_role("table", name="Counts by period")
        return table.count() == 1 and shown(page) == expected(last["answer"])

    eventually(same, timeout=20, interval=0.2)
    return last["answer"]


def legend(page: Any) -> list[str]:
    """The legend's series labels (each item is "<label> (<total>)")."""
    items = page.get_by_role("list", name="Legend").get_by_role("listitem").all_text_contents()
    return [re.sub(r"\s*\([^()]*\)$", "", item) for item in items]


def choose_event(page: Any, name: str) -> None:
    page.get_by_label("Events").fill(name)
    page.get_by_label("Events").press("Enter")
    page.get_by_role("button", name=f"Remove event {name}").wait_for()


# --- the tests ------------------------------------------------------------------------------


def test_an_analyst_charts_filters_breaks_down_downloads_and_reloads(
    running_stack: RunningStack, query: httpx.Client, seeded: Seeded, pages: PageOpener
) -> None:
    page = pages("analyst", timezone=ZONE)
    sign_in(page, running_stack.query_url)
    page.get_by_role("link", name="Insights", exact=True).click()
    page.get_by_role("heading", name="Insights").wait_for()
    assert page.get_by_label("Time zone").input_value() == ZONE  # the browser's zone
    answer_shown(page, query)  # all events, the last 30 days, by day

    # the event input autocompletes from the catalog
    page.get_by_label("Events").fill(seeded.suffix)
    suggestions = page.locator("#insights-event-names option")
    expect(suggestions).to_have_count(3)
    assert set(suggestions.evaluate_all("os => os.map(o => o.value)")) == {
        seeded.viewed,
        seeded.bought,
        seeded.elsewhere,
    }

    # one event by day: the API's numbers, and the sent events' per Paris date
    choose_event(page, seeded.viewed)
    page.get_by_label("Interval").select_option("day")
    answer = answer_shown(page, query)
    assert ("tz", ZONE) in query_in_url(page) and ("event", seeded.viewed) in query_in_url(page)
    by_day = dict(zip(answer["periods"], answer["series"][0]["values"], strict=True))
    per_day = seeded.per_day(seeded.viewed)
    assert len(by_day) == 30
    assert {day: n for day, n in by_day.items() if n} == dict(per_day)
    assert shown(page)["totals"] == [sum(per_day.values())]

    # by week, then unique users (the total is users over the range, not a sum)
    page.get_by_label("Interval").select_option("week")
    answer_shown(page, query)
    page.get_by_label("Measure").select_option("users")
    answer = answer_shown(page, query)
    assert answer["series"][0]["total"] == 3
    page.get_by_label("Measure").select_option("events")
    page.get_by_label("Interval").select_option("day")
    answer_shown(page, query)

    # a second event, a filter on a property listed from the first event's properties, and a
    # breakdown: the legend names each breakdown value
    choose_event(page, seeded.bought)
    answer_shown(page, query)
    properties = page.locator("#insights-properties option")
    expect(properties).to_have_count(2)
    assert set(properties.evaluate_all("os => os.map(o => o.value)")) == {"plan", "price"}
    page.get_by_label("Filter property").fill("price")
    page.get_by_label("Operator").select_option("gt")
    page.get_by_label("Filter value").fill("15")
    page.get_by_label("Break down by").fill("plan")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"where=price%3Agt%3A15&breakdown=plan"))
    answer = answer_shown(page, query)
    kept = Counter(
        (r.event, r.properties.get("plan", NOT_SET))
        for r in seeded.rows
        if r.event in (seeded.viewed, seeded.bought) and r.properties["price"] > 15
    )
    labels = legend(page)
    assert labels == [s["label"] for s in answer["series"]]
    assert {f"{event}{SEP}{plan}" for event, plan in kept} <= set(labels)
    totals = dict(zip(labels, shown(page)["totals"], strict=True))
    assert {f"{event}{SEP}{plan}": n for (event, plan), n in kept.items()} == {
        label: n for label, n in totals.items() if n
    }

    # bars: one per series and period
    page.get_by_label("Chart type").select_option("bar")
    expect(page).to_have_url(re.compile(r"chart=bar"))
    bars = page.locator("svg.insights-chart rect.bar")
    expect(bars).to_have_count(len(answer["series"]) * len(answer["periods"]))

    # the CSV: the same numbers, under the server's filename
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert re.fullmatch(r"insights_[A-Za-z0-9._-]+\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8", newline="") as file:
        table = list(csv.reader(io.StringIO(file.read())))
    assert table[0] == ["event", "breakdown", "period", "events"]
    csv_totals: Counter[tuple[str, str]] = Counter()
    for event, value, _period, count in table[1:]:
        csv_totals[(event, value)] += int(count)
    assert len(table) - 1 == len(answer["series"]) * len(answer["periods"])
    assert {k: n for k, n in csv_totals.items() if n} == dict(kept)

    # a reload shows the same query: the controls and the table
    before = shown(page)
    page.reload()
    answer_shown(page, query)
    assert shown(page) == before
    for name in (seeded.viewed, seeded.bought):
        assert page.get_by_role("button", name=f"Remove event {name}").is_visible()
    assert page.get_by_label("Filter property").input_value() == "price"
    assert page.get_by_label("Operator").input_value() == "gt"
    assert page.get_by_label("Filter value").input_value() == "15"
    assert page.get_by_label("Break down by").input_value() == "plan"
    assert page.get_by_label("Chart type").input_value() == "bar"
    expect(bars).to_have_count(len(answer["series"]) * len(answer["periods"]))

    # back: the line chart of the same query
    page.go_back()
    expect(page.get_by_label("Chart type")).to_have_value("line")
    expect(page.locator("svg.insights-chart polyline.line")).to_have_count(len(answer["series"]))
    assert "chart=line" in page.url

    # a refused query: the server's reason next to the filter, the parameter named above
    page.get_by_label("Filter value").fill("lots")
    page.get_by_role("button", name="Show").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("where:")
    expect(page.locator('.field[data-field="where"] > .error')).to_be_visible()
    assert page.errors == []


def test_a_shared_link_the_empty_state_and_the_events_tab_picker(
    running_stack: RunningStack, seeded: Seeded, pages: PageOpener
) -> None:
    base = running_stack.query_url
    shared = {"event": seeded.viewed, "interval": "day", "last": "7d", "tz": "UTC", "chart": "bar"}
    link = f"{base}/dashboard/#/insights?{urllib.parse.urlencode(shared)}"
    # another tab (no token yet): signing in opens the link
    page = pages("shared")
    page.goto(link)
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Insights").wait_for()
    expect(page.get_by_label("Time zone")).to_have_value("UTC")
    expect(page.get_by_label("Range")).to_have_value("7d")
    expect(page.get_by_label("Chart type")).to_have_value("bar")
    table = page.get_by_role("table", name="Counts by period")
    expect(table.locator("tbody tr")).to_have_count(7)
    zone = ZoneInfo("UTC")
    per_day = Counter(
        r.timestamp.astimezone(zone).date().isoformat()
        for r in seeded.rows
        if r.event == seeded.viewed
    )
    expect(table.locator("tfoot td")).to_have_text([str(sum(per_day.values()))])

    # the keyboard alone: remove the event with its chip's button, type another, Enter
    page.get_by_role("button", name=f"Remove event {seeded.viewed}").focus()
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile("event="))
    expect(page.get_by_label("Events")).to_be_focused()
    page.keyboard.type(seeded.bought)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("event=Bought"))
    expect(table.locator("tfoot td")).to_have_text(
        [str(sum(r.event == seeded.bought for r in seeded.rows))]
    )

    # at a phone's width nothing overflows (the table scrolls in its own box)
    phone = pages("phone", width=390, height=844)
    phone.goto(link)
    phone.get_by_label("Admin token").fill(ADMIN_TOKEN)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("table", name="Counts by period").locator("tbody tr")).to_have_count(7)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390

    # nothing matches: said so
    page.goto(f"{base}/dashboard/#/insights?event=nothing-{seeded.suffix}")
    page.get_by_text("No events match this query in this range.").wait_for()

    # a user's Events tab: the picker lists the catalog's names, not only the user's own
    page.goto(f"{base}/dashboard/#/users/{seeded.first_user}/events")
    picker = page.get_by_label("Event", exact=True)
    own = picker.locator("optgroup", has=page.locator(f'option[value="{seeded.viewed}"]'))
    expect(own).to_have_attribute("label", "This user's events")
    others = picker.locator("optgroup", has=page.locator(f'option[value="{seeded.elsewhere}"]'))
    expect(others).to_have_attribute("label", re.compile("^Other events"))
    names = page.locator("#event-names option").evaluate_all("os => os.map(o => o.value)")
    assert {seeded.viewed, seeded.bought, seeded.elsewhere} <= set(names)
    picker.select_option(seeded.elsewhere)
    page.get_by_text(f"0 events ({seeded.elsewhere}) in the last 30 days").wait_for()
    assert page.errors == [] and phone.errors == []


def test_more_than_ten_series_are_told_apart_in_the_chart_and_the_legend(
    running_stack: RunningStack, query: httpx.Client, seeded: Seeded, pages: PageOpener
) -> None:
    """Ten colours, then dashed, then dotted: no two of the first thirty series look alike."""
    wanted = [
        ("event", seeded.viewed),
        ("event", seeded.bought),
        ("breakdown", "price"),
        ("breakdown_limit", "15"),
        ("last", "30d"),
        ("tz", ZONE),
    ]
    page = pages("many-series", timezone=ZONE)
    page.goto(f"{running_stack.query_url}/dashboard/#/insights?{urllib.parse.urlencode(wanted)}")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Insights").wait_for()
    answer = answer_shown(page, query)
    count = len(answer["series"])
    assert count > 10  # the case is not vacuous: past the ten colours
    looks = page.locator("svg.insights-chart polyline.line").evaluate_all(
        "lines => lines.map(l => { const s = getComputedStyle(l);"
        " return s.stroke + ' ' + s.strokeDasharray; })"
    )
    assert len(looks) == count
    assert len(set(looks[:30])) == min(count, 30), looks
    swatches = (
        page.get_by_role("list", name="Legend")
        .locator(".swatch")
        .evaluate_all(
            "items => items.map(i => { const s = getComputedStyle(i);"
            " return [s.backgroundColor, s.borderTopStyle, s.getPropertyValue('--c')].join(' '); })"
        )
    )
    assert len(swatches) == count
    assert len(set(swatches[:30])) == min(count, 30), swatches
    assert page.errors == []


def test_the_form_keeps_its_small_promises(
    running_stack: RunningStack,
    ingest: httpx.Client,
    query: httpx.Client,
    seeded: Seeded,
    pages: PageOpener,
) -> None:
    """What an analyst found rough, each fixed: a half-typed event is not queried, the operator
    and the number of breakdown values apply at once, an empty zone is the browser's, focus
    stays where the hand is, an unknown user is marked on its field, a long value wraps."""
    base = running_stack.query_url
    page = pages("promises", timezone=ZONE)
    start = [("event", seeded.viewed), ("last", "30d"), ("tz", ZONE)]
    page.goto(f"{base}/dashboard/#/insights?{urllib.parse.urlencode(start)}")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Insights").wait_for()
    answer_shown(page, query)

    # a half-typed event name and Show: the breakdown applies, the fragment is left in the box
    half = seeded.viewed[:4]
    page.get_by_label("Events").fill(half)
    page.get_by_label("Break down by").fill("plan")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"breakdown=plan"))
    assert ("event", half) not in query_in_url(page)
    expect(page.get_by_label("Events")).to_have_value(half)
    expect(page.get_by_text(f"“{half}” was not added")).to_be_visible()
    # Enter in the box adds it as typed, on purpose
    page.get_by_label("Events").press("Enter")
    expect(page).to_have_url(re.compile(f"event={half}&"))
    page.get_by_role("button", name=f"Remove event {half}", exact=True).click()
    expect(page).not_to_have_url(re.compile(f"event={half}&"))

    # how many breakdown values: a select, applied at once, in the address
    page.get_by_label("Values shown").select_option("3")
    expect(page).to_have_url(re.compile(r"breakdown=plan&breakdown_limit=3"))
    answer_shown(page, query)

    # the operator applies at once when the filter is whole ("is set" needs no value)
    page.get_by_label("Filter property").fill("plan")
    page.get_by_label("Operator").select_option("set")
    expect(page).to_have_url(re.compile(r"where=plan%3Aset"))
    answer_shown(page, query)

    # an empty time zone is the browser's, not UTC
    page.get_by_label("Time zone").fill("")
    page.get_by_label("Time zone").press("Enter")
    expect(page).to_have_url(re.compile("tz=Europe%2FParis"))

    # Download CSV from the keyboard: the focus comes back to the button
    page.get_by_role("button", name="Download CSV").focus()
    with page.expect_download():
        page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Download CSV")).to_be_focused()

    # removing a filter chip leaves the focus in the filter, not on the page's body
    two = [*start, ("where", "price:gt:1"), ("where", "plan:set")]
    page.goto(f"{base}/dashboard/#/insights?{urllib.parse.urlencode(two)}")
    page.get_by_role("button", name="Remove filter plan:set").focus()
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile("plan%3Aset"))
    expect(page.get_by_label("Filter property")).to_be_focused()

    # with ten events already, Show still applies the rest, and says why the 11th was not added
    ten = [("event", f"{seeded.suffix}-{i}") for i in range(10)] + [("last", "7d"), ("tz", ZONE)]
    page.goto(f"{base}/dashboard/#/insights?{urllib.parse.urlencode(ten)}")
    expect(page.get_by_role("button", name=re.compile("^Remove event "))).to_have_count(10)
    page.get_by_label("Events").fill(seeded.viewed)
    page.get_by_label("Interval").press("Tab")  # leave the box without Enter
    page.get_by_label("Break down by").fill("plan")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"breakdown=plan"))
    expect(
        page.get_by_text(f"At most 10 events: remove one to add “{seeded.viewed}”.")
    ).to_be_visible()

    # an unknown user: the reason next to the User field
    page.goto(f"{base}/dashboard/#/insights?user=nobody-{seeded.suffix}&tz=UTC")
    expect(page.locator('.field[data-field="user"] > .error')).to_be_visible()

    # a 300-character breakdown value wraps in the legend instead of widening the page
    long_value = "x" * 300
    ingest.post(
        "/v1/track",
        json={
            "userId": seeded.first_user,
            "event": f"Long {seeded.suffix}",
            "properties": {"v": long_value},
        },
    ).raise_for_status()
    wanted = [("event", f"Long {seeded.suffix}"), ("breakdown", "v"), ("last", "7d"), ("tz", ZONE)]

    def stored() -> bool:
        got = query.get("/v1/insights/counts", params=httpx.QueryParams(tuple(wanted))).json()
        return [s["breakdown_value"] for s in got["series"]] == [long_value]

    eventually(stored, timeout=60)
    page.goto(f"{base}/dashboard/#/insights?{urllib.parse.urlencode(wanted)}")
    answer_shown(page, query)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.errors == []
