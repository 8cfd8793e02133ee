"""The audit log of management writes: who (the operator's token name and role), when, what and
on which target, with the request's id. A Redis stream (`ps:audit`), newest entries read first;
capped near PS_AUDIT_LOG_MAX_ENTRIES when that is above 0. Never a request body or a token."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from fastapi import Request

from infra.clients import store_unavailable_errors
from infra.settings import Settings
from profilestore.layout import AUDIT_LOG, text
from query.deps import Operator

log = logging.getLogger(__name__)

ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")


@dataclass(frozen=True)
class AuditEntry:
    id: str  # the stream entry's id: the `before` of the next page
    time: str
    operator: str
    role: str
    action: str
    target: str
    request_id: str | None


def entry_fields(
    operator: Operator, action: str, target: str, request_id: str | None, now: datetime
) -> dict[str, str]:
    return {
        "time": now.isoformat(timespec="milliseconds"),
        "operator": operator.name,
        "role": operator.role,
        "action": action,
        "target": target,
        "request_id": request_id or "",
    }


def parse_entry(entry_id: bytes | str, fields: dict[bytes | str, bytes | str]) -> AuditEntry:
    values = {text(k): text(v) for k, v in fields.items()}
    return AuditEntry(
        id=text(entry_id),
        time=values.get("time", ""),
        operator=values.get("operator", ""),
        role=values.get("role", ""),
        action=values.get("action", ""),
        target=values.get("target", ""),
        request_id=values.get("request_id") or None,
    )


async def append_entry(redis: aioredis.Redis, max_entries: int, fields: dict[str, str]) -> str:
    """Append and return the entry's id; trimmed to about `max_entries` (0: keep all)."""
    entry_id = await redis.xadd(
        AUDIT_LOG,
        fields,  # type: ignore[arg-type]
        maxlen=max_entries or None,
        approximate=True,
    )
    return text(entry_id)


async def record_audit(request: Request, operator: Operator, action: str, target: str) -> None:
    """Append one entry for a management write that the broker (or store) acknowledged.
    `action`: e.g. "user.delete", "token.create", "dead_letters.replay"; `target`: what it
    acted on (a user id, a token name, a property name).

    Called after the write took effect, so a failure here must not turn its answer into an
    error (a client would retry a write that happened): it is logged, loudly, instead."""
    settings: Settings = request.app.state.settings
    fields = entry_fields(
        operator,
        action,
        target,
        getattr(request.state, "request_id", None),
        datetime.now(UTC),
    )
    try:
        await append_entry(request.app.state.redis, settings.audit_log_max_entries, fields)
    except store_unavailable_errors() as exc:
        log.error(
            "audit entry lost (%s): %s by operator %s", type(exc).__name__, action, operator.name
        )


async def read_entries(
    redis: aioredis.Redis, limit: int, before: str | None
) -> tuple[list[AuditEntry], str | None]:
    """Up to `limit` entries, newest first, older than entry id `before` (exclusive); and the
    `before` of the next page, or None at the oldest entry."""
    newest = f"({before}" if before else "+"
    raw: Any = await redis.xrevrange(AUDIT_LOG, max=newest, min="-", count=limit + 1)
    entries = [parse_entry(entry_id, fields) for entry_id, fields in raw]
    if len(entries) > limit:
        return entries[:limit], entries[limit - 1].id
    return entries, None
