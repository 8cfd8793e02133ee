"""`profilestream dead-letters list|show|replay`: what the worker could not decode or write, and
why; its original bytes; and replaying it after a fix (GET /v1/dead-letters,
GET /v1/dead-letters/{id}, POST /v1/dead-letters/replay).

  profilestream dead-letters list [--limit N]          newest first
  profilestream dead-letters show ID                   one letter as JSON, with its original value
  profilestream dead-letters replay ID...              the original bytes, to the original topic
  profilestream dead-letters replay ID --value-file F  a repaired value instead (one id)
  profilestream dead-letters replay --all              every letter not replayed before"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
import orjson
from rich.console import Console
from rich.table import Table

from infra.settings import Settings
from profilestream.commands.api import ApiFailure, checked, failure_message, query_client


def register(subcommands: Any) -> None:
    parser: argparse.ArgumentParser = subcommands.add_parser(
        "dead-letters",
        help="list, show and replay what the worker could not write",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the newest dead letters, with their reasons")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (1..1000)")
    show = actions.add_parser("show", help="one dead letter as JSON, with its original value")
    show.add_argument("id", help="a letter's id, <partition>-<offset> (from list)")
    replay = actions.add_parser("replay", help="publish letters again to their original topic")
    replay.add_argument("ids", nargs="*", metavar="ID", help="letters' ids")
    replay.add_argument("--all", action="store_true", help="every letter not replayed before")
    replay.add_argument(
        "--value-file",
        type=Path,
        metavar="FILE",
        help="replay this repaired value instead of the original (exactly one ID): a JSON "
        "message, or any bytes",
    )
    parser.set_defaults(run=run)


def replay_body(ids: list[str], replay_all: bool, value_file: Path | None) -> dict[str, Any]:
    """The replay request for these arguments; ValueError naming what is wrong."""
    if replay_all == bool(ids):
        raise ValueError("give letter ids or --all")
    if replay_all:
        return {"all": True}
    body: dict[str, Any] = {"ids": ids}
    if value_file is not None:
        if len(ids) != 1:
            raise ValueError("--value-file repairs exactly one letter: give one ID")
        raw = value_file.read_bytes()
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        # A JSON object goes as JSON; anything else as the base64 of its bytes.
        body["value"] = parsed if isinstance(parsed, dict) else base64.b64encode(raw).decode()
    return body


def _origin(letter: dict[str, Any]) -> str:
    if letter.get("topic") is None:
        return "?"
    return f"{letter['topic']}[{letter['partition']}]@{letter['offset']}"


def letters_table(letters: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(letters)} dead letters, newest first", title_justify="left")
    for column in ("id", "time", "reason", "from", "key", "bytes", "replayed"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        replayed = letter.get("replayed") or {}
        table.add_row(
            letter["id"],
            letter.get("time") or "",
            letter["reason"],
            _origin(letter),
            letter.get("key") or "",
            str(letter.get("size", "")),
            f"{replayed['at']} by {replayed['by']}" if replayed else "",
        )
    return table


def dead_letters(
    client: httpx.Client, args: argparse.Namespace, stdout: IO[str], stderr: IO[str]
) -> int:
    try:
        if args.action == "list":
            answer = checked(client.get("/v1/dead-letters", params={"limit": args.limit})).json()
            # A terminal's own width; a pipe or file gets lines wide enough for the reasons.
            width = None if stdout.isatty() else 160
            Console(file=stdout, width=width).print(letters_table(answer["letters"]))
        elif args.action == "show":
            answer = checked(client.get(f"/v1/dead-letters/{quote(args.id, safe='')}")).json()
            print(json.dumps(answer, indent=2, ensure_ascii=False), file=stdout)
        else:
            try:
                body = replay_body(args.ids, args.all, args.value_file)
            except (ValueError, OSError) as exc:
                print(f"profilestream dead-letters replay: {exc}", file=stderr)
                return 2
            replayed = 0
            while True:  # `all` replays a bounded number a call; `more`: call again
                answer = checked(client.post("/v1/dead-letters/replay", json=body)).json()
                for entry in answer["replayed"]:
                    print(
                        f"replayed {entry['id']} to {entry['topic']}[{entry['partition']}]"
                        f"@{entry['offset']}",
                        file=stdout,
                    )
                replayed += len(answer["replayed"])
                if not (args.all and answer.get("more")):
                    break
            skipped = (
                f", skipped {answer['skipped']} (replayed before, or unreadable)"
                if args.all
                else ""
            )
            print(f"{replayed} replayed{skipped}", file=stdout)
    except (ApiFailure, httpx.HTTPError) as exc:
        print(
            f"profilestream dead-letters {args.action}: {failure_message(client, exc)}", file=stderr
        )
        return 1
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    with query_client(settings) as client:
        return dead_letters(client, args, sys.stdout, sys.stderr)
