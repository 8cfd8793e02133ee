"""Pure: the window of a daily-count query and its zero-filled result."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.api import DailyCount

MAX_DAYS = 365


def day_window(days: int, tz: ZoneInfo, now: datetime) -> tuple[list[date], datetime]:
    """The `days` dates ending today in `tz`, and the UTC instant the first one starts."""
    today = now.astimezone(tz).date()
    dates = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    start = datetime.combine(dates[0], time.min, tzinfo=tz).astimezone(UTC)
    return dates, start


def zero_filled(dates: list[date], counts: dict[date, int]) -> list[DailyCount]:
    return [DailyCount(date=d, count=counts.get(d, 0)) for d in dates]
