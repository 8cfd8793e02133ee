"""Checking a service's local API docs: every asset /docs and /redoc load comes from the service
itself (no CDN), and each one is served."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

DOC_PAGES = ("/docs", "/redoc")


class _AssetUrls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href"):
                self.urls.append(value)


def asset_urls(page: str) -> list[str]:
    """The URLs a page loads or links to: src and href attributes, and quoted URLs and paths
    in its inline script (Swagger UI's `url: '/openapi.json'`, ReDoc's spec-url)."""
    parser = _AssetUrls()
    parser.feed(page)
    quoted = re.findall(r"""['"]((?:https?:)?//[^'"]+|/[A-Za-z0-9_.-][^'"\s]*)['"]""", page)
    return [*parser.urls, *quoted]


async def check_local_docs(client: httpx.AsyncClient) -> list[str]:
    """Fetch /docs and /redoc, then every URL they name; fail on any remote URL or any asset
    not served (non-200 or empty). Returns the URLs checked."""
    checked: list[str] = []
    for page_path in DOC_PAGES:
        page = await client.get(page_path)
        assert page.status_code == 200, page_path
        assert page.headers["content-type"].startswith("text/html")
        urls = asset_urls(page.text)
        remote = [u for u in urls if u.startswith(("http:", "https:", "//"))]
        assert remote == [], f"{page_path} loads from elsewhere: {remote}"
        assert "cdn" not in page.text.lower() and "googleapis" not in page.text
        for url in urls:
            asset = await client.get(url)
            assert asset.status_code == 200, f"{page_path} -> {url}: {asset.status_code}"
            assert asset.content, f"{page_path} -> {url} is empty"
            checked.append(url)
    return checked
