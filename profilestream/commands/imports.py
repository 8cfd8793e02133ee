"""`profilestream import FILE...`: load events or users from files through the same validation
and Kafka path as live events (docs/import.md).

Exit codes: 0 every record accepted; 1 some refused or skipped (the summary says which and
where), or the broker unreachable; 2 a usage error (no such file, unknown format or write key);
130 stopped by Ctrl-C (running the same command again resumes)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from infra.publisher import KafkaPublisher
from infra.settings import Settings
from profilestream.importing.formats import Format, UnknownFormat, detect
from profilestream.importing.progress import reporter_for
from profilestream.importing.records import UnreadableFile, read_head
from profilestream.importing.run import BrokerDown, FileResult, ImportJob, check_broker, import_file
from profilestream.importing.tally import summary_lines

USAGE_ERROR = 2
INTERRUPTED = 130


class UsageError(Exception):
    pass


def register(subcommands: Any) -> None:
    parser: argparse.ArgumentParser = subcommands.add_parser(
        "import",
        help="load events or users from files (Segment, Mixpanel, Amplitude, a users CSV)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--format",
        choices=[f.value for f in Format],
        help="the files' format (default: told from each file's content)",
    )
    parser.add_argument(
        "--write-key",
        metavar="KEY",
        help="a write key of PS_WRITE_KEYS: its source is the events' source "
        "(default: the first write key's)",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="ignore the checkpoints and send every record again (still stored once)",
    )
    parser.set_defaults(run=run_import)


def source_of(settings: Settings, write_key: str | None) -> str:
    keys = settings.write_key_map()
    if write_key is None:
        return next(iter(keys.values()))
    if write_key not in keys:
        raise UsageError("--write-key: not one of PS_WRITE_KEYS")
    return keys[write_key]


def jobs_of(paths: list[Path], forced: Format | None, source: str) -> list[ImportJob]:
    jobs = []
    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        try:
            format_, layout = detect(read_head(path), forced)
        except (UnknownFormat, UnreadableFile, OSError) as exc:
            raise UsageError(f"{path}: {exc}") from None
        jobs.append(ImportJob(path, format_, layout, source))
    return jobs


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    try:
        source = source_of(settings, args.write_key)
        jobs = jobs_of(args.files, Format(args.format) if args.format else None, source)
    except UsageError as exc:
        print(f"profilestream import: {exc}", file=sys.stderr)
        return USAGE_ERROR
    return asyncio.run(import_all(jobs, settings, restart=args.restart))


async def import_all(jobs: list[ImportJob], settings: Settings, *, restart: bool) -> int:
    """Import the files one after the other. The first Ctrl-C stops after the batch in flight
    is acknowledged; a second one abandons it."""
    reporter = reporter_for(sys.stderr)
    publisher = KafkaPublisher(settings, "profilestream-import")
    results: list[tuple[ImportJob, FileResult]] = []
    interrupts = 0

    async def all_files() -> None:
        await check_broker(settings, publisher)
        for job in jobs:
            if interrupts:
                return  # stopped between two files
            reporter.message(f"{job.path}: {job.format} ({job.layout}), source {job.source}")
            result = await import_file(
                job, settings, publisher, reporter, lambda: interrupts > 0, restart=restart
            )
            results.append((job, result))
            if result.stopped:
                return

    work = asyncio.ensure_future(all_files())

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            reporter.message(
                "stopping after the batch in flight is acknowledged (Ctrl-C again to abandon it)"
            )
        else:
            work.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    failure: BrokerDown | UnreadableFile | None = None
    try:
        await work
    except asyncio.CancelledError:
        pass  # abandoned by a second Ctrl-C: the checkpoint holds what was acknowledged
    except (BrokerDown, UnreadableFile) as exc:
        failure = exc
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        reporter.close()
        await publisher.close()
    unfinished = len(results) < len(jobs) or any(r.stopped for _, r in results)
    code = _report(jobs, results, interrupted=interrupts > 0 and unfinished)
    if isinstance(failure, BrokerDown):
        print(
            f"profilestream import: {failure}\nWhat the broker acknowledged is saved; run the "
            "same command again once it is up to resume.",
            file=sys.stderr,
        )
        return 1
    if failure is not None:
        print(f"profilestream import: {failure}", file=sys.stderr)
        return 1
    return code


def _report(
    jobs: list[ImportJob], results: list[tuple[ImportJob, FileResult]], *, interrupted: bool
) -> int:
    """Print each file's summary; the exit code."""
    clean = True
    for job, result in results:
        if result.already_done:
            print(
                f"{job.path}: already imported (checkpoint {result.checkpoint}); "
                "--restart sends it again (each event is still stored once)"
            )
        for line in summary_lines(str(job.path), result.tally):
            print(line)
        clean = clean and result.tally.clean
    if interrupted:
        print(
            "stopped: the records counted above are in (the broker acknowledged them). Run the "
            "same command again to resume where it stopped.",
            file=sys.stderr,
        )
        return INTERRUPTED
    if len(results) < len(jobs):
        return 1
    return 0 if clean else 1
