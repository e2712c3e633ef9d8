"""A server stream as Server-Sent Events: one event per message, named by the RPC's
`sse_event` option (`price`, `order`).

The response watches for the client's disconnect and cancels the gRPC call at once;
a comment line every few seconds keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from rest_bridge.calls import StreamReader
from rest_bridge.errors import error_body, from_rpc_error
from rest_bridge.json_render import render_json

HEARTBEAT_SECONDS = 15.0


def event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + render_json(data) + b"\n\n"


class EventStreamResponse(Response):
    # Response.__init__ is not called: it would add "Content-Length: 0" to a body
    # that __call__ writes as it comes.
    def __init__(
        self,
        reader: StreamReader,
        first: Message | None,
        *,
        to_json: Callable[[Message], Any],
        request_id: str,
        retry_after: int,
        on_close: Callable[[], None],
        event_name: str = "message",
    ) -> None:
        self._event_name = event_name
        self._reader = reader
        self._first = first
        self._to_json = to_json
        self._request_id = request_id
        self._retry_after = retry_after
        self._on_close = on_close
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: ARG002
        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.create_task(disconnected())
        pending: asyncio.Task[Message | None] | None = None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": list(self.raw_headers),
                }
            )
            if self._first is not None:
                await self._chunk(send, event(self._event_name, self._to_json(self._first)))
            while True:
                pending = pending or asyncio.create_task(self._reader.next())
                done, _ = await asyncio.wait(
                    {pending, watcher},
                    timeout=HEARTBEAT_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if watcher in done:
                    return
                if pending not in done:
                    await self._chunk(send, b": keep-alive\n\n")
                    continue
                finished, pending = pending, None
                try:
                    message = finished.result()
                except grpc.RpcError as error:
                    failure = from_rpc_error(error, self._retry_after)
                    await self._chunk(send, event("error", error_body(failure, self._request_id)))
                    break
                if message is None:
                    break
                await self._chunk(send, event(self._event_name, self._to_json(message)))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client went away while we wrote
        finally:
            self._reader.cancel()
            watcher.cancel()
            if pending is not None:
                pending.cancel()
            self._on_close()

    @staticmethod
    async def _chunk(send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})
