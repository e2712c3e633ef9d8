"""A server stream as Server-Sent Events: one event per message, named by the RPC's
`sse_event` option (`price`, `order`), written by sse-starlette.

sse-starlette sends the events, a comment line every `HEARTBEAT_SECONDS` (so proxies do
not close a quiet stream), ends the stream when the server shuts down, and stops
reading the gRPC stream as soon as the client disconnects; the gRPC call is then
cancelled at once. The gRPC stream is read on the event loop (`async for` over the
grpc.aio call, `calls.ServerStream`), one message per event sent. A gRPC error after
the first event can only be an `error` event carrying the usual error body, after
which the stream ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from rest_bridge.calls import ServerStream
from rest_bridge.errors import error_body, from_rpc_error
from rest_bridge.json_render import render_json

HEARTBEAT_SECONDS = 15.0


def _event(name: str, data: Any) -> ServerSentEvent:
    return ServerSentEvent(data=render_json(data).decode(), event=name)


class EventStreamResponse(EventSourceResponse):
    """The events of `stream` (its first message already read: `first`). `on_close`
    runs once when the response ends, however it ends (also for HEAD, which sends no
    events)."""

    def __init__(
        self,
        stream: ServerStream,
        first: Message | None,
        *,
        to_json: Callable[[Message], Any],
        request_id: str,
        retry_after: int,
        on_close: Callable[[], None],
        event_name: str = "message",
    ) -> None:
        async def events() -> AsyncIterator[ServerSentEvent]:
            try:
                if first is not None:
                    yield _event(event_name, to_json(first))
                try:
                    async for message in stream:
                        yield _event(event_name, to_json(message))
                except grpc.RpcError as error:
                    failure = from_rpc_error(error, retry_after)
                    yield _event("error", error_body(failure, request_id))
            finally:
                stream.cancel()

        super().__init__(events(), ping=HEARTBEAT_SECONDS)
        self._stream = stream
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._stream.cancel()
            self._on_close()
