"""What a page in Chromium did on the network and in its console, for the browser-SDK tests:
Playwright's request events plus a CDP session (CORS preflights, beacon bodies), summarized
per request with ingest's answer, and printed one line each (`compact`)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlsplit

# Request headers worth reporting (lower case); the rest are the browser's own.
HEADERS_OF_INTEREST = (
    "content-type",
    "authorization",
    "anonymousid",
    "sentat",
    "origin",
    "x-retry-count",
    "cookie",
    "access-control-request-method",
    "access-control-request-headers",
)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _decoded_authorization(value: str | None) -> str | None:
    """`Basic <b64>` shown with the decoded credentials, so the summary says which key."""
    if not value or not value.startswith("Basic "):
        return value
    try:
        return f"{value} (= {base64.b64decode(value[6:]).decode()!r})"
    except ValueError:
        return value


def _shown(name: str, value: str) -> str | None:
    """A request header as the summary shows it: credentials decoded, cookies by name only."""
    if name == "authorization":
        return _decoded_authorization(value)
    if name == "cookie":
        return "names: " + ", ".join(sorted(c.split("=", 1)[0].strip() for c in value.split(";")))
    return value


def json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Wire:
    """Everything the page did on the network and in its console. Playwright's request events
    give what the page sent and what it got back; a CDP session adds the CORS preflights, which
    Playwright does not report, and the bodies of beacons, which it reports without a body.

    Playwright's sync API delivers events only while a Playwright call runs, so every probe
    first lets the page run for a moment (`pump`)."""

    page: Any
    cdp: Any
    ingest: str
    site: str
    requests: list[Any] = field(default_factory=list)
    finished: set[int] = field(default_factory=set)  # id() of requests answered or failed
    cdp_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    cdp_order: list[str] = field(default_factory=list)
    console: list[dict[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, context: Any, page: Any, ingest: str, site: str) -> Self:
        cdp = context.new_cdp_session(page)
        wire = cls(page=page, cdp=cdp, ingest=ingest, site=site)
        page.on("request", lambda request: wire.requests.append(request))
        # only these are asked for their response, which would wait for one that hangs
        page.on("requestfinished", lambda request: wire.finished.add(id(request)))
        page.on("requestfailed", lambda request: wire.finished.add(id(request)))
        page.on(
            "console",
            lambda message: wire.console.append({"type": message.type, "text": message.text}),
        )
        page.on("pageerror", lambda error: wire.page_errors.append(str(error)))
        cdp.on("Network.requestWillBeSent", wire._cdp_request)
        cdp.on("Network.requestWillBeSentExtraInfo", wire._cdp_request_extra)
        cdp.on("Network.responseReceived", wire._cdp_response)
        cdp.on("Network.responseReceivedExtraInfo", wire._cdp_response_extra)
        cdp.on("Network.loadingFailed", wire._cdp_failed)
        cdp.send("Network.enable")
        return wire

    def pump(self, ms: float = 50) -> None:
        self.page.wait_for_timeout(ms)

    def response_of(self, request: Any) -> Any:
        """The response, None while the request is in flight or if it failed."""
        return request.response() if id(request) in self.finished else None

    # --- CDP: every request, preflights included --------------------------------------------
    def _cdp_entry(self, request_id: str) -> dict[str, Any]:
        return self.cdp_requests.setdefault(request_id, {"request_id": request_id})

    def _cdp_request(self, params: dict[str, Any]) -> None:
        self.cdp_order.append(params["requestId"])
        entry = self._cdp_entry(params["requestId"])
        entry.update(
            url=params["request"]["url"],
            method=params["request"]["method"],
            type=params.get("type"),
            has_body=bool(params["request"].get("hasPostData")),
            body=params["request"].get("postData"),
        )

    def _cdp_request_extra(self, params: dict[str, Any]) -> None:
        headers = {k.lower(): v for k, v in params.get("headers", {}).items()}
        self._cdp_entry(params["requestId"])["request_headers"] = headers

    def _cdp_response(self, params: dict[str, Any]) -> None:
        response = params["response"]
        entry = self._cdp_entry(params["requestId"])
        entry["status"] = response["status"]
        entry.setdefault("response_headers", {k.lower(): v for k, v in response["headers"].items()})

    def _cdp_response_extra(self, params: dict[str, Any]) -> None:
        entry = self._cdp_entry(params["requestId"])
        entry["status"] = params.get("statusCode", entry.get("status"))
        entry["response_headers"] = {k.lower(): v for k, v in params.get("headers", {}).items()}

    def _cdp_failed(self, params: dict[str, Any]) -> None:
        entry = self._cdp_entry(params["requestId"])
        entry["failed"] = params.get("errorText")
        if params.get("corsErrorStatus"):
            entry["cors_error"] = params["corsErrorStatus"].get("corsError")

    def _cdp_body(self, entry: dict[str, Any]) -> str | None:
        """The body CDP saw; a Blob's (a beacon's) has to be asked for."""
        if entry.get("body") is None and entry.get("has_body"):
            try:
                answer = self.cdp.send(
                    "Network.getRequestPostData", {"requestId": entry["request_id"]}
                )
                entry["body"] = answer.get("postData")
            except Exception as exc:  # the browser no longer has it
                entry["body"] = f"<no body from CDP: {exc}>"
        return entry.get("body")

    def _cdp_response_body(self, entry: dict[str, Any]) -> Any:
        try:
            answer = self.cdp.send("Network.getResponseBody", {"requestId": entry["request_id"]})
        except Exception as exc:  # not kept by the browser
            return f"<no body from CDP: {exc}>"
        if answer.get("base64Encoded"):
            return base64.b64decode(answer["body"]).decode(errors="replace")
        return json_or_text(answer.get("body"))

    # --- what the page sent to ingest ----------------------------------------------------------
    def to_ingest(self) -> list[Any]:
        return [r for r in self.requests if origin_of(r.url) == self.ingest]

    def cdp_entry_of(self, request: Any) -> dict[str, Any]:
        """CDP's record of a Playwright request, matched by method, URL and order (both see a
        page's requests in the order it made them); {} if CDP did not see it."""
        key = (request.method, request.url)
        same = [r for r in self.requests if (r.method, r.url) == key]
        cdp_same = [
            entry
            for entry in (self.cdp_requests[i] for i in self.cdp_order)
            if (entry.get("method"), entry.get("url")) == key
        ]
        index = next(n for n, r in enumerate(same) if r is request)
        return cdp_same[index] if index < len(cdp_same) else {}

    def body_of(self, request: Any) -> str | None:
        """Playwright's post_data, else CDP's (Playwright gives a beacon no body)."""
        if request.post_data is not None or request.method != "POST":
            return request.post_data
        entry = self.cdp_entry_of(request)
        return self._cdp_body(entry) if entry else None

    def foreign_urls(self) -> list[str]:
        """Requests to anything but the static site and ingest (a CDN, a vendor's API)."""
        urls = [r.url for r in self.requests] + [
            e["url"] for e in self.cdp_requests.values() if "url" in e
        ]
        return sorted({u for u in urls if origin_of(u) not in (self.site, self.ingest)})

    def posts(self, path_prefix: str = "/") -> list[Any]:
        """The POSTs to ingest so far whose path starts with `path_prefix`, in order."""
        self.pump()
        return [
            r
            for r in self.to_ingest()
            if r.method == "POST" and urlsplit(r.url).path.startswith(path_prefix)
        ]

    def json_posts(self) -> list[tuple[Any, Any]]:
        """(request, its body read as JSON, else as text) of each POST to ingest so far."""
        return [(r, json_or_text(self.body_of(r))) for r in self.posts()]

    def answered(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request to ingest that got an answer."""
        self.pump()
        return [
            (r.method, urlsplit(r.url).path, self.response_of(r).status)
            for r in self.to_ingest()
            if self.response_of(r) is not None
        ]

    def preflights(self) -> list[dict[str, Any]]:
        return [
            e
            for e in self.cdp_requests.values()
            if e.get("method") == "OPTIONS" or e.get("type") == "Preflight"
        ]

    def summary(self) -> dict[str, Any]:
        """What went to ingest (requests, answers, preflights), the console and page errors."""
        self.pump()
        sent = []
        for request in self.to_ingest():
            # CDP's are the headers on the wire; Playwright's all_headers() would wait for them
            # and never returns for some beacons, so its provisional headers are the fallback
            entry = self.cdp_entry_of(request)
            headers = {**request.headers, **entry.get("request_headers", {})}
            response = self.response_of(request)
            answer: dict[str, Any] | None = None
            if response is not None or entry.get("status") is not None:
                # Playwright reports no answer to a beacon refused with a 4xx; CDP does
                response_headers = {
                    **(response.headers if response is not None else {}),
                    **entry.get("response_headers", {}),
                }
                if response is None or request.resource_type == "ping":
                    body: Any = self._cdp_response_body(entry)
                else:
                    try:
                        body = json_or_text(response.text())
                    except Exception as exc:  # a CORS-blocked answer may have no body
                        body = f"<unreadable: {type(exc).__name__}>"
                answer = {
                    "status": response.status if response is not None else entry["status"],
                    "headers": {
                        k: v
                        for k, v in response_headers.items()
                        if k.startswith("access-control-")
                        or k in ("content-type", "retry-after", "vary")
                    },
                    "body": body,
                }
            sent.append(
                {
                    "method": request.method,
                    "url": request.url.replace(self.ingest, "<ingest>"),
                    "resource_type": request.resource_type,
                    "headers": {
                        k: _shown(k, headers[k]) for k in HEADERS_OF_INTEREST if k in headers
                    },
                    "body": json_or_text(self.body_of(request)),
                    "answer": answer,
                    "failure": request.failure,
                }
            )
        preflights = [
            {
                "url": p.get("url", "").replace(self.ingest, "<ingest>"),
                "request_headers": {
                    k: v
                    for k, v in p.get("request_headers", {}).items()
                    if k in HEADERS_OF_INTEREST
                },
                "status": p.get("status"),
                "response_headers": {
                    k: v
                    for k, v in p.get("response_headers", {}).items()
                    if k.startswith("access-control-") or k == "vary"
                },
                "failed": p.get("failed"),
                "cors_error": p.get("cors_error"),
            }
            for p in self.preflights()
        ]
        cors_errors = [
            {"url": e.get("url"), "method": e.get("method"), "cors_error": e["cors_error"]}
            for e in self.cdp_requests.values()
            if e.get("cors_error")
        ]
        return {
            "site": self.site,
            "ingest": self.ingest,
            "requests_to_ingest": sent,
            "preflights": preflights,
            "cors_errors": cors_errors,
            "other_origins": self.foreign_urls(),
            "console": self.console,
            "page_errors": self.page_errors,
        }


def compact(summary: dict[str, Any]) -> str:
    """One line per request and preflight, for `pytest -s` and failure reports."""
    lines = []
    for p in summary["preflights"]:
        asked = p["request_headers"].get("access-control-request-headers", "")
        allowed = p["response_headers"].get("access-control-allow-headers", "-")
        lines.append(
            f"  PREFLIGHT {p['url']} asks [{asked}] -> {p['status']} allow-headers [{allowed}]"
            + (f" FAILED {p['failed']} {p['cors_error'] or ''}" if p["failed"] else "")
        )
    for r in summary["requests_to_ingest"]:
        body = r["body"]
        if isinstance(body, dict) and isinstance(body.get("batch"), list):
            what = "batch of " + ", ".join(
                str(e.get("event") or e.get("type")) for e in body["batch"] if isinstance(e, dict)
            )
        elif isinstance(body, dict):
            what = str(body.get("event") or body.get("type") or sorted(body))
        else:
            what = "-" if body is None else f"{len(str(body))} chars"
        answer = r["answer"]
        status = answer["status"] if answer else "no answer seen"
        answer_body = json.dumps(answer["body"])[:160] if answer else ""
        lines.append(
            f"  {r['method']} {r['url']} [{r['resource_type']}] "
            f"ct={r['headers'].get('content-type', '-')!s} "
            f"auth={'yes' if 'authorization' in r['headers'] else 'no'} "
            f"{what} -> {status} {answer_body}"
            + (f" FAILED {r['failure']}" if r["failure"] else "")
        )
    for c in summary["cors_errors"]:
        lines.append(f"  CORS {c['method']} {c['url']}: {c['cors_error']}")
    for c in summary["console"]:
        lines.append(f"  console.{c['type']}: {c['text'][:200]}")
    for e in summary["page_errors"]:
        lines.append(f"  pageerror: {e[:200]}")
    if summary["other_origins"]:
        lines.append(f"  OTHER ORIGINS: {summary['other_origins']}")
    return "\n".join(lines)
