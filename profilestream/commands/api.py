"""The query API as the command's operator calls it: its URL and token from the settings
(PS_QUERY_URL, PS_TOKEN; by default the local query service and PS_ADMIN_TOKEN)."""

from __future__ import annotations

import httpx

from infra.settings import Settings


class ApiFailure(Exception):
    """The query API refused a call or could not be reached; the message says why."""


def query_url(settings: Settings) -> str:
    return settings.query_url.rstrip("/") or f"http://{settings.query_host}:{settings.query_port}"


def query_client(settings: Settings, timeout_s: float = 60.0) -> httpx.Client:
    token = settings.token.get_secret_value() or settings.admin_token.get_secret_value()
    return httpx.Client(
        base_url=query_url(settings),
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout_s,
    )


def explain(response: httpx.Response) -> str:
    """An error answer of the API as one line: its message and each field's reason."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    message = body.get("message") or body.get("detail") or f"HTTP {response.status_code}"
    fields = "; ".join(
        f"{e.get('field')}: {e.get('reason')}"
        for e in body.get("errors") or []
        if isinstance(e, dict)
    )
    return f"{message} ({fields})" if fields else str(message)


def checked(response: httpx.Response) -> httpx.Response:
    """`response` if it succeeded; ApiFailure naming the reason otherwise."""
    if response.is_success:
        return response
    raise ApiFailure(f"{response.request.method} {response.request.url.path}: {explain(response)}")


def failure_message(client: httpx.Client, exc: ApiFailure | httpx.HTTPError) -> str:
    """What a failed call of the query API prints: the API's reason, or why it was not reached."""
    if isinstance(exc, httpx.TransportError):
        return f"cannot reach the query API at {client.base_url} ({type(exc).__name__}: {exc})"
    return str(exc)
