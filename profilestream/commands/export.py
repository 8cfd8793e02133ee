"""`profilestream export USER [--format ndjson|json] [-o FILE]`: a user's profile and every
stored event, merged ids included (an access request), from GET /v1/users/{user}/export. To
stdout by default; with -o the file appears only once the whole export arrived."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

from infra.settings import Settings
from profilestream.commands.api import ApiFailure, checked, failure_message, query_client


def register(subcommands: Any) -> None:
    parser: argparse.ArgumentParser = subcommands.add_parser(
        "export",
        help="a user's profile and every stored event (an access request)",
        description=__doc__,
    )
    parser.add_argument("user", help="the user id (an anonymous id merged into it works too)")
    parser.add_argument("--format", choices=("ndjson", "json"), default="ndjson")
    parser.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    parser.set_defaults(run=run)


def export_path(user: str) -> str:
    return f"/v1/users/{quote(user, safe='')}/export"


def write_export(client: httpx.Client, user: str, export_format: str, sink: IO[bytes]) -> int:
    """Stream the export into `sink`; the number of bytes written. ApiFailure if refused."""
    written = 0
    with client.stream("GET", export_path(user), params={"format": export_format}) as response:
        if not response.is_success:
            response.read()
            checked(response)
        for chunk in response.iter_bytes():
            sink.write(chunk)
            written += len(chunk)
    return written


def export_to_file(client: httpx.Client, user: str, export_format: str, output: Path) -> int:
    """`write_export` into a file beside `output`, renamed to it once complete: a failed export
    leaves no partial file."""
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("wb") as sink:
            written = write_export(client, user, export_format, sink)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return written


def export(
    client: httpx.Client, args: argparse.Namespace, stdout: IO[bytes], stderr: IO[str]
) -> int:
    try:
        if args.output is None:
            write_export(client, args.user, args.format, stdout)
            stdout.flush()
        else:
            written = export_to_file(client, args.user, args.format, args.output)
            print(f"exported {args.user} to {args.output} ({written} bytes)", file=stderr)
    except (ApiFailure, httpx.HTTPError) as exc:
        print(f"profilestream export: {failure_message(client, exc)}", file=stderr)
        return 1
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    with query_client(settings) as client:
        return export(client, args, sys.stdout.buffer, sys.stderr)
