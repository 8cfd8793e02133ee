"""The official browser SDKs from the npm registry, pinned in tests/sdk_packages/ (package.json
and package-lock.json), installed at test time with `npm ci` so that nothing downloads while a
page runs. The static site of the browser SDK tests serves tests/sdk_packages/ as its root, so
pages load `/node_modules/...` files."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

SDK_PACKAGES = Path(__file__).resolve().parents[1] / "sdk_packages"
NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
NPM_TIMEOUT_S = 300.0
# Written into node_modules/ after a successful install: the digest of the pins installed.
STAMP_NAME = ".profilestream-installed"


class NpmInstallError(RuntimeError):
    """`npm ci` could not install the pinned SDKs; the message says why and what to do."""


def pins_digest(root: Path = SDK_PACKAGES) -> str:
    """sha256 over package.json and package-lock.json: what node_modules must match."""
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def is_installed(root: Path = SDK_PACKAGES) -> bool:
    stamp = root / "node_modules" / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == pins_digest(root)


def _head(text: str | bytes | None, lines: int = 15) -> str:
    """npm's first lines: the error code and summary (its usage text follows them)."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[:lines])


def install_sdk_packages(root: Path = SDK_PACKAGES, timeout: float = NPM_TIMEOUT_S) -> Path:
    """Run `npm ci` in `root` unless node_modules already matches the pins; return node_modules.

    Bounded by `timeout`; an flock on package-lock.json keeps two test sessions from installing
    into the same folder at once. Raises NpmInstallError with npm's first lines."""
    node_modules = root / "node_modules"
    with (root / "package-lock.json").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed(root):
            return node_modules
        npm = shutil.which("npm")
        if npm is None:
            raise NpmInstallError(
                "npm is not on PATH: the browser SDK tests install the pinned SDKs from the npm "
                f"registry with `{' '.join(NPM_CI)}` in {root} (install Debian's `nodejs` and "
                "`npm` packages)"
            )
        try:
            done = subprocess.run(
                [npm, *NPM_CI[1:]],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise NpmInstallError(
                f"`{' '.join(NPM_CI)}` in {root} did not finish within {timeout:.0f}s (is the npm "
                f"registry reachable?)\n{_head(exc.stderr) or _head(exc.stdout)}"
            ) from None
        if done.returncode != 0:
            raise NpmInstallError(
                f"`{' '.join(NPM_CI)}` in {root} failed with exit code {done.returncode}: is the "
                "npm registry reachable, and does package-lock.json match package.json (if not, "
                "regenerate it with `npm install --package-lock-only --ignore-scripts`)?\n"
                + (_head(done.stderr) or _head(done.stdout))
            )
        (node_modules / STAMP_NAME).write_text(pins_digest(root) + "\n")
        return node_modules
