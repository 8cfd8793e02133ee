"""The documents against the code, where a check is cheap: every setting is documented, every
relative link resolves, and every path the README's layout table names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]

# [text](target): the target up to the closing parenthesis, title and fragment dropped below.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")


def relative_links(text: str) -> list[str]:
    """Link targets that name a file of this repository (not a URL, not a bare #fragment)."""
    targets = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def section(text: str, heading: str) -> str:
    """The body of a `## heading` section, up to the next `## `."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def layout_paths(text: str) -> list[str]:
    """Code spans in the layout table's rows that are paths (they contain a slash)."""
    rows = [line for line in section(text, "Layout").splitlines() if line.startswith("|")]
    return [span for row in rows for span in CODE_SPAN.findall(row) if "/" in span]


def test_every_setting_is_documented() -> None:
    documented = (ROOT / "docs" / "settings.md").read_text()
    missing = [
        f"PS_{name.upper()}"
        for name in Settings.model_fields
        if not re.search(rf"\bPS_{name.upper()}\b", documented)
    ]
    assert not missing, f"docs/settings.md does not document {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(document: Path) -> None:
    broken = [
        target
        for target in relative_links(document.read_text())
        if not (document.parent / target).exists()
    ]
    assert not broken, f"{document.relative_to(ROOT)} links to missing files: {broken}"


def test_readme_layout_table_names_existing_paths() -> None:
    paths = layout_paths(README.read_text())
    assert paths, "the layout table names no path"
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert not missing, f"README's layout table names missing paths: {missing}"


def test_the_checks_see_what_they_check() -> None:
    text = "[a](docs/x.md#part) [b](https://example.com) [c](#here) [d](../y.md)"
    assert relative_links(text) == ["docs/x.md", "../y.md"]
    table = "## Layout\n\n| `a/` | `b.py` and `c/d.py`, `python -m x` |\n## Next\n| `e/` |\n"
    assert layout_paths(table) == ["a/", "c/d.py"]
