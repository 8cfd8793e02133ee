"""The command line, and the composition root: the only module that imports the services.

python -m profilestream up       the whole embedded stack (what `make up` runs)
python -m profilestream worker   the materializer, plus the query API when it owns chDB
"""

from __future__ import annotations

import argparse
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
    write_key = next(iter(settings.write_key_map()), "<none>")
    token = settings.admin_token.get_secret_value()
    secret = next(iter(settings.source_secret_map()), "<none>")
    return f"""
Profilestream is up (embedded: Tansu, Valkey, chDB; data in {settings.data_dir.resolve()})
  ingest  {ingest}   write key: {write_key}
  query   {query}   admin token: {token}
  source secret: {secret}   (Mixpanel /import, Segment webhook signatures: PS_SOURCE_SECRETS)
  dashboard  {query}/dashboard/   (sign in with the admin token)
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
    parser = argparse.ArgumentParser(
        prog="python -m profilestream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "worker"])
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    return up(settings) if args.command == "up" else worker(settings)
