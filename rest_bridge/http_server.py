"""The bridge's HTTP server: uvicorn with HTTP/1.1 and the limits uvicorn lacks.

The parser is httptools (llhttp, in C) unless `bridge_http_parser` says h11 (pure
Python: about a fifth of the bridge's CPU a request); both protocols below carry the
same limits.

uvicorn bounds the idle time between requests (keep-alive) but not the time a client
may take to send a request's headers, so a client trickling bytes ("slowloris") holds
a connection forever; and it answers a header block over h11's size limit with a
plain-text 400, as it does any request its parser refuses. Here:
- the headers of a request must arrive within `bridge_header_timeout_seconds` of its
  first byte (or of the connection's opening), else 408 and the connection closes;
- a connection idle between requests closes after `bridge_idle_timeout_seconds`;
- a header block over `bridge_max_header_bytes` is 431, decided as the bytes arrive;
- a request the parser refuses is 400 `MALFORMED_REQUEST`, the connection closed.
These refusals are answered like every other error: the bridge's error body, its
request id and security headers, a Date. (A request body that stalls is the guard
middleware's business: see `middleware.GuardMiddleware`.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from common.context import new_request_id
from rest_bridge.config import BridgeSettings
from rest_bridge.errors import ApiError, error_body, error_headers
from rest_bridge.json_render import render_json
from rest_bridge.metrics import UNMATCHED_ROUTE
from rest_bridge.middleware import envelope_headers

RawHeaders = list[tuple[bytes, bytes]]

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
}
# What the parser refused, in place of uvicorn's plain-text 400 (the parser's own words
# are not echoed).
_MALFORMED = (400, "MALFORMED_REQUEST", "the request is not valid HTTP/1.1")


def _refusal(status: int, code: str, detail: str, default_headers: RawHeaders) -> bytes:
    """A refusal written before any request reached the app, as the app would answer:
    the error body of `errors.py` rendered by `json_render.py`, the headers of the
    envelope (`middleware.envelope_headers`: a new request id, the security headers,
    no-store since nothing of the request is known) and uvicorn's Date."""
    request_id = new_request_id()
    error = ApiError(status, code, detail)
    body = render_json(error_body(error, request_id))
    headers = [
        *((name.decode("latin-1"), value.decode("latin-1")) for name, value in default_headers),
        ("content-type", "application/json"),
        *envelope_headers(request_id, UNMATCHED_ROUTE, private=True),
        *error_headers(error).items(),
        ("connection", "close"),
        ("content-length", str(len(body))),
    ]
    head = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]) + b"".join(
        b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers
    )
    return head + b"\r\n" + body


class BoundedH11Protocol(H11Protocol):
    """H11Protocol with a deadline on reading each request's headers and a 431 for a
    header block over the limit. Set `header_timeout` and `max_header_bytes` on a
    subclass (see `http_server`)."""

    header_timeout = 10.0
    max_header_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._header_clock is None:
            self._start_header_clock()  # the first bytes of the next request
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._stop_header_clock()

    def send_400_response(self, msg: str) -> None:  # noqa: ARG002 (uvicorn logged it)
        # h11 refuses a header block past its limit (set to ours) as a protocol error,
        # which uvicorn would answer with a plain 400.
        if len(self.conn.trailing_data[0]) > self.max_header_bytes:
            self._refuse(
                431,
                "HEADERS_TOO_LARGE",
                f"request headers over {self.max_header_bytes} bytes",
            )
            return
        self._refuse(*_MALFORMED)

    def _start_header_clock(self) -> None:
        self._stop_header_clock()
        self._header_clock = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_clock(self) -> None:
        if self._header_clock is not None:
            self._header_clock.cancel()
            self._header_clock = None

    def _headers_too_slow(self) -> None:
        self._header_clock = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self.conn.trailing_data[0]:
                detail = f"request headers not received within {self.header_timeout:g} s"
                self._refuse(408, "REQUEST_TIMEOUT", detail)
            else:
                self.transport.close()  # a connection that never said anything

    def _refuse(self, status: int, code: str, detail: str) -> None:
        self._unset_keepalive_if_required()
        self.transport.write(_refusal(status, code, detail, self.server_state.default_headers))
        self.transport.close()


