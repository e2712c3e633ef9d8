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
request id and security headers, a Date; and counted and logged like every other answer
(`bridge_http_requests_total{method="unread",route="unmatched"}`, one access line).
(A request body that stalls is the guard middleware's business: see
`middleware.GuardMiddleware`.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
from rest_bridge.metrics import UNMATCHED_ROUTE, UNREAD_METHOD, BridgeMetrics
from rest_bridge.middleware import envelope_headers, note_answer

RawHeaders = list[tuple[bytes, bytes]]

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
}
# What the parser refused, in place of uvicorn's plain-text 400 (the parser's own words
# are not echoed).
_MALFORMED = (400, "MALFORMED_REQUEST", "the request is not valid HTTP/1.1")


def _refusal(
    request_id: str, status: int, code: str, detail: str, default_headers: RawHeaders
) -> bytes:
    """A refusal written before any request reached the app, as the app would answer:
    the error body of `errors.py` rendered by `json_render.py`, the headers of the
    envelope (`middleware.envelope_headers`: its new request id, the security headers,
    no-store since nothing of the request is known) and uvicorn's Date."""
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


class _HeaderClock:
    """The deadline on one request's headers, as both protocols keep it: started at the
    connection's opening or the next request's first byte, stopped when the headers are
    complete; `expired` runs on the loop when the time is up."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, seconds: float, expired: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._seconds = seconds
        self._expired = expired
        self._handle: asyncio.TimerHandle | None = None
        self._started = loop.time()

    def elapsed(self) -> float:
        """Seconds since the clock last started: the age of the request being read."""
        return self._loop.time() - self._started

    @property
    def running(self) -> bool:
        return self._handle is not None

    def start(self) -> None:
        self.stop()
        self._started = self._loop.time()
        self._handle = self._loop.call_later(self._seconds, self._expire)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self) -> None:
        self._handle = None
        self._expired()


def _headers_too_slow(protocol: BoundedH11Protocol | BoundedHttpToolsProtocol, begun: bool) -> None:
    """408 for a request whose headers began but did not complete in time; a connection
    that never said anything is closed without an answer."""
    if begun:
        detail = f"request headers not received within {protocol.header_timeout:g} s"
        _answer_and_close(protocol, 408, "REQUEST_TIMEOUT", detail)
    else:
        protocol.transport.close()


def _headers_too_large(protocol: BoundedH11Protocol | BoundedHttpToolsProtocol) -> None:
    _answer_and_close(
        protocol,
        431,
        "HEADERS_TOO_LARGE",
        f"request headers over {protocol.max_header_bytes} bytes",
    )


def _answer_and_close(
    protocol: BoundedH11Protocol | BoundedHttpToolsProtocol, status: int, code: str, detail: str
) -> None:
    """Answer with the bridge's error and close the connection; the answer is counted
    and logged like every other (`middleware.note_answer`), as a request that matched
    no route and whose method was not read."""
    protocol._unset_keepalive_if_required()
    request_id = new_request_id()
    default_headers = protocol.server_state.default_headers
    protocol.transport.write(_refusal(request_id, status, code, detail, default_headers))
    protocol.transport.close()
    if protocol.metrics is not None:
        seconds = protocol._clock.elapsed()
        note_answer(protocol.metrics, request_id, UNREAD_METHOD, UNMATCHED_ROUTE, status, seconds)


class BoundedH11Protocol(H11Protocol):
    """H11Protocol with a deadline on reading each request's headers and a 431 for a
    header block over the limit. Set `header_timeout` and `max_header_bytes` on a
    subclass (see `http_server`)."""

    header_timeout = 10.0
    max_header_bytes = 16 * 1024
    metrics: BridgeMetrics | None = None  # where its own refusals are counted

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _HeaderClock(self.loop, self.header_timeout, self._on_header_deadline)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._clock.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._clock.stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and not self._clock.running:
            self._clock.start()  # the first bytes of the next request
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._clock.stop()

    def send_400_response(self, msg: str) -> None:  # noqa: ARG002 (uvicorn logged it)
        # h11 refuses a header block past its limit (set to ours) as a protocol error,
        # which uvicorn would answer with a plain 400.
        if len(self.conn.trailing_data[0]) > self.max_header_bytes:
            _headers_too_large(self)
            return
        _answer_and_close(self, *_MALFORMED)

    def _on_header_deadline(self) -> None:
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            _headers_too_slow(self, begun=bool(self.conn.trailing_data[0]))


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
    metrics: BridgeMetrics | None = None  # where its own refusals are counted

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _HeaderClock(self.loop, self.header_timeout, self._on_header_deadline)
        self._headers_done = False  # True from headers-complete to the message's end
        self._received = 0  # bytes since the headers of this request began
        self._header_block = 0  # URL and headers parsed so far
        self._too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._clock.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._clock.stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reading_headers = not self._headers_done
        if reading_headers:
            if not self._clock.running:
                self._clock.start()  # the first bytes of the next request
            self._received += len(data)
        super().data_received(data)
        if (
            reading_headers
            and not self._headers_done
            and self._received > self.max_header_bytes
            and not self.transport.is_closing()
        ):
            _headers_too_large(self)

    def on_url(self, url: bytes) -> None:
        self._header_block += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_block += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._clock.stop()
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
            _headers_too_large(self)
            return
        _answer_and_close(self, *_MALFORMED)

    def _on_header_deadline(self) -> None:
        if not self._headers_done and not self.transport.is_closing():
            _headers_too_slow(self, begun=bool(self._received))


def bridge_metrics(app: FastAPI) -> BridgeMetrics | None:
    """The metrics `app.create_app` keeps on the app's state (None for another app)."""
    metrics = getattr(app.state, "metrics", None)
    return metrics if isinstance(metrics, BridgeMetrics) else None


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
            "metrics": bridge_metrics(app),
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
