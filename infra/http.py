"""HTTP pieces both services use: the JSON error body, exception handlers, request ids, and
constant-time credential checks."""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from collections.abc import Callable, Iterable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.clients import store_unavailable_errors
from schemas.api import ErrorBody
from schemas.messages import FieldError

log = logging.getLogger(__name__)

STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    500: "internal_error",
    415: "unsupported_media_type",
    422: "bad_request",
    429: "too_many_requests",
    503: "service_unavailable",
}


class ApiError(Exception):
    """Raised by handlers; rendered as `ErrorBody` with the given status."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[FieldError] | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message
        self.errors = errors or []
        self.headers = headers


def bad_parameter(field: str, exc: Exception) -> ApiError:
    """A 400 for a query parameter that does not parse, naming it with the parser's reason."""
    return ApiError(400, str(exc), [FieldError(field=field, reason=str(exc))])


def error_response(exc: ApiError) -> JSONResponse:
    body = ErrorBody(code=exc.code, message=exc.message, errors=exc.errors)
    return JSONResponse(body.model_dump(mode="json"), status_code=exc.status, headers=exc.headers)


# Renders an error in another shape (a third-party protocol's own), or None for `ErrorBody`.
ErrorRendering = Callable[[Request, ApiError], Response | None]


def install_error_handlers(app: FastAPI, rendering: ErrorRendering | None = None) -> None:
    def respond(request: Request, error: ApiError) -> Response:
        rendered = rendering(request, error) if rendering is not None else None
        return rendered if rendered is not None else error_response(error)

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return respond(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return respond(
            request,
            ApiError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {})),
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldError(
                field=".".join(str(p) for p in err["loc"] if p not in ("query", "path", "body")),
                reason=err["msg"],
            )
            for err in exc.errors()
        ]
        return respond(request, ApiError(400, "invalid request parameters", errors))

    async def on_store_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("store unavailable: %s", type(exc).__name__)
        return respond(
            request,
            ApiError(503, "a data store is unavailable, retry later", headers={"Retry-After": "2"}),
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Never echo the exception: it may carry stored data or addresses.
        log.error("unhandled %s", type(exc).__name__, exc_info=exc)
        return respond(request, ApiError(500, "internal error", code="internal_error"))

    app.add_exception_handler(ApiError, on_api_error)
    # Store outages get handlers of their own: Starlette sends a catch-all `Exception` handler's
    # answer and then re-raises, and uvicorn closes the connection, which a client can see as a
    # reset instead of the 503.
    for store_error in store_unavailable_errors():
        app.add_exception_handler(store_error, on_store_unavailable)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)


def wrap_outermost(app: FastAPI, wrapper: Callable[[ASGIApp], ASGIApp]) -> None:
    """Put `wrapper` around the app's whole middleware stack, outside Starlette's
    ServerErrorMiddleware (which answers unhandled errors with a 500 that no middleware added
    by `add_middleware` sees). The last one installed is the outermost."""
    build_inner = app.build_middleware_stack

    def build() -> ASGIApp:
        return wrapper(build_inner())

    setattr(app, "build_middleware_stack", build)  # noqa: B010  # an instance override


REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept if it is this plain (a proxy's or a client's correlation id), so it
# can go to logs and the audit log as is; anything else gets a fresh id.
_ACCEPTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_of(incoming: str | None) -> str:
    """The incoming X-Request-ID if it is acceptable, else a new uuid4 in hex."""
    if incoming is not None and _ACCEPTED_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Sets `request.state.request_id` and answers it as X-Request-ID, on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (v for k, v in scope["headers"] if k == b"x-request-id"),
            None,
        )
        request_id = request_id_of(incoming.decode("latin-1") if incoming is not None else None)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *(h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"),
                    header,
                ]
            await send(message)

        await self.app(scope, receive, send_with_id)


def install_request_ids(app: FastAPI) -> None:
    """Every request gets an id (the caller's X-Request-ID if plain, else a new one) in
    `request.state.request_id`, answered in X-Request-ID, 500s included."""
    wrap_outermost(app, RequestIdMiddleware)


def matching_secret(candidate: str, secrets: Iterable[str]) -> str | None:
    """The secret equal to `candidate`, compared in constant time against every secret."""
    found: str | None = None
    encoded = candidate.encode()
    for secret in secrets:
        if hmac.compare_digest(encoded, secret.encode()):
            found = secret
    return found
