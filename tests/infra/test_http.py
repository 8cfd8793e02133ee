"""infra/http.py's request ids: a plain X-Request-ID from the caller is kept, anything else
replaced by a fresh id; the id is in `request.state.request_id` and on every answer, the 500 of
an unhandled error and a 404 of no route included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from infra.http import install_error_handlers, install_request_ids, request_id_of


def app_with_request_ids() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str]:
        return {"seen": request.state.request_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    install_request_ids(app)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_with_request_ids(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


@pytest.mark.parametrize("incoming", ["abc", "req-42_x.y", "A" * 64])
def test_a_plain_incoming_id_is_kept(incoming: str) -> None:
    assert request_id_of(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "A" * 65, "has space", "a/b", "é", "x\ny"])
def test_anything_else_gets_a_fresh_id(incoming: str | None) -> None:
    fresh = request_id_of(incoming)
    assert fresh != incoming and len(fresh) == 32 and int(fresh, 16) >= 0


async def test_the_handler_sees_the_id_the_client_gets(client: httpx.AsyncClient) -> None:
    response = await client.get("/echo", headers={"X-Request-ID": "trace-7"})
    assert response.headers["X-Request-ID"] == "trace-7"
    assert response.json() == {"seen": "trace-7"}
    fresh = await client.get("/echo", headers={"X-Request-ID": "not ok!"})
    assert fresh.json()["seen"] == fresh.headers["X-Request-ID"] != "not ok!"
    other = await client.get("/echo")
    assert other.headers["X-Request-ID"] != fresh.headers["X-Request-ID"]


async def test_errors_carry_the_id_too(client: httpx.AsyncClient) -> None:
    for path, status in (("/boom", 500), ("/nowhere", 404)):
        response = await client.get(path, headers={"X-Request-ID": f"id-{status}"})
        assert response.status_code == status
        assert response.headers.get_list("X-Request-ID") == [f"id-{status}"]
        assert set(response.json()) == {"success", "code", "message", "errors"}
