"""Takes the README's dashboard screenshots: starts an embedded stack in a temporary directory,
seeds a few users and events, and saves docs/users.png, docs/events.png and docs/insights.png.

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def main() -> int:
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
                page.screenshot(path=str(ROOT / "docs" / "users.png"))
                page.goto(f"{base}/dashboard/#/users/ada/events")
                page.get_by_role("table", name="Events").wait_for()
                page.get_by_label("Event", exact=True).select_option("Song Played")
                page.get_by_text("in the last 30 days").wait_for()
                page.screenshot(path=str(ROOT / "docs" / "events.png"))
                page.goto(
                    f"{base}/dashboard/#/insights?event=Order+Completed&interval=day&last=28d"
                    "&tz=UTC&breakdown=currency&chart=bar"
                )
                page.get_by_role("table", name="Counts by period").wait_for()
                page.screenshot(path=str(ROOT / "docs" / "insights.png"), full_page=True)
        finally:
            stack.stop()
    print("wrote docs/users.png, docs/events.png and docs/insights.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
