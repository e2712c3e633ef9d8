"""The web app (web/dist, built by ./dev up) served at / with a single-page-app fallback.

- ``/assets/*`` are content-hashed by the build: cached for a year, ``immutable``.
  Where the build left a gzip copy beside a file (``<file>.gz``, web/vite.config.ts),
  a client that accepts gzip gets that copy (``Content-Encoding: gzip``,
  ``Vary: Accept-Encoding``): the bundle travels at about a fifth of its size and
  nothing is compressed per request.
- Any other path that is not a file and not one of the bridge's own (``/api/``,
  ``/health``, ``/metrics``, ``/docs``, ``/openapi.json``) answers ``index.html`` so
  that the app's router shows the page; ``index.html`` is ``no-store``, so a new build
  is picked up at the next load.
- A strict Content-Security-Policy: scripts only from this origin (no inline script at
  all), styles from this origin plus the one nonce of this response (for the few
  ``<style>`` elements UI libraries insert at run time; the build leaves the placeholder
  ``__CSP_NONCE__`` in ``index.html`` and this module puts a fresh random value there)
  plus the SHA-256 of the constant ``<style>`` elements the build listed in
  ``csp-hashes.json``; connections only to this origin, no framing, no plugins, no
  ``<base>``.

The files are looked up at request time, so a rebuild needs no restart of the bridge.
"""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

NONCE_PLACEHOLDER = "__CSP_NONCE__"
# Paths the app never claims: an unknown one there stays the bridge's JSON 404 (and
# another method on it is no 405 of the fallback's).
RESERVED_PREFIXES = ("api/", "health", "metrics", "docs", "openapi.json")
_APP_PATH = "(?!" + "|".join(re.escape(prefix) for prefix in RESERVED_PREFIXES) + ").*"
IMMUTABLE = "public, max-age=31536000, immutable"
_HASH = re.compile(r"sha256-[A-Za-z0-9+/]{43}=")


def app_csp(nonce: str, style_hashes: Sequence[str] = ()) -> str:
    styles = " ".join(f"'{value}'" for value in style_hashes)
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'" + (f" {styles}" if styles else ""),
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _file(dist: Path, path: str) -> Path | None:
    """The file of ``path`` inside ``dist``; None for anything that leaves it."""
    parts = PurePosixPath(path).parts
    if any(part in ("..", ".") or part.startswith("\\") for part in parts):
        return None
    candidate = (dist / PurePosixPath(*parts)) if parts else dist
    try:
        resolved = candidate.resolve()
    except OSError:
        return None
    if not resolved.is_relative_to(dist.resolve()) or not resolved.is_file():
        return None
    return resolved


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header (RFC 9110 12.5.3) allows gzip: listed, or
    covered by ``*``, with a q-value above 0."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name.strip():
            allowed[name.strip().lower()] = quality > 0
    return allowed.get("gzip", allowed.get("*", False))


def _asset(found: Path, request: Request, cache: str) -> Response:
    gzipped = found.with_name(found.name + ".gz")
    if not gzipped.is_file():
        return FileResponse(found, headers={"Cache-Control": cache})
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    if not accepts_gzip(request.headers.get("accept-encoding", "")):
        return FileResponse(found, headers=headers)
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    return FileResponse(
        gzipped, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"}
    )


def style_hashes(dist: Path) -> list[str]:
    """The hashes of the constant <style> elements the build found in the bundle
    (dist/csp-hashes.json, written by web/vite.config.ts); nothing else is read."""
    try:
        listed = json.loads((dist / "csp-hashes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    values = listed.get("style-src", []) if isinstance(listed, dict) else []
    return [v for v in values if isinstance(v, str) and _HASH.fullmatch(v)]


def _index(dist: Path) -> Response:
    index = dist / "index.html"
    if not index.is_file():
        raise HTTPException(404, "the web app is not built: ./dev up builds it into web/dist")
    nonce = secrets.token_urlsafe(18)
    html = index.read_text(encoding="utf-8").replace(NONCE_PLACEHOLDER, nonce)
    return HTMLResponse(
        html,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": app_csp(nonce, style_hashes(dist)),
        },
    )


def mount_web_app(app: FastAPI, dist: Path) -> None:
    """Adds the app's routes; call it after every other route (the fallback matches
    every path)."""

    async def serve(request: Request) -> Response:
        path = request.path_params.get("path", "")
        if path in ("", "index.html"):
            return _index(dist)
        found = _file(dist, path)
        if found is not None:
            cache = IMMUTABLE if path.startswith("assets/") else "no-cache"
            return _asset(found, request, cache)
        # A missing file (it has an extension) is a 404, not the app: a stale hashed
        # asset must fail loudly instead of being parsed as HTML.
        if "." in PurePosixPath(path).name or path.startswith("assets/"):
            raise HTTPException(404, "Not Found")
        return _index(dist)

    fallback = Route("/{path:path}", serve, methods=["GET", "HEAD"], include_in_schema=False)
    # Starlette compiles the template to one regex: narrow the catch-all to app paths.
    fallback.path_regex = re.compile("^/(?P<path>" + _APP_PATH + ")$")
    app.router.add_route("/", serve, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.routes.append(fallback)
