"""Placeholder: replaced by the webhooks routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from infra.http import ApiError

PREFIX = "/webhooks"
router = APIRouter(prefix=PREFIX)


def render_error(request: Request, error: ApiError) -> Response | None:
    return None
