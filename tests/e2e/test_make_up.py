"""`make up` itself: `python -m profilestream up` prints the banner, serves, stops everything
on Ctrl-C (SIGINT), and a second run over the same data directory still has the data. A second
`make up` while one runs exits 1 at once, saying why (the data directory's lock, or the taken
ports and their holders), and leaves the running stack and its logs alone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.stack import ADMIN_TOKEN, WRITE_KEY, stack_environment

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def start_up(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "profilestream", "up"],
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


# --- a second `make up` while one runs ------------------------------------------------------------


@dataclass
class FirstUp:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    data_dir: Path
    log: Path

    @property
    def stack_logs(self) -> Path:
        return self.data_dir / "logs"


@pytest.fixture(scope="module")
def first_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstUp]:
    tmp_path = tmp_path_factory.mktemp("first-up")
    data_dir = tmp_path / "data"
    env = stack_environment(data_dir)
    log = tmp_path / "up.log"
    process = start_up(env, log)
    try:
        wait_for_banner(log, process)
        yield FirstUp(process, env, data_dir, log)
    finally:
        try:
            code = ctrl_c(process)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    assert code == 0, log.read_text()


def run_second_up(env: dict[str, str], log: Path, timeout: float = 30) -> tuple[int, str]:
    """Start another `python -m profilestream up`; its exit code and output (it must exit by
    itself)."""
    process = start_up(env, log)
    try:
        code = process.wait(timeout)
    finally:
        if process.poll() is None:  # it started a stack after all: stop it, then make sure
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
    return code, log.read_text()


def backend_logs(first: FirstUp) -> dict[str, str]:
    return {path.name: path.read_text(errors="replace") for path in first.stack_logs.glob("*.log")}


def assert_first_up_unharmed(first: FirstUp, logs_before: dict[str, str], user: str) -> None:
    assert first.process.poll() is None, first.log.read_text()
    up_output = first.log.read_text()
    assert "exited" not in up_output and "stopping" not in up_output, up_output
    logs_after = backend_logs(first)
    assert logs_after.keys() == logs_before.keys()
    # The broker and Valkey log little once up: nothing was appended (a second broker or Valkey
    # on the same ports would have written its start-up and "Address in use" here).
    for name in ("tansu.log", "valkey.log"):
        assert logs_after[name] == logs_before[name], logs_after[name]
    assert not any("in use" in text for text in logs_after.values())
    # Still serving: ingest takes an event and the query API has the profile.
    ingest_url = f"http://127.0.0.1:{first.env['PS_INGEST_PORT']}"
    query_url = f"http://127.0.0.1:{first.env['PS_QUERY_PORT']}"
    response = httpx.post(
        f"{ingest_url}/v1/identify", json={"userId": user}, auth=(WRITE_KEY, ""), timeout=10
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    eventually(
        lambda: httpx.get(f"{query_url}/v1/users/{user}", headers=headers, timeout=10).is_success
    )


def test_second_make_up_on_the_same_data_dir_is_refused_by_the_lock(
    first_up: FirstUp, tmp_path: Path
) -> None:
    before = backend_logs(first_up)
    started = time.monotonic()
    code, output = run_second_up(first_up.env, tmp_path / "second.log")
    assert code == 1, output
    assert time.monotonic() - started < 30
    assert (
        f"another 'make up' (pid {first_up.process.pid}) is using {first_up.data_dir.resolve()}; "
        "stop it first" in output
    ), output
    assert "starting" not in output and "Profilestream is up" not in output, output
    assert (first_up.data_dir / "up.lock").read_text().strip() == str(first_up.process.pid)
    assert_first_up_unharmed(first_up, before, "after-same-dir")


def test_second_make_up_on_the_same_ports_names_each_port_and_its_holder(
    first_up: FirstUp, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other-data"
    env = {
        **first_up.env,
        "PS_DATA_DIR": str(other_dir),
        "PS_CLICKHOUSE_DSN": f"chdb://{other_dir / 'clickhouse'}",
    }
    before = backend_logs(first_up)
    code, output = run_second_up(env, tmp_path / "second.log")
    assert code == 1, output
    assert "starting" not in output and "Profilestream is up" not in output, output
    assert not (other_dir / "logs").exists()

    kafka_port = first_up.env["PS_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1]
    found = re.search(
        rf"^port {kafka_port} \(Kafka broker\) is taken by pid (\d+): tansu\S* broker ",
        output,
        re.M,
    )
    assert found, output
    # The pid named is the first stack's broker, a child of the first `make up`.
    tansu = Path(f"/proc/{found.group(1)}")
    assert first_up.env["PS_KAFKA_BOOTSTRAP"] in (tansu / "cmdline").read_bytes().decode()
    assert f"PPid:\t{first_up.process.pid}\n" in (tansu / "status").read_text()
    redis_port = first_up.env["PS_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    for port, purpose in [
        (redis_port, "Valkey"),
        (first_up.env["PS_QUERY_PORT"], "query API"),
        (first_up.env["PS_INGEST_PORT"], "ingest API"),
    ]:
        assert re.search(rf"^port {port} \({purpose}\) is taken by pid \d+: ", output, re.M), output
    assert "stop the other stack" in output and "PS_KAFKA_BOOTSTRAP=" in output, output
    assert_first_up_unharmed(first_up, before, "after-same-ports")
