"""Pure: what PostHog's SDKs read back: the capture reply, the feature-flags reply (no flags:
we record the variations served, we do not evaluate flags), the remote config posthog-js loads
at start, and the error body (PostHog's shape plus our `errors` list)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from infra.http import ApiError
from ingest.providers.common import FIELD_OF_STATUS, named_errors

# Exactly this, with status 200: posthog-python and posthog-js treat any other status as a
# failure and resend (a 204 too). Never `quota_limited`: posthog-js would drop events for 60 s.
CAPTURE_OK: dict[str, Any] = {"status": 1}

# Everything optional off, so posthog-js loads no other script and makes no other call:
# no session recording, surveys, heatmaps, product tours, dead clicks, exception or console
# capture, site apps. Autocapture is left to the app's own `autocapture` option. gzip-js:
# posthog-js then gzips its bodies (without a config it sends plain JSON).
REMOTE_CONFIG: dict[str, Any] = {
    "supportedCompression": ["gzip", "gzip-js"],
    "hasFeatureFlags": True,
    "analytics": {"endpoint": "/e/"},
    "autocapture_opt_out": False,
    "autocaptureExceptions": False,
    "errorTracking": {"autocaptureExceptions": False, "captureExtensionExceptions": False},
    "capturePerformance": False,
    "captureDeadClicks": False,
    "elementsChainAsString": True,
    "heatmaps": False,
    "sessionRecording": False,
    "surveys": False,
    "productTours": False,
    "conversations": False,
    "logs": {"captureConsoleLogs": False},
    "siteApps": [],
    "defaultIdentifiedOnly": True,
    "toolbarParams": {},
    "isAuthenticated": False,
}


def remote_config(token: str) -> dict[str, Any]:
    return {"token": token, **REMOTE_CONFIG}


def remote_config_script(token: str) -> str:
    """/array/<token>/config.js: the script sets what posthog-js's `remoteConfig` getter reads,
    `window._POSTHOG_REMOTE_CONFIG[token].config`."""
    token_js = orjson.dumps(token).decode()
    config_js = orjson.dumps({"config": remote_config(token), "siteApps": []}).decode()
    return (
        "(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
        f"window._POSTHOG_REMOTE_CONFIG[{token_js}]={config_js};}})();\n"
    )


def flags_reply(token: str, with_config: bool) -> dict[str, Any]:
    """/flags and /decide: no flags, in both the v2+ (`flags`) and the legacy (`featureFlags`)
    shapes; with the remote config for the SDKs that read it from here (/decide,
    `/flags?config=true`)."""
    reply: dict[str, Any] = {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
    }
    return {**remote_config(token), **reply} if with_config else reply


def error_type(status: int) -> str:
    if status in (401, 403):
        return "authentication_error"
    if status == 429:
        return "throttled_error"
    if status >= 500:
        return "server_error"
    return "validation_error"


# The field an error without field errors is about (a bad gzip stream, a body too large, an
# unknown path), so that every 4xx names one.
FIELDS = {**FIELD_OF_STATUS, 429: "events", 401: "token", 403: "token"}


def error_body(error: ApiError) -> dict[str, Any]:
    """PostHog's error shape (`type`, `code`, `detail`, `attr`: posthog-python reports
    `detail`) with our `errors`: [{field, reason}]."""
    named = named_errors(error, FIELDS) if 400 <= error.status < 500 else error.errors
    errors = [e.model_dump() for e in named]
    return {
        "type": error_type(error.status),
        "code": error.code,
        "detail": error.message,
        "attr": errors[0]["field"] if errors else None,
        "errors": errors,
    }
