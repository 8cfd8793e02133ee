"""`profilestream dead-letters list|show|replay`: arguments, the requests they make and what
they print (a fake transport here; tests/e2e/test_export_and_dead_letters.py runs them against
the stack)."""

from __future__ import annotations

import argparse
import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from profilestream.commands import dead_letters

LETTERS: list[dict[str, Any]] = [
    {
        "id": "2-7",
        "time": "2026-05-01T12:00:00.000Z",
        "reason": "validation error: Invalid enum value 'nope' - at `$.event.type`",
        "topic": "ps.events",
        "partition": 1,
        "offset": 57,
        "key": "ada",
        "size": 312,
        "replayed": {"at": "2026-05-02T08:00:00.000Z", "by": "ops"},
    },
    {
        "id": "0-3",
        "time": None,
        "reason": "unreadable: not a dead letter of version 1",
        "topic": None,
        "partition": None,
        "offset": None,
        "key": None,
        "size": 0,
        "replayed": None,
    },
]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dead_letters.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["dead-letters", *argv])


class Api:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[Any] = []
        self.seen: list[str] = []
        self.calls_with_more = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.raw_path.decode()}")
        if self.status != 200:
            return httpx.Response(self.status, json={"message": "the analyst role may not do this"})
        if request.method == "POST":
            body = json.loads(request.content)
            self.bodies.append(body)
            # `all`: one letter a call, `more` until `calls_with_more` calls were made
            ids = body.get("ids") or [f"2-{7 + len(self.bodies)}"]
            replayed = [{"id": i, "topic": "ps.events", "partition": 1, "offset": 90} for i in ids]
            more = len(self.bodies) <= self.calls_with_more
            return httpx.Response(200, json={"replayed": replayed, "skipped": 1, "more": more})
        if request.url.path == "/v1/dead-letters":
            return httpx.Response(200, json={"letters": LETTERS})
        return httpx.Response(200, json={**LETTERS[0], "encoding": "json", "value": {"v": 1}})


def run(api: Api, *argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with httpx.Client(transport=httpx.MockTransport(api), base_url="http://query") as client:
        code = dead_letters.dead_letters(client, parse(*argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_arguments() -> None:
    assert parse("list").limit == 100
    assert parse("list", "--limit", "5").limit == 5
    assert parse("show", "0-3").id == "0-3"
    args = parse("replay", "0-3", "1-2")
    assert (args.ids, args.all, args.value_file) == (["0-3", "1-2"], False, None)
    assert parse("replay", "--all").all is True
    with pytest.raises(SystemExit):
        parse("show")
    with pytest.raises(SystemExit):
        parse()


def test_list_prints_a_table() -> None:
    api = Api()
    code, out, _ = run(api, "list", "--limit", "5")
    assert code == 0 and api.seen == ["GET /v1/dead-letters?limit=5"]
    assert "2 dead letters, newest first" in out
    for text in ("2-7", "ps.events[1]@57", "ada", "312", "by ops", "0-3", "unreadable"):
        assert text in out, out


def test_show_prints_json() -> None:
    api = Api()
    code, out, _ = run(api, "show", "2-7")
    assert code == 0 and api.seen == ["GET /v1/dead-letters/2-7"]
    assert json.loads(out)["value"] == {"v": 1}


def test_replay_ids() -> None:
    api = Api()
    code, out, _ = run(api, "replay", "2-7", "0-3")
    assert code == 0 and api.bodies == [{"ids": ["2-7", "0-3"]}]
    assert out.splitlines() == [
        "replayed 2-7 to ps.events[1]@90",
        "replayed 0-3 to ps.events[1]@90",
        "2 replayed",
    ]


def test_replay_all() -> None:
    api = Api()
    code, out, _ = run(api, "replay", "--all")
    assert code == 0 and api.bodies == [{"all": True}]
    assert out.splitlines()[-1] == "1 replayed, skipped 1 (replayed before, or unreadable)"


def test_replay_all_calls_again_while_the_api_says_there_is_more() -> None:
    api = Api()
    api.calls_with_more = 2
    code, out, _ = run(api, "replay", "--all")
    assert code == 0 and api.bodies == [{"all": True}] * 3
    assert out.splitlines()[-1] == "3 replayed, skipped 1 (replayed before, or unreadable)"


def test_replay_a_repaired_json_value(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed.json"
    fixed.write_text('{"v": 1, "kind": "event", "event": {"type": "track"}}')
    api = Api()
    assert run(api, "replay", "2-7", "--value-file", str(fixed))[0] == 0
    assert api.bodies == [
        {"ids": ["2-7"], "value": {"v": 1, "kind": "event", "event": {"type": "track"}}}
    ]


@pytest.mark.parametrize("content", [b"\xff\x00 not json", b'"a JSON string"', b"[1, 2]"])
def test_replay_other_repaired_bytes_as_base64(tmp_path: Path, content: bytes) -> None:
    fixed = tmp_path / "fixed.bin"
    fixed.write_bytes(content)
    api = Api()
    assert run(api, "replay", "2-7", "--value-file", str(fixed))[0] == 0
    assert base64.b64decode(api.bodies[0]["value"]) == content


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay"], "give letter ids or --all"),
        (["replay", "--all", "2-7"], "give letter ids or --all"),
        (["replay", "2-7", "0-3", "--value-file", "x"], "exactly one letter"),
        (["replay", "2-7", "--value-file", "/nonexistent/fixed.json"], "No such file"),
    ],
)
def test_replay_refuses_before_calling(argv: list[str], message: str) -> None:
    api = Api()
    code, out, err = run(api, *argv)
    assert code == 2 and out == "" and message in err
    assert api.seen == []


def test_an_api_refusal_is_the_reason_on_stderr() -> None:
    code, out, err = run(Api(status=403), "replay", "2-7")
    assert (code, out) == (1, "")
    assert err == (
        "profilestream dead-letters replay: POST /v1/dead-letters/replay: "
        "the analyst role may not do this\n"
    )
