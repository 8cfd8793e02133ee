"""The ClickHouse version check at start-up: an older server is refused by name before any DDL
(which would fail on the JSON type with an error that does not say why)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.warehouse import UnsupportedClickHouse, check_version, ensure_schema


@pytest.mark.parametrize("version", ["25.3.1.2", "25.10.2.1", "26.9.2.1", "head", ""])
def test_a_new_enough_or_unparsable_version_passes(version: str) -> None:
    check_version(version)


@pytest.mark.parametrize("version", ["24.8.4.13", "25.2.9.1", "23.3.22.3"])
def test_an_old_version_is_refused_naming_both_versions(version: str) -> None:
    with pytest.raises(UnsupportedClickHouse) as refused:
        check_version(version)
    assert version in str(refused.value)
    assert "25.3 or newer" in str(refused.value)


class _Result:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.result_rows = rows


class _OldServer:
    """Answers `SELECT version()` as a 24.8 server; records every statement it is sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def query(self, sql: str, **_: Any) -> _Result:
        self.sent.append(sql)
        return _Result([("24.8.4.13",)])

    def command(self, sql: str, **_: Any) -> None:
        self.sent.append(sql)


def test_ensure_schema_refuses_an_old_server_before_any_ddl() -> None:
    server = _OldServer()
    with pytest.raises(UnsupportedClickHouse):
        ensure_schema(server)
    assert server.sent == ["SELECT version()"]
