"""Showing an import's progress: a rich progress bar per file on a terminal (records done,
records/s, ETA from the bytes read of the file's size, since a gzip's record count is unknown),
plain lines every few seconds anywhere else (CI, pipes: no escape codes)."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# How often the plain reporter writes a line.
PLAIN_EVERY_S = 5.0


class Reporter(Protocol):
    def start_file(self, name: str, size: int, records_before: int) -> None: ...

    def advance(self, records: int, position: int) -> None:
        """`records` settled so far in this file (this run's and earlier runs'), `position`
        bytes of it read."""

    def finish_file(self) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class RecordsPerSecond(ProgressColumn):
    """Records settled per second in this run (those of an earlier run are not counted)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        done = int(task.fields.get("records", 0)) - int(task.fields.get("before", 0))
        rate = done / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:,.0f} records/s", style="progress.data.speed")


class RichReporter:
    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[records]:,} records"),
            RecordsPerSecond(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._progress.start()
        self._task: TaskID | None = None

    def start_file(self, name: str, size: int, records_before: int) -> None:
        self._task = self._progress.add_task(
            name, total=max(size, 1), records=records_before, before=records_before
        )

    def advance(self, records: int, position: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=position, records=records)

    def finish_file(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._task, completed=task.total)
        self._task = None

    def message(self, text: str) -> None:
        self._progress.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self._progress.stop()


class PlainReporter:
    """One line per file every PLAIN_EVERY_S seconds, and one when it ends."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._name = ""
        self._size = 1
        self._before = 0
        self._records = 0
        self._position = 0
        self._started = 0.0
        self._last_line = 0.0

    def start_file(self, name: str, size: int, records_before: int) -> None:
        self._name, self._size = name, max(size, 1)
        self._before = self._records = records_before
        self._position = 0
        self._started = self._last_line = time.monotonic()

    def advance(self, records: int, position: int) -> None:
        self._records, self._position = records, position
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY_S:
            self._last_line = now
            self._write_line(now)

    def _write_line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = (self._records - self._before) / elapsed
        share = min(self._position / self._size, 1.0)
        eta = "?"
        if 0 < share < 1:
            eta = str(timedelta(seconds=round(elapsed * (1 - share) / share)))
        elif share >= 1:
            eta = "0:00:00"
        self.message(
            f"{self._name}: {self._records:,} records, {rate:,.0f} records/s, "
            f"{share:.0%} of {self._size:,} bytes read, ETA {eta}"
        )

    def finish_file(self) -> None:
        self._position = self._size
        self._write_line(time.monotonic())

    def message(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def close(self) -> None:
        pass


def reporter_for(out: IO[str] = sys.stderr) -> Reporter:
    """The progress bar on a terminal, plain lines elsewhere."""
    console = Console(file=out)
    if console.is_terminal:
        return RichReporter(console)
    return PlainReporter(out)
