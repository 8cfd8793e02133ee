"""Takes the README's dashboard screenshots: starts an embedded stack in a temporary directory,
seeds a few users and events, and saves docs/users.png, docs/events.png, docs/insights.png and
docs/debugger.png (or only the ones named).

    .venv/bin/python docs/screenshots.py [users] [events] [insights] [debugger]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.settings import Settings  # noqa: E402
from profilestream.embedded import EmbeddedStack, environment_on_free_ports  # noqa: E402
from tests.support.browser import chromium  # noqa: E402 - the tests' Chromium, flags and all

TOKEN = "screenshot-token"  # noqa: S105 - a throwaway stack's token
WRITE_KEY = "screenshot-key"
PEOPLE = [
    ("ada", "C-1001", "Ada", "Lovelace", ["vip", "beta"]),
    ("grace", "C-1002", "Grace", "Hopper", ["beta"]),
    ("alan", "C-1003", "Alan", "Turing", []),
    ("katherine", "C-1004", "Katherine", "Johnson", ["vip"]),
    ("edsger", "C-1005", "Edsger", "Dijkstra", []),
]


def seed(ingest: httpx.Client, query: httpx.Client) -> None:
    query.post(
        "/v1/properties",
        json={"name": "plan", "type": "enum", "allowed_values": ["free", "pro", "team"]},
    )
    for user, customer, first, last, tags in PEOPLE:
        query.post(
            "/v1/users",
            json={
                "user_id": user,
                "customer_id": customer,
                "email": f"{user}@example.com",
                "first_name": first,
                "last_name": last,
                "tags": tags,
                "custom": {"plan": "pro"},
            },
        ).raise_for_status()
    query.patch("/v1/users/alan", json={"status": "disabled"}).raise_for_status()
    now = datetime.now(UTC)
    batch = []
    for day in range(14):
        for n in range((day * 7) % 5 + 1):
            moment = now - timedelta(days=day, minutes=n * 37)
            batch.append(
                {
                    "type": "track",
                    "userId": "ada",
                    "event": "Song Played",
                    "properties": {"song": f"track-{day}-{n}"},
                    "timestamp": moment.isoformat(),
                }
            )
    batch.append(
        {
            "type": "track",
            "userId": "ada",
            "event": "$config_served",
            "properties": {"config": "checkout", "variation": "one-page"},
            "timestamp": now.isoformat(),
        }
    )
    ingest.post("/v1/batch", json={"batch": batch}).raise_for_status()
    # orders by everyone over four weeks, in three currencies, for the Insights page
    orders = []
    for day in range(28):
        for n in range(3 + (day * 5) % 7):
            user = PEOPLE[(day + n) % len(PEOPLE)][0]
            orders.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Completed",
                    "properties": {
                        "currency": ("EUR", "USD", "GBP")[(day * n) % 3 if n % 4 else 0],
                        "price": 20 + (day * 13 + n * 7) % 180,
                    },
                    "timestamp": (now - timedelta(days=day, minutes=n * 53)).isoformat(),
                }
            )
    ingest.post("/v1/batch", json={"batch": orders}).raise_for_status()
    time.sleep(2)


SHOTS = ("users", "events", "insights", "debugger")


def debugger_shot(page: Any, base: str, ingest_url: str) -> None:
    """The live debugger while a page sends events, one of them refused, its body open."""
    page.goto(f"{base}/dashboard/#/debugger")
    page.get_by_role("status").filter(has_text="Live").wait_for()
    context = {"page": {"path": "/pricing", "url": "https://shop.example/pricing"}}
    sends = [
        {"type": "page", "anonymousId": "anon-7f3a", "name": "Pricing", "context": context},
        {"type": "identify", "userId": "grace", "traits": {"plan": "team"}},
        {
            "type": "track",
            "userId": "grace",
            "event": "Plan Upgraded",
            "properties": {"to": "team"},
        },
        {"type": "track", "userId": "grace", "properties": {"to": "team"}},  # no event name
        {"type": "track", "userId": "ada", "event": "Song Played", "properties": {"song": "x"}},
    ]
    with httpx.Client(base_url=ingest_url, auth=(WRITE_KEY, "")) as ingest:
        for event in sends:
            ingest.post(f"/v1/{event['type']}", json=event)
            time.sleep(0.3)
    rows = page.locator("tr.debugger-row")
    rows.nth(len(sends) - 1).wait_for()
    rows.filter(has_text="rejected").click()
    page.screenshot(path=str(ROOT / "docs" / "debugger.png"))


def main(names: list[str]) -> int:
    wanted = set(names) or set(SHOTS)
    with tempfile.TemporaryDirectory() as tmp:
        env = environment_on_free_ports(Path(tmp), PS_WRITE_KEYS=WRITE_KEY, PS_ADMIN_TOKEN=TOKEN)
        settings = Settings.from_environment(env)
        stack = EmbeddedStack(settings, env={**os.environ, **env})
        stack.start()
        try:
            base = f"http://127.0.0.1:{settings.query_port}"
            with (
                httpx.Client(
                    base_url=f"http://127.0.0.1:{settings.ingest_port}", auth=(WRITE_KEY, "")
                ) as ingest,
                httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
                ) as query,
            ):
                seed(ingest, query)
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{base}/")
                page.get_by_label("Admin token").fill(TOKEN)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("table", name="Users").wait_for()
                if "users" in wanted:
                    page.screenshot(path=str(ROOT / "docs" / "users.png"))
                if "events" in wanted:
                    page.goto(f"{base}/dashboard/#/users/ada/events")
                    page.get_by_role("table", name="Events").wait_for()
                    page.get_by_label("Event", exact=True).select_option("Song Played")
                    page.get_by_text("in the last 30 days").wait_for()
                    page.screenshot(path=str(ROOT / "docs" / "events.png"))
                if "insights" in wanted:
                    page.goto(
                        f"{base}/dashboard/#/insights?event=Order+Completed&interval=day&last=28d"
                        "&tz=UTC&breakdown=currency&chart=bar"
                    )
                    page.get_by_role("table", name="Counts by period").wait_for()
                    page.screenshot(path=str(ROOT / "docs" / "insights.png"), full_page=True)
                if "debugger" in wanted:
                    debugger_shot(page, base, f"http://127.0.0.1:{settings.ingest_port}")
        finally:
            stack.stop()
    print("wrote " + ", ".join(f"docs/{name}.png" for name in SHOTS if name in wanted))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
