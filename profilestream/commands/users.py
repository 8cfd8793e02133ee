"""`profilestream users delete USER [--yes]`: delete a user's profile and every stored event
(those sent under anonymous ids merged into it too), through DELETE /v1/users/{user}. Asks for
confirmation on a terminal unless --yes; refuses without --yes when stdin is not a terminal.
Returns once the worker applied the deletion (the API's read-your-writes position)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import quote

import httpx

from infra.settings import Settings
from profilestream.commands.api import ApiFailure, checked, explain, failure_message, query_client
from query.consistency import POSITION_HEADER


def register(subcommands: Any) -> None:
    parser: argparse.ArgumentParser = subcommands.add_parser(
        "users", help="manage users: delete", description="Manage users."
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    delete = actions.add_parser(
        "delete", help="delete a user and every stored event", description=__doc__
    )
    delete.add_argument("user", help="the user id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the worker to apply the deletion (default 60)",
    )
    delete.set_defaults(run=run)


def user_path(user: str) -> str:
    return f"/v1/users/{quote(user, safe='')}"


def describe(profile: dict[str, Any]) -> str:
    """Pure: what a deletion of this profile removes, in a line."""
    merged = profile.get("anonymous_ids") or []
    ids = ", ".join([profile["user_id"], *merged])
    count = profile.get("event_count", 0)
    return f"user {profile['user_id']}: its profile and {count} events stored under {ids}"


def confirmed(description: str, stdin: IO[str], stderr: IO[str]) -> bool:
    print(f"This deletes {description}, for good.", file=stderr)
    print("Delete? [y/N] ", end="", file=stderr, flush=True)
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


def wait_applied(
    client: httpx.Client,
    user: str,
    position: str,
    wait_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Whether the deletion at `position` was applied within `wait_s`: a read at that position
    answers once the worker passed it (503 while it has not, 410 if the broker's log is gone)."""
    deadline = clock() + wait_s
    while True:
        response = client.get(user_path(user), params={"after": position})
        if response.status_code == 410:
            # Another life of the topic: applied then, or lost; the profile says which.
            if client.get(user_path(user)).status_code == 404:
                return True
            raise ApiFailure(
                "the broker's log was replaced before the deletion was applied, and the user "
                "is still there: run the deletion again"
            )
        if response.status_code == 404:
            return True  # applied: the user is gone
        if response.status_code != 503:
            checked(response)
            return True  # applied; a later write made the id a user again
        if clock() >= deadline:
            return False
        sleep(0.2)  # each read already waited on the server (PS_APPLIED_WAIT_S)


def delete_user(
    client: httpx.Client,
    args: argparse.Namespace,
    stdin: IO[str],
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    try:
        profile = checked(client.get(user_path(args.user))).json()
        description = describe(profile)
        if not args.yes:
            if not stdin.isatty():
                print(
                    "profilestream users delete: stdin is not a terminal; pass --yes to delete "
                    f"{description}",
                    file=stderr,
                )
                return 2
            if not confirmed(description, stdin, stderr):
                print("not deleted", file=stderr)
                return 1
        response = client.delete(user_path(profile["user_id"]))
        if response.status_code not in (200, 202):
            raise ApiFailure(f"DELETE {user_path(profile['user_id'])}: {explain(response)}")
        position = response.headers.get(POSITION_HEADER, "")
        if response.status_code == 202 and not wait_applied(
            client, profile["user_id"], position, args.wait
        ):
            print(
                f"profilestream users delete: the deletion is accepted (position {position}) "
                f"but not applied after {args.wait:g} s; GET {user_path(profile['user_id'])}"
                f"?after={position} answers once it is",
                file=stderr,
            )
            return 1
    except (ApiFailure, httpx.HTTPError) as exc:
        print(f"profilestream users delete: {failure_message(client, exc)}", file=stderr)
        return 1
    print(f"deleted {description}", file=stdout)
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    with query_client(settings) as client:
        return delete_user(client, args, sys.stdin, sys.stdout, sys.stderr)
