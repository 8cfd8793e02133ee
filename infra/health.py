"""Health endpoints both HTTP services serve: `/healthz` (the process answers) and `/readyz`
(what it depends on is reachable). Unauthenticated for orchestrators and load balancers, so
they say nothing beyond each check's name and "ok" or "down": no address, version or error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

# A check returns when its dependency answered and raises (or hangs) when it did not.
Check = Callable[[], Awaitable[Any]]

CHECK_TIMEOUT_S = 2.0  # /readyz answers within about this, whatever hangs
ABANDON_AFTER_S = 30.0
OK = "ok"
DOWN = "down"


class Readiness:
    """Runs named checks concurrently, each bounded by `timeout_s`. A check that times out is
    not cancelled (cancelling a half-made connection can leak it): it finishes in the
    background within its client's own timeouts, and the next /readyz waits on that same run
    instead of starting another, so a dead dependency never piles up connection attempts. A
    run still going after `abandon_after_s` (a client without a timeout of its own, facing a
    frozen server) is cancelled and the check starts again."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        timeout_s: float = CHECK_TIMEOUT_S,
        abandon_after_s: float = ABANDON_AFTER_S,
    ) -> None:
        self._checks = dict(checks)
        self._timeout_s = timeout_s
        self._abandon_after_s = abandon_after_s
        self._running: dict[str, tuple[asyncio.Task[Any], float]] = {}  # name -> run, start

    async def states(self) -> dict[str, str]:
        """Each check's name and OK or DOWN."""
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._state(name) for name in names))
        return dict(zip(names, outcomes, strict=True))

    async def _state(self, name: str) -> str:
        loop = asyncio.get_running_loop()
        task, started = self._running.get(name, (None, 0.0))
        if task is not None and not task.done() and loop.time() - started > self._abandon_after_s:
            task.cancel()
            task = None
        if task is None or task.done() or task.get_loop() is not loop:
            task = asyncio.ensure_future(self._checks[name]())
            task.add_done_callback(_retrieve_exception)
            self._running[name] = (task, loop.time())
        try:
            await asyncio.wait_for(asyncio.shield(task), self._timeout_s)
        except TimeoutError:
            log.warning("readiness check %s: no answer within %.1fs", name, self._timeout_s)
            return DOWN
        except Exception as exc:
            # The type only: an error's text may name an address.
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            return DOWN
        return OK


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    # A check that failed after its /readyz gave up: its error is not "never retrieved".
    if not task.cancelled():
        task.exception()


def readiness_body(
    states: Mapping[str, str], ready_states: frozenset[str] = frozenset({OK})
) -> tuple[int, dict[str, Any]]:
    """The status code and body of /readyz for these check states; ready when every state is
    one of `ready_states`."""
    ready = all(state in ready_states for state in states.values())
    return (200 if ready else 503), {
        "status": "ready" if ready else "not ready",
        "checks": dict(states),
    }


def health_router(readiness: Readiness) -> APIRouter:
    """`GET /healthz` and `GET /readyz` with these checks, outside the OpenAPI document."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        status, body = readiness_body(await readiness.states())
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    return router
