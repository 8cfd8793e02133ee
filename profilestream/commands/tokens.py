"""`profilestream tokens create|list|revoke`: operator tokens, through the query API (so the
command needs an admin token: PS_TOKEN, or PS_ADMIN_TOKEN by default)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from infra.settings import Settings
from profilestream.commands.api import ApiFailure, checked, query_client, query_url

ROLES = ("admin", "analyst")  # keep in sync with query.operators.Role


def register(subcommands: Any) -> None:
    parser: argparse.ArgumentParser = subcommands.add_parser(
        "tokens",
        help="operator tokens: create, list, revoke",
        description="Named operator tokens with a role (admin: everything; analyst: reads).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a token and print it (shown once)")
    create.add_argument("name", help="1-64 of letters, digits, '.', '_', '-'")
    create.add_argument("--role", choices=ROLES, required=True)
    create.set_defaults(run=create_token)
    listing = actions.add_parser("list", help="every token's name, role, creation and creator")
    listing.set_defaults(run=list_tokens)
    revoke = actions.add_parser("revoke", help="revoke a token: refused from its next request")
    revoke.add_argument("name")
    revoke.set_defaults(run=revoke_token)


def _call(settings: Settings, request: Callable[[httpx.Client], httpx.Response]) -> Any:
    """The JSON (or None) of a successful call; ApiFailure naming why it was not."""
    try:
        with query_client(settings) as client:
            response = checked(request(client))
    except httpx.HTTPError as exc:
        raise ApiFailure(f"cannot reach the query API at {query_url(settings)} ({exc})") from None
    return response.json() if response.content else None


def _failed(failure: ApiFailure) -> int:
    print(f"profilestream tokens: {failure}", file=sys.stderr)
    return 1


def create_token(args: argparse.Namespace, settings: Settings) -> int:
    body = {"name": args.name, "role": args.role}
    try:
        created = _call(settings, lambda client: client.post("/v1/tokens", json=body))
    except ApiFailure as failure:
        return _failed(failure)
    # The token on stdout alone (scripts capture it); the advice on stderr.
    print(created["token"])
    print(
        f"token {created['name']!r} ({created['role']}) created: store it now, "
        "it is not shown again",
        file=sys.stderr,
    )
    return 0


def list_tokens(args: argparse.Namespace, settings: Settings) -> int:
    try:
        tokens = _call(settings, lambda client: client.get("/v1/tokens"))
    except ApiFailure as failure:
        return _failed(failure)
    title = f"{len(tokens)} token" + ("" if len(tokens) == 1 else "s")
    table = Table("name", "role", "created at", "created by", title=title)
    for token in tokens:
        table.add_row(token["name"], token["role"], token["created_at"], token["created_by"])
    Console().print(table)
    return 0


def revoke_token(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/v1/tokens/{quote(args.name, safe='')}"
    try:
        _call(settings, lambda client: client.delete(path))
    except ApiFailure as failure:
        return _failed(failure)
    print(f"token {args.name!r} revoked")
    return 0
