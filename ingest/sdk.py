"""The first-party browser SDK (`ingest/sdk/profilestream.js`), served as a static asset.

`/sdk/profilestream-<version>.js` never changes, so browsers and CDNs keep it for a year.
`/sdk/profilestream.js` redirects to it and is cached for five minutes only: pages that use the
bare URL get a new version within that time, and every page shares one cached copy of each
version's file. No write key is needed to fetch either (the file holds no data).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse

from infra.http import ApiError

# Keep in sync with VERSION in sdk/profilestream.js (tests/ingest/test_sdk.py checks both).
SDK_VERSION = "0.1.0"
SDK_SOURCE: bytes = (Path(__file__).parent / "sdk" / "profilestream.js").read_bytes()

IMMUTABLE = "public, max-age=31536000, immutable"
LATEST_MAX_AGE_S = 300
JAVASCRIPT = "text/javascript; charset=utf-8"

router = APIRouter(prefix="/sdk", tags=["sdk"], include_in_schema=False)


def versioned_path(version: str = SDK_VERSION) -> str:
    return f"/sdk/profilestream-{version}.js"


@router.get("/profilestream-{version}.js")
async def sdk_file(version: str) -> Response:
    if version != SDK_VERSION:
        raise ApiError(404, f"no SDK version {version!r}: this ingest serves {SDK_VERSION}")
    return Response(
        SDK_SOURCE,
        media_type=JAVASCRIPT,
        headers={
            "Cache-Control": IMMUTABLE,
            "X-Content-Type-Options": "nosniff",
            # Sites that isolate themselves (COEP require-corp) may still load it.
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@router.get("/profilestream.js")
async def sdk_latest() -> RedirectResponse:
    # Relative, so it also resolves behind a proxy that mounts ingest under a path prefix.
    return RedirectResponse(
        f"profilestream-{SDK_VERSION}.js",
        status_code=302,
        headers={"Cache-Control": f"public, max-age={LATEST_MAX_AGE_S}"},
    )
