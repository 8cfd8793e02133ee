"""`make up` itself: `python -m infra up` prints the banner, serves, stops everything on Ctrl-C
(SIGINT), and a second run over the same data directory still has the data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import ADMIN_TOKEN, WRITE_KEY, eventually, stack_environment

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def start_up(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "infra", "up"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal: Ctrl-C reaches the whole group
        )


def wait_for_banner(log: Path, process: subprocess.Popen[bytes]) -> str:
    def banner() -> str | None:
        assert process.poll() is None, log.read_text()
        text = log.read_text()
        return text if "Ctrl-C stops everything" in text else None

    return eventually(banner, timeout=90, interval=0.2)


def ctrl_c(process: subprocess.Popen[bytes]) -> int:
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(60)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (read from /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited meanwhile
        if text in args:
            found.append(args)
    return found


def test_make_up_serves_stops_on_ctrl_c_and_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = stack_environment(data_dir)
    ingest_url = f"http://127.0.0.1:{env['PS_INGEST_PORT']}"
    query_url = f"http://127.0.0.1:{env['PS_QUERY_PORT']}"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    log = tmp_path / "up.log"

    process = start_up(env, log)
    try:
        banner = wait_for_banner(log, process)
        assert ingest_url in banner and query_url in banner
        assert WRITE_KEY in banner and ADMIN_TOKEN in banner and "curl" in banner
        response = httpx.post(
            f"{ingest_url}/v1/identify",
            json={"userId": "kept", "traits": {"plan": "pro"}},
            auth=(WRITE_KEY, ""),
        )
        assert response.status_code == 200, response.text
        eventually(lambda: httpx.get(f"{query_url}/v1/users/kept", headers=headers).is_success)
    finally:
        code = ctrl_c(process)
    assert code == 0, log.read_text()
    assert "stopped." in log.read_text()
    time.sleep(0.5)
    # Valkey is started with --dir under the data directory; nothing of the stack is left.
    assert processes_mentioning(str(data_dir)) == []
    assert processes_mentioning(env["PS_KAFKA_BOOTSTRAP"]) == []

    process = start_up(env, log)
    try:
        wait_for_banner_again = eventually(
            lambda: log.read_text().count("Ctrl-C stops everything") == 2, timeout=90
        )
        assert wait_for_banner_again
        profile = httpx.get(f"{query_url}/v1/users/kept", headers=headers).json()
        assert profile["custom"] == {"plan": "pro"}
        events = httpx.get(f"{query_url}/v1/users/kept/events", headers=headers).json()
        assert [e["name"] for e in events["events"]] == ["$identify"]
    finally:
        assert ctrl_c(process) == 0, log.read_text()
