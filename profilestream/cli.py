"""The `profilestream` command, and the composition root: the only package that imports the
services.

profilestream up                   the whole embedded stack (what `make up` runs)
profilestream import FILE...       load events or users from files (Segment, Mixpanel, ...)
profilestream export USER          a user's profile and every stored event (an access request)
profilestream users delete USER    delete a user and their events
profilestream dead-letters ...     list, show and replay what the worker could not write
profilestream tokens ...           operator tokens: create, list, revoke
profilestream worker               the materializer, plus the query API when it owns chDB
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from types import FrameType

from infra.logs import configure_logging
from infra.settings import Settings, get_settings
from profilestream.embedded import EmbeddedStack
from profilestream.ports import (
    DataDirLock,
    clash_report,
    lock_message,
    port_report,
    stack_listeners,
    taken_ports,
)


def banner(settings: Settings) -> str:
    from ingest.sdk import versioned_path

    ingest = f"http://{settings.ingest_host}:{settings.ingest_port}"
    query = f"http://{settings.query_host}:{settings.query_port}"
    worker = f"http://{settings.worker_metrics_host}:{settings.worker_metrics_port}"
    write_key = next(iter(settings.write_key_map()), "<none>")
    token = settings.admin_token.get_secret_value()
    secret = next(iter(settings.source_secret_map()), "<none>")
    return f"""
Profilestream is up (embedded: Tansu, Valkey, chDB; data in {settings.data_dir.resolve()})
  ingest  {ingest}   write key: {write_key}
  query   {query}   admin token: {token}
  source secret: {secret}   (Mixpanel /import, Segment webhook signatures: PS_SOURCE_SECRETS)
  dashboard  {query}/dashboard/   (sign in with the admin token)
  API docs   {ingest}/docs   {query}/docs
  metrics    {ingest}/metrics   {query}/metrics   {worker}/metrics   (and /healthz, /readyz)
  browser SDK  {ingest}{versioned_path()}   (the snippet: README, "Send events from a website")
  logs    {(settings.data_dir / "logs").resolve()}

  curl -u {write_key}: {ingest}/v1/track -H 'Content-Type: application/json' \\
       -d '{{"userId": "ada", "event": "Signed Up", "properties": {{"plan": "pro"}}}}'
  curl -H 'Authorization: Bearer {token}' {query}/v1/users/ada

Ctrl-C stops everything.
"""


def up(settings: Settings) -> int:
    if settings.mode != "embedded":
        print("`up` runs the embedded default; set PS_MODE=embedded", file=sys.stderr)
        return 2
    # Before anything is spawned or logged: one `make up` per data directory, and free ports.
    lock = DataDirLock.acquire(settings.data_dir)
    if not isinstance(lock, DataDirLock):
        print(lock_message(lock, settings.data_dir.resolve()), file=sys.stderr)
        return 1
    try:
        report = clash_report(stack_listeners(settings)) or port_report(taken_ports(settings))
        if report:
            print(report, file=sys.stderr)
            return 1
        return supervise(settings)
    finally:
        lock.release()


def supervise(settings: Settings) -> int:
    """Start the stack, print the banner, and stop everything on Ctrl-C or when a part exits."""
    stack = EmbeddedStack(settings)
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print("starting Tansu, Valkey, the materializer (with chDB and the query API) and ingest...")
    try:
        stack.start()
    except Exception as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        return 1
    print(banner(settings), flush=True)
    code = 0
    while not stopping:
        dead = stack.exited()
        if dead:
            for process in dead:
                print(
                    f"{process.name} exited ({process.popen.returncode}); see {process.log_path}",
                    file=sys.stderr,
                )
            code = 1
            break
        time.sleep(0.5)
    print("stopping...", flush=True)
    stack.stop()
    print("stopped.")
    return code


def worker(settings: Settings) -> int:
    from materializer.worker import Companion, run_worker

    companions: list[Companion] = []
    if settings.serve_query_in_materializer:
        from query.server import serve_embedded

        companions.append(lambda: serve_embedded(settings))
    run_worker(settings, companions)
    return 0


def main(argv: list[str] | None = None) -> int:
    from profilestream.commands import dead_letters, export, imports, tokens, users

    parser = argparse.ArgumentParser(
        prog="profilestream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subcommands.add_parser(
        "up", help="run the whole embedded stack (Ctrl-C stops it)"
    ).set_defaults(run=lambda _args, settings: up(settings))
    subcommands.add_parser(
        "worker", help="run the materializer (and the embedded query API)"
    ).set_defaults(run=lambda _args, settings: worker(settings))
    for command in (imports, export, users, dead_letters, tokens):
        command.register(subcommands)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    # httpx logs every request at INFO, with its URL: user ids, which a command's output keeps
    # to itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        code: int = args.run(args, settings)
    except BrokenPipeError:
        # `profilestream export ada | head`: the reader left, which is not an error. Python
        # would report the pipe again while flushing at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code
