"""A store that drops its connections gives a clean 503 with Retry-After, with the usual error
body, and no exception escapes the app (uvicorn would close the connection on one, which a
client sees as a reset instead of the 503)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis.exceptions

from infra.settings import Settings
from query.app import create_app

SETTINGS = Settings.from_environment({"PS_ADMIN_TOKEN": "the-token"})


class Failing:
    """Stands in for a store whose every call raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        async def call(*_: Any, **__: Any) -> Any:
            raise self.error

        return call


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Connection closed by server."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
    ],
    ids=["connection", "timeout"],
)
async def test_redis_outage_is_503_and_the_exception_stays_inside(error: Exception) -> None:
    app = create_app(SETTINGS, Failing(error), Failing(error), Failing(error))  # type: ignore[arg-type]
    # raise_app_exceptions (the default) makes an escaping exception fail this test.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://query",
        headers={"Authorization": "Bearer the-token"},
    ) as client:
        response = await client.get("/v1/users/ada")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert response.json()["code"] == "service_unavailable"
    assert "Connection closed" not in response.text and "Timeout" not in response.text
