"""`profilestream users delete`: confirmation (a terminal, --yes, refusal without a terminal),
waiting for the deletion to be applied, and what it prints (a fake transport here;
tests/e2e/test_export_and_dead_letters.py runs it against the stack)."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator

import httpx
import pytest

from profilestream.commands import users
from query.consistency import POSITION_HEADER

PROFILE = {"user_id": "ada", "event_count": 3, "anonymous_ids": ["anon-1"]}
POSITION = "1:57:0190a1b2c3d4e5f60718293a4b5c6d7e"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    users.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["users", *argv])


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Api:
    """The query API's user routes: a profile, a deletion answered 200 or 202, and reads at
    the deletion's position answered from `reads_after` in turn."""

    def __init__(self, delete_status: int = 200, reads_after: Iterator[int] | None = None) -> None:
        self.delete_status = delete_status
        self.reads_after = reads_after or iter(())
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.raw_path.decode()}")
        if request.method == "DELETE":
            body = {"deleted": "ada"} if self.delete_status == 200 else {"status": "accepted"}
            return httpx.Response(
                self.delete_status, json=body, headers={POSITION_HEADER: POSITION}
            )
        if "after" in request.url.params:
            status = next(self.reads_after)
            return httpx.Response(status, json={"message": "not applied yet"})
        if request.url.path == "/v1/users/ada":
            return httpx.Response(200, json=PROFILE)
        return httpx.Response(
            404, json={"message": f"no user {request.url.path.rsplit('/', 1)[-1]!r}"}
        )


def run(api: Api, *argv: str, stdin: io.StringIO | None = None) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with httpx.Client(transport=httpx.MockTransport(api), base_url="http://query") as client:
        code = users.delete_user(
            client, parse("delete", *argv), stdin or io.StringIO(), stdout, stderr
        )
    return code, stdout.getvalue(), stderr.getvalue()


def test_arguments() -> None:
    args = parse("delete", "ada")
    assert (args.user, args.yes, args.wait) == ("ada", False, 60.0)
    assert parse("delete", "ada", "--yes", "--wait", "5").wait == 5.0
    with pytest.raises(SystemExit):
        parse("ada")
    with pytest.raises(SystemExit):
        parse("delete")


def test_describe() -> None:
    assert users.describe(PROFILE) == "user ada: its profile and 3 events stored under ada, anon-1"


def test_refuses_without_yes_when_stdin_is_not_a_terminal() -> None:
    api = Api()
    code, out, err = run(api, "ada")
    assert code == 2 and out == "" and "pass --yes" in err and "anon-1" in err
    assert api.seen == ["GET /v1/users/ada"]


@pytest.mark.parametrize(
    ("answer", "deleted"), [("y\n", True), ("YES\n", True), ("n\n", False), ("\n", False)]
)
def test_asks_on_a_terminal(answer: str, deleted: bool) -> None:
    api = Api()
    code, out, err = run(api, "ada", stdin=Terminal(answer))
    assert "Delete? [y/N]" in err
    assert ("DELETE /v1/users/ada" in api.seen) is deleted
    assert code == (0 if deleted else 1)
    assert (
        out == "deleted user ada: its profile and 3 events stored under ada, anon-1\n"
    ) is deleted


def test_yes_deletes_without_asking() -> None:
    api = Api()
    code, out, err = run(api, "ada", "--yes")
    assert (code, err) == (0, "")
    assert out.startswith("deleted user ada")
    assert api.seen == ["GET /v1/users/ada", "DELETE /v1/users/ada"]


def test_waits_until_the_deletion_is_applied() -> None:
    api = Api(delete_status=202, reads_after=iter([503, 503, 404]))
    code, out, _ = run(api, "ada", "--yes")
    assert code == 0 and out.startswith("deleted user ada")
    reads = [s for s in api.seen if "after=" in s]
    assert len(reads) == 3 and all(POSITION.replace(":", "%3A") in s for s in reads)


def test_a_deletion_not_applied_in_time_says_where_to_look() -> None:
    api = Api(delete_status=202, reads_after=iter([503] * 5))
    code, out, err = run(api, "ada", "--yes", "--wait", "0")
    assert code == 1 and out == ""
    assert f"accepted (position {POSITION}) but not applied" in err


def test_a_position_of_a_gone_log_asks_the_profile() -> None:
    # The profile still answers in this fake: the deletion was lost with the log.
    code, out, err = run(Api(delete_status=202, reads_after=iter([410])), "ada", "--yes")
    assert code == 1 and out == "" and "run the deletion again" in err


def test_an_unknown_user() -> None:
    code, out, err = run(Api(), "bob", "--yes")
    assert (code, out) == (1, "")
    assert err == "profilestream users delete: GET /v1/users/bob: no user 'bob'\n"
