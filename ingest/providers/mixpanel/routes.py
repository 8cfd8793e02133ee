"""Placeholder: replaced by the mixpanel routes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from infra.http import ApiError

PREFIX = "/mixpanel"
router = APIRouter(prefix=PREFIX)


def render_error(request: Request, error: ApiError) -> Response | None:
    return None
