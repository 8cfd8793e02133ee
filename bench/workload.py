"""Realistic events for the benchmarks: what analytics.js sends (a context of about 1 KB: page,
userAgent and its client hints, locale, timezone, campaign, library, screen), over a number of
users of whom 10% send half the events; 1 in 5 an identify with traits, 3 in 10 page views, 1 in
20 a `$config_served`, the rest tracks with a handful of properties.

Deterministic for a seed, and cheap: one event is a few dict copies, so generating a million
takes seconds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
PAGES = [
    ("/", "Acme: the workspace for teams"),
    ("/pricing", "Pricing | Acme"),
    ("/docs/getting-started", "Getting started | Acme docs"),
    ("/blog/2026/shipping-faster", "How we ship faster | Acme blog"),
    ("/signup", "Create your account | Acme"),
    ("/app/projects/alpha/board", "Alpha board | Acme"),
]
TRACKS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Searched"]
PLANS = ["free", "starter", "pro", "enterprise"]
HOT_SHARE = 0.5  # of the events, sent by
HOT_USERS = 0.1  # this share of the users


def _context(rng: random.Random, path: str, title: str) -> dict[str, Any]:
    campaign = rng.randrange(8)
    return {
        "library": {"name": "analytics.js", "version": "npm:next-1.81.1"},
        "page": {
            "path": path,
            "referrer": "https://www.google.com/",
            "search": f"?utm_source=newsletter&utm_medium=email&utm_campaign=winter-{campaign}",
            "title": title,
            "url": f"https://www.acme.example{path}?utm_source=newsletter&utm_medium=email"
            f"&utm_campaign=winter-{campaign}",
        },
        "userAgent": USER_AGENT,
        "userAgentData": {
            "brands": [
                {"brand": "Google Chrome", "version": "131"},
                {"brand": "Chromium", "version": "131"},
                {"brand": "Not_A Brand", "version": "24"},
            ],
            "mobile": False,
            "platform": "macOS",
        },
        "locale": "en-US",
        "timezone": "Europe/Paris",
        "campaign": {
            "name": f"winter-{campaign}",
            "source": "newsletter",
            "medium": "email",
            "term": "workspace",
            "content": "hero-button",
        },
        "screen": {"width": 1512, "height": 982, "density": 2, "innerWidth": 1512},
        "instanceId": "c3e1d9b2-5f0a-4c8e-9a7d-2b6f1e4a8c30",
    }


class Workload:
    """Event `i` of a stream over `users` users (`event(i)`), as a client sends it."""

    def __init__(
        self,
        users: int,
        run: str = "w",
        seed: int = 7,
        start: datetime | None = None,
        *,
        every_user_first: bool = False,
    ):
        """`every_user_first`: events 0..users-1 go to users 0..users-1 in turn (each user has
        an event, for measures per user), the rest as the skew says."""
        self.users = users
        self.every_user_first = every_user_first
        self.run = run
        self.seed = seed
        self.start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self._hot = max(1, int(users * HOT_USERS))

    def user_of(self, rng: random.Random) -> str:
        if rng.random() < HOT_SHARE or self._hot == self.users:
            return f"{self.run}-u{rng.randrange(self._hot)}"
        return f"{self.run}-u{rng.randrange(self._hot, self.users)}"

    def event(self, i: int) -> dict[str, Any]:
        rng = random.Random(self.seed * 1_000_003 + i)
        user = self.user_of(rng)
        if self.every_user_first and i < self.users:
            user = f"{self.run}-u{i}"
        path, title = PAGES[rng.randrange(len(PAGES))]
        at = self.start + timedelta(milliseconds=i)
        base: dict[str, Any] = {
            "userId": user,
            "anonymousId": f"anon-{user}",
            "messageId": f"{self.run}-{i}",
            "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "context": _context(rng, path, title),
        }
        kind = rng.random()
        if kind < 0.2:
            return {
                **base,
                "type": "identify",
                "traits": {
                    "email": f"{user}@acme.example",
                    "name": f"User {user}",
                    "plan": PLANS[rng.randrange(len(PLANS))],
                    "company": {"name": "Initech", "employees": 120},
                    "logins": rng.randrange(1, 500),
                },
            }
        if kind < 0.5:
            return {
                **base,
                "type": "page",
                "name": title,
                "properties": {"path": path, "title": title, "url": f"https://acme.example{path}"},
            }
        if kind < 0.55:
            return {
                **base,
                "type": "track",
                "event": "$config_served",
                "properties": {"config": "checkout-flow", "variation": rng.choice("AB")},
            }
        return {
            **base,
            "type": "track",
            "event": TRACKS[rng.randrange(len(TRACKS))],
            "properties": {
                "product_id": f"sku-{rng.randrange(5000)}",
                "price": round(rng.uniform(5, 500), 2),
                "currency": "EUR",
                "quantity": rng.randrange(1, 4),
                "category": "tools",
                "coupon": None,
            },
        }

    def batch(self, first: int, size: int) -> list[dict[str, Any]]:
        return [self.event(i) for i in range(first, first + size)]
