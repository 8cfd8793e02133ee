"""A reverse proxy on its own loopback port in front of ingest, for the SDK retry tests: every
request is forwarded unchanged, and the first `fail_first` requests whose path starts with
`fail_prefix` are answered 503 *after* ingest accepted them, as when a load balancer times out
on a request that got through. The SDK resends the same events, which must count once.
Records every exchange (method, path, ingest's status, the status returned)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

# Hop-by-hop headers (RFC 9110 7.6.1) and those httpx sets itself.
SKIPPED_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class Exchange:
    method: str
    path: str
    upstream_status: int
    returned_status: int


@dataclass
class ProxyLog:
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if e.returned_status != e.upstream_status]


@dataclass
class RunningProxy:
    url: str
    log: ProxyLog


@contextmanager
def forwarding_proxy(
    target: str, fail_prefix: str = "/", fail_first: int = 1
) -> Iterator[RunningProxy]:
    """Serve a proxy to `target` (e.g. http://127.0.0.1:8000) at http://127.0.0.1:<free port>."""
    log = ProxyLog()
    remaining = [fail_first]
    client = httpx.Client(base_url=target, timeout=30)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # the base's name
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in SKIPPED_HEADERS]
            upstream = client.request(self.command, self.path, content=body, headers=headers)
            status = upstream.status_code
            with log.lock:
                fail = (
                    self.command != "OPTIONS"
                    and self.path.startswith(fail_prefix)
                    and 200 <= status < 300
                    and remaining[0] > 0
                )
                if fail:
                    remaining[0] -= 1
                returned = 503 if fail else status
                log.exchanges.append(Exchange(self.command, self.path, status, returned))
            content = (
                b'{"error":"proxy: injected failure after forwarding"}'
                if fail
                else upstream.content
            )
            self.send_response(returned)
            for name, value in upstream.headers.multi_items():
                if name.lower() in SKIPPED_HEADERS or name.lower() in (
                    "content-encoding",
                    "content-type",
                ):
                    continue
                self.send_header(name, value)
            self.send_header(
                "Content-Type",
                "application/json"
                if fail
                else upstream.headers.get("content-type", "application/octet-stream"),
            )
            if fail:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_OPTIONS = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningProxy(f"http://127.0.0.1:{server.server_address[1]}", log)
    finally:
        server.shutdown()
        server.server_close()
        client.close()
