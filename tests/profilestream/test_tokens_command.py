"""`profilestream tokens create|list|revoke` against the session stack's query API (PS_QUERY_URL,
PS_TOKEN), as an operator runs it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from infra.settings import get_settings
from profilestream.cli import main
from tests.support.stack import ADMIN_TOKEN, RunningStack

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """The command reads its settings once per process (cached): each run here reads them
    again, and none is left for later tests."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stack: RunningStack,
    *argv: str,
    token: str = ADMIN_TOKEN,
) -> tuple[int, str, str]:
    monkeypatch.setenv("PS_QUERY_URL", stack.query_url)
    monkeypatch.setenv("PS_TOKEN", token)
    get_settings.cache_clear()
    code = main(["tokens", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def me(stack: RunningStack, token: str) -> httpx.Response:
    return httpx.get(
        f"{stack.query_url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def test_create_list_revoke(
    running_stack: RunningStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = run(monkeypatch, capsys, running_stack, "create", name, "--role", "analyst")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("ps_") and "\n" not in token
    assert "not shown again" in err
    assert me(running_stack, token).json() == {"name": name, "role": "analyst"}

    code, out, err = run(monkeypatch, capsys, running_stack, "list")
    assert code == 0, err
    [row] = [line for line in out.splitlines() if name in line]
    assert "analyst" in row and "admin" in row  # its role, and who made it
    assert token not in out

    code, out, err = run(monkeypatch, capsys, running_stack, "revoke", name)
    assert code == 0 and name in out
    assert me(running_stack, token).status_code == 401

    code, out, err = run(monkeypatch, capsys, running_stack, "revoke", name)
    assert code == 1 and f"no token named {name!r}" in err


def test_refusals_exit_1_with_the_reason(
    running_stack: RunningStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, _err = run(monkeypatch, capsys, running_stack, "create", name, "--role", "analyst")
    analyst = out.strip()

    code, out, err = run(
        monkeypatch, capsys, running_stack, "create", "x" + name, "--role", "admin", token=analyst
    )
    assert code == 1 and out == "" and "admin role" in err

    code, out, err = run(monkeypatch, capsys, running_stack, "create", name, "--role", "admin")
    assert code == 1 and "already taken" in err

    code, out, err = run(
        monkeypatch, capsys, running_stack, "create", "bad name", "--role", "admin"
    )
    assert code == 1 and "name:" in err

    code, out, err = run(monkeypatch, capsys, running_stack, "list", token="wrong")
    assert code == 1 and "invalid token" in err and "wrong" not in err


def test_an_unreachable_api_exits_1(
    running_stack: RunningStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PS_QUERY_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PS_TOKEN", ADMIN_TOKEN)
    code = main(["tokens", "list"])
    _out, err = capsys.readouterr()
    assert code == 1 and "cannot reach the query API at http://127.0.0.1:9" in err
