"""What `make up` checks before it spawns anything: that no other `make up` uses the data
directory (an flock on `<data dir>/up.lock`, held for the supervisor's lifetime), and that each
port the stack will listen on is free, and if not, who holds it. The messages are pure functions
of (port, purpose, holder) and (pid, data dir); the edges at the end (the lock, a test bind,
psutil) are the only parts that touch the machine."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.settings import Settings
from profilestream.embedded import host_port

LOCK_FILE = "up.lock"


@dataclass(frozen=True)
class Listener:
    """A port the stack will listen on, what it is for, and the setting that moves it."""

    host: str
    port: int
    purpose: str
    setting: str  # e.g. "PS_KAFKA_BOOTSTRAP=127.0.0.1:<port>"


@dataclass(frozen=True)
class Holder:
    """The process listening on a port."""

    pid: int
    cmdline: tuple[str, ...]


def stack_listeners(settings: Settings) -> list[Listener]:
    """Every port `make up` will listen on, in start order."""
    kafka_host, kafka_port = host_port(settings.kafka_bootstrap)
    redis_host, redis_port = host_port(settings.redis_url)
    listeners = [
        Listener(kafka_host, kafka_port, "Kafka broker", f"PS_KAFKA_BOOTSTRAP={kafka_host}:<port>"),
        Listener(redis_host, redis_port, "Valkey", f"PS_REDIS_URL=redis://{redis_host}:<port>/0"),
        Listener(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            "worker metrics",
            "PS_WORKER_METRICS_PORT=<port>",
        ),
    ]
    if settings.serve_query_in_materializer:
        listeners.append(
            Listener(settings.query_host, settings.query_port, "query API", "PS_QUERY_PORT=<port>")
        )
    listeners.append(
        Listener(settings.ingest_host, settings.ingest_port, "ingest API", "PS_INGEST_PORT=<port>")
    )
    return listeners


def short_command(cmdline: Sequence[str], limit: int = 100) -> str:
    """`/long/path/bin/tansu broker --listener-url …` -> `tansu broker --listener-url …`. Empty
    arguments go: a process that retitles itself (Valkey) pads its command line with them."""
    args = [arg for arg in cmdline if arg.strip()]
    if not args:
        return "?"
    words = [Path(args[0]).name or args[0], *args[1:]]
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def taken_message(port: int, purpose: str, holder: Holder | None) -> str:
    if holder is None:
        return f"port {port} ({purpose}) is taken by another process"
    return f"port {port} ({purpose}) is taken by pid {holder.pid}: {short_command(holder.cmdline)}"


def advice(taken: Sequence[Listener]) -> str:
    settings = " ".join(listener.setting for listener in taken)
    return (
        "nothing was started: stop the other stack first (Ctrl-C where it runs), "
        f"or run this one on free ports: {settings} make up"
    )


def lock_message(holder_pid: int | None, data_dir: Path) -> str:
    who = f" (pid {holder_pid})" if holder_pid is not None else ""
    return (
        f"another 'make up'{who} is using {data_dir}; stop it first "
        "(a second stack needs its own PS_DATA_DIR and its own ports)"
    )


def clash_report(listeners: Sequence[Listener]) -> str:
    """The ports the settings give to two parts of the stack at once (empty when none)."""
    by_port: dict[int, list[Listener]] = {}
    for listener in listeners:
        by_port.setdefault(listener.port, []).append(listener)
    return "\n".join(
        f"port {port} is set for both {' and '.join(x.purpose for x in same)}; give each its own "
        f"({', '.join(x.setting.partition('=')[0] for x in same)})"
        for port, same in by_port.items()
        if len(same) > 1
    )


def port_report(taken: Sequence[tuple[Listener, Holder | None]]) -> str:
    """What `make up` prints when ports are taken (empty when none is)."""
    if not taken:
        return ""
    lines = [taken_message(listener.port, listener.purpose, holder) for listener, holder in taken]
    lines.append(advice([listener for listener, _ in taken]))
    return "\n".join(lines)


# --- the edges ----------------------------------------------------------------------------------


class DataDirLock:
    """An exclusive flock on `<data dir>/up.lock`, holding the owner's pid. The kernel drops it
    when the process exits, however it exits (kill -9 included), so a stale file never blocks.
    The descriptor is not inherited by the children (Python opens files non-inheritable)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock | int | None:
        """The lock, or the holder's pid (None if unreadable) when another process holds it."""
        data_dir.mkdir(parents=True, exist_ok=True)
        # Not O_TRUNC: the holder's pid must survive until we own the lock.
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            finally:
                os.close(fd)
            return int(text) if text.isdigit() else None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = -1


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now. SO_REUSEADDR as the servers set it, so a
    port left in TIME_WAIT by a stack that just stopped counts as free."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return True  # the server will report the bad host itself
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
    return True


def find_holder(port: int) -> Holder | None:
    """The process listening on TCP `port`, or None when it cannot be seen (another user's
    process without the permission to look, or it exited meanwhile)."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    pids = {
        c.pid
        for c in connections
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    }
    for pid in sorted(pids):
        try:
            process = psutil.Process(pid)
            return Holder(pid, tuple(process.cmdline() or [process.name()]))
        except psutil.Error:
            continue
    return None


def taken_ports(settings: Settings) -> list[tuple[Listener, Holder | None]]:
    return [
        (listener, find_holder(listener.port))
        for listener in stack_listeners(settings)
        if not port_free(listener.host, listener.port)
    ]