class _HeadersTooLarge(Exception):
    """Raised inside a parser callback: httptools then stops and reports a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with the same header deadline and 431 as `BoundedH11Protocol`.

    A request's headers run from the first byte after the previous request (or the
    connection's opening) to llhttp's headers-complete callback; the bytes received in
    that span are counted as they arrive, and the exact size of the header block (the
    URL and every header) is checked when it is complete."""

    header_timeout = 10.0
    max_header_bytes = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_clock: asyncio.TimerHandle | None = None
        self._headers_done = False  # True from headers-complete to the message's end
        self._received = 0  # bytes since the headers of this request began
        self._header_block = 0  # URL and headers parsed so far
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reading_headers = not self._headers_done
        if reading_headers:
            if self._header_clock is None:
                self._start_header_clock()  # the first bytes of the next request
            self._received += len(data)
        super().data_received(data)
        if (
            reading_headers
            and not self._headers_done
            and self._received > self.max_header_bytes
            and not self.transport.is_closing()
        ):
            self._refuse_too_large()

    def on_url(self, url: bytes) -> None:
        self._header_block += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_block += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._stop_header_clock()
        if self._header_block > self.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._headers_done = False
        self._received = 0
        self._header_block = 0
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:  # noqa: ARG002 (uvicorn logged it)
        if self._too_large:
            self._refuse_too_large()
            return
        self._refuse(*_MALFORMED)

    def _refuse_too_large(self) -> None:
        self._refuse(
            431, "HEADERS_TOO_LARGE", f"request headers over {self.max_header_bytes} bytes"
        )

    def _start_header_clock(self) -> None:
        self._stop_header_clock()
        self._header_clock = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _stop_header_clock(self) -> None:
        if self._header_clock is not None:
            self._header_clock.cancel()
            self._header_clock = None

    def _headers_too_slow(self) -> None:
        self._header_clock = None
        if not self._headers_done and not self.transport.is_closing():
            if self._received:
                detail = f"request headers not received within {self.header_timeout:g} s"
                self._refuse(408, "REQUEST_TIMEOUT", detail)
            else:
                self.transport.close()  # a connection that never said anything

    def _refuse(self, status: int, code: str, detail: str) -> None:
        self._unset_keepalive_if_required()
        self.transport.write(_refusal(status, code, detail, self.server_state.default_headers))
        self.transport.close()


def http_server(app: FastAPI, settings: BridgeSettings) -> uvicorn.Server:
    """The HTTP server of the bridge. uvicorn's own X-Forwarded-For handling is off:
    the bridge believes that header only from its configured trusted proxies. The event
    loop is uvloop unless `bridge_event_loop` says asyncio, the parser httptools unless
    `bridge_http_parser` says h11 (the benchmark compares them)."""
    bounded: type[BoundedH11Protocol] | type[BoundedHttpToolsProtocol] = (
        BoundedHttpToolsProtocol
        if settings.bridge_http_parser == "httptools"
        else BoundedH11Protocol
    )
    protocol = type(
        "BridgeHttpProtocol",
        (bounded,),
        {
            "header_timeout": settings.bridge_header_timeout_seconds,
            "max_header_bytes": settings.bridge_max_header_bytes,
        },
    )
    config = uvicorn.Config(
        app,
        host=settings.bridge_host,
        port=settings.bridge_port,
        http=protocol,
        loop=settings.bridge_event_loop,
        h11_max_incomplete_event_size=settings.bridge_max_header_bytes,
        timeout_keep_alive=settings.bridge_idle_timeout_seconds,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )
    return uvicorn.Server(config)
