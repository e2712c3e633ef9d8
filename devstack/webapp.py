"""Builds the web app (web/ -> web/dist) when its sources changed: `npm ci`, then
`npm run build` (TypeScript check + Vite), with each step's output shown.

A digest of the sources (and of the lock file, for `npm ci`) is kept beside each
result, so an unchanged app costs one directory walk. `./dev up` and the browser tests
both call `ensure_web_build`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from devstack.engines import ROOT

WEB = ROOT / "web"
DIST = WEB / "dist"
# What the build reads; tests and docs under web/ do not change the bundle.
_SOURCE_FILES = (
    "package.json",
    "package-lock.json",
    "index.html",
    "vite.config.ts",
    "tsconfig.json",
)
_SOURCE_DIRS = ("src", "public")
_DIGEST = ".build-digest"

Say = Callable[[str], None]


def _digest(paths: Iterable[Path]) -> str:
    sha = hashlib.sha256()
    for path in sorted(paths):
        sha.update(str(path.relative_to(WEB)).encode())
        sha.update(b"\0")
        sha.update(path.read_bytes())
        sha.update(b"\0")
    return sha.hexdigest()


def sources_digest() -> str:
    files = [WEB / name for name in _SOURCE_FILES if (WEB / name).is_file()]
    for directory in _SOURCE_DIRS:
        files += [p for p in (WEB / directory).rglob("*") if p.is_file()]
    return _digest(files)


def _run(command: list[str], say: Say) -> None:
    say("  $ " + " ".join(command))
    process = subprocess.Popen(
        command, cwd=WEB, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip()
        if line:
            say("    " + line)
            tail = [*tail[-40:], line]
    if process.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed in web/:\n" + "\n".join(tail))


def ensure_dependencies(say: Say = print) -> None:
    """`npm ci` when web/node_modules does not match package-lock.json."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to build the web app (Node 20 or newer)")
    stamp = WEB / "node_modules" / _DIGEST
    want = _digest([WEB / "package-lock.json"])
    if stamp.is_file() and stamp.read_text() == want:
        return
    say("Installing the web app's packages (npm ci)...")
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], say)
    stamp.write_text(want)


def ensure_web_build(say: Say = print) -> Path:
    """web/dist, rebuilt only when the app's sources changed since the last build."""
    stamp = DIST / _DIGEST
    want = sources_digest()
    if stamp.is_file() and stamp.read_text() == want and (DIST / "index.html").is_file():
        return DIST
    ensure_dependencies(say)
    say("Building the web app (TypeScript check, then Vite)...")
    npm = shutil.which("npm") or "npm"
    _run([npm, "run", "build"], say)
    stamp.write_text(want)
    return DIST
