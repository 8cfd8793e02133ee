"""What `make bench` shows while it runs: one rich progress line per phase (elapsed time, events
done, events/s, ETA), and the small protocol by which a child process reports its progress on
stdout: `PROGRESS <done>` updates its current line, `PHASE <total> <name>` opens the next one."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

PR_SET_PDEATHSIG = 1
PREFIX = "PROGRESS "
PHASE_PREFIX = "PHASE "


def parse_progress(line: str) -> int | None:
    """The count of a child's `PROGRESS <done>` line; None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        return int(line[len(PREFIX) :].strip())
    except ValueError:
        return None


def parse_phase(line: str) -> tuple[str, int] | None:
    """(name, total) of a child's `PHASE <total> <name>` line; None for any other line."""
    if not line.startswith(PHASE_PREFIX):
        return None
    total, _, name = line[len(PHASE_PREFIX) :].strip().partition(" ")
    try:
        return name, int(total)
    except ValueError:
        return None


class ChildProgress:
    """In a child: report `done` to the parent, at most every `every_s` seconds (and always at
    the end, through `finish`)."""

    def __init__(self, every_s: float = 0.5) -> None:
        self._every_s = every_s
        self._last = 0.0
        # A copy of the stdout descriptor: Faust's worker replaces sys.stdout with a logger.
        self._out = os.fdopen(os.dup(sys.__stdout__.fileno() if sys.__stdout__ else 1), "w")

    def report(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            self._write(f"{PREFIX}{done}")

    def finish(self, done: int) -> None:
        self._write(f"{PREFIX}{done}")

    def phase(self, name: str, total: int) -> None:
        """Close the current line and open one for the next step of this child."""
        self._write(f"{PHASE_PREFIX}{total} {name}")
        self._last = 0.0

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()


class RateColumn(ProgressColumn):
    """Items per second since the phase started (rich's own speed column averages a window)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if not elapsed or not task.completed:
            return Text("", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:,.0f}/s", style="progress.data.speed")


class Phases:
    """The progress display of a whole run: a line per phase, kept once done."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=4,
        )

    def __enter__(self) -> Phases:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, name: str, total: int | None) -> Phase:
        # Not a terminal (a log file, CI): no live display, so a plain line per phase instead.
        plain = None if self.console.is_terminal else self.console
        if plain is not None:
            plain.log(f"{name}: started" + (f" ({total:,} events)" if total else ""))
        return Phase(self._progress, self._progress.add_task(name, total=total), total, plain, name)

    @contextmanager
    def phase(self, name: str, total: int | None) -> Iterator[Phase]:
        handle = self.start(name, total)
        try:
            yield handle
        except BaseException:
            handle.failed = True
            raise
        finally:
            handle.close()

    def log(self, message: str) -> None:
        self._progress.console.log(message)


class Phase:
    def __init__(
        self,
        progress: Progress,
        task: TaskID,
        total: int | None,
        plain: Console | None = None,
        name: str = "",
    ) -> None:
        self._name = name
        self._progress = progress
        self._task = task
        self._total = total
        self._plain = plain
        self._started = time.monotonic()
        self.done = 0
        self.failed = False

    def close(self) -> None:
        """Stop its clock; a phase that ended well shows as complete."""
        if self._total is not None and not self.failed:
            self._progress.update(self._task, completed=max(self.done, self._total))
        self._progress.stop_task(self._task)
        if self._plain is not None:
            elapsed = time.monotonic() - self._started
            outcome = "failed" if self.failed else "done"
            self._plain.log(f"{self._name}: {outcome} in {elapsed:.0f} s")

    def update(self, done: int) -> None:
        self.done = done
        self._progress.update(self._task, completed=done)

    def advance(self, count: int) -> None:
        self.update(self.done + count)


def die_with_parent() -> None:
    """In a child before exec: SIGKILL if the bench dies (Linux), so that an interrupted run
    leaves no child behind (Faust's worker ignores a plain SIGTERM while it starts)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _read_lines(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
    assert stream is not None
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_child(
    command: Sequence[str],
    env: Mapping[str, str],
    phases: Phases,
    name: str,
    total: int | None,
    log: Path,
    stall_s: float = 180,
) -> int:
    """Run a child process under a progress line `name`, fed by its PROGRESS and PHASE lines;
    its other output goes to `log` (not to the terminal, where it would tear the display).
    A child that reports nothing for `stall_s` seconds is killed (a write retrying forever must
    not hang the run). Returns its exit status; on failure, the log's tail is printed."""
    with log.open("a") as log_file:
        status = _follow(command, env, phases, name, total, log_file, stall_s)
    if status:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        phases.log(f"{name} failed (exit {status}); the end of {log}:\n{tail}")
    return status


def _follow(
    command: Sequence[str],
    env: Mapping[str, str],
    phases: Phases,
    name: str,
    total: int | None,
    log_file: IO[str],
    stall_s: float,
) -> int:
    child = subprocess.Popen(
        list(command),
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        bufsize=1,
        preexec_fn=die_with_parent,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(child.stdout, lines), daemon=True).start()
    phase = phases.start(name, total)
    try:
        while True:
            try:
                line = lines.get(timeout=stall_s)
            except queue.Empty:
                log_file.write(f"no progress for {stall_s}s: killed\n")
                child.kill()
                break
            if line is None:
                break
            done = parse_progress(line)
            step = parse_phase(line)
            if done is not None:
                phase.update(done)
            elif step is not None:
                phase.close()
                phase = phases.start(*step)
            else:
                log_file.write(line)
        status = child.wait()
    except BaseException:
        child.kill()
        child.wait()
        raise
    phase.failed = status != 0
    phase.close()
    return status
