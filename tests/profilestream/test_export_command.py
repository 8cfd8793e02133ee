"""`profilestream export`: its arguments, and what it does with the query API's answers (a fake
transport here; tests/e2e/test_export_and_dead_letters.py runs it against the stack)."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from profilestream.commands import export

Handler = Callable[[httpx.Request], httpx.Response]
BODY = b'{"kind":"profile","profile":{"user_id":"ada"}}\n{"kind":"event","messageId":"m1"}\n'


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    export.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["export", *argv])


def client(handler: Handler, seen: list[httpx.Request] | None = None) -> httpx.Client:
    def recording(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    return httpx.Client(transport=httpx.MockTransport(recording), base_url="http://query")


def run(handler: Handler, *argv: str) -> tuple[int, bytes, str, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    stdout, stderr = io.BytesIO(), io.StringIO()
    code = export.export(client(handler, seen), parse(*argv), stdout, stderr)
    return code, stdout.getvalue(), stderr.getvalue(), seen


def test_arguments() -> None:
    args = parse("ada")
    assert (args.user, args.format, args.output) == ("ada", "ndjson", None)
    args = parse("ada", "--format", "json", "-o", "out.json")
    assert (args.format, args.output) == ("json", Path("out.json"))
    with pytest.raises(SystemExit):
        parse("ada", "--format", "csv")
    with pytest.raises(SystemExit):
        parse()


def test_writes_the_answer_to_stdout_as_it_is() -> None:
    code, out, err, seen = run(
        lambda _: httpx.Response(200, content=BODY), "a/b c", "--format", "json"
    )
    assert (code, out, err) == (0, BODY, "")
    assert seen[0].url.raw_path == b"/v1/users/a%2Fb%20c/export?format=json"


def test_writes_a_file_only_once_complete(tmp_path: Path) -> None:
    target = tmp_path / "ada.ndjson"
    code, out, err, _ = run(lambda _: httpx.Response(200, content=BODY), "ada", "-o", str(target))
    assert code == 0 and out == b"" and target.read_bytes() == BODY
    assert f"exported ada to {target} ({len(BODY)} bytes)" in err
    assert list(tmp_path.iterdir()) == [target]


class BrokenStream(httpx.SyncByteStream):
    """An answer cut off after its first line, as when the server fails mid-export."""

    def __iter__(self) -> Iterator[bytes]:
        yield BODY.splitlines(keepends=True)[0]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def test_a_cut_off_export_fails_and_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "ada.ndjson"
    code, _, err, _ = run(
        lambda _: httpx.Response(200, stream=BrokenStream()), "ada", "-o", str(target)
    )
    assert code == 1 and "peer closed connection" in err
    assert list(tmp_path.iterdir()) == []


def test_an_api_refusal_is_the_reason_on_stderr(tmp_path: Path) -> None:
    def missing(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"success": False, "code": "not_found", "message": "no user 'ada'"}
        )

    code, out, err, _ = run(missing, "ada")
    assert (code, out) == (1, b"")
    assert err == "profilestream export: GET /v1/users/ada/export: no user 'ada'\n"
    code, _, _, _ = run(missing, "ada", "-o", str(tmp_path / "x"))
    assert code == 1 and list(tmp_path.iterdir()) == []


def test_an_unreachable_api_names_its_address() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    code, _, err, _ = run(refused, "ada")
    assert code == 1 and "cannot reach the query API at http://query" in err
