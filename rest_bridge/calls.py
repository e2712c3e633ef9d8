"""gRPC calls made from the event loop on grpc.aio channels (common/channels.py:
`make_aio_channel`), neither a thread per call nor a thread per stream.

A unary call is awaited; cancelling the task that awaits it (the HTTP request's)
cancels the RPC. A unary call that runs out of time before the caller's own timeout was cut by the
channel's dependency budget: it raises `BudgetSpent`, which the bridge answers as 503,
not 504. A server stream is read with `async for` as the answer is written: the next
message is read once the previous event is sent, so a client that reads slowly slows
its stream through gRPC's flow control instead of filling a buffer in the bridge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf.message import Message

Metadata = Sequence[tuple[str, str | bytes]]


# A DEADLINE_EXCEEDED this close to the client's own deadline is the client's: gRPC's
# timer and ours start microseconds apart, and a busy loop hands the error back late.
_CLIENT_DEADLINE_TOLERANCE = 0.05


class BudgetSpent(grpc.RpcError):
    """The dependency did not answer within its budget, well before the caller's own
    deadline: it hangs (stopped, overloaded). Wraps the DEADLINE_EXCEEDED it got."""

    def __init__(self, failure: grpc.RpcError) -> None:
        super().__init__(str(failure))
        self.failure = failure


async def unary_call(
    callable_: grpc.aio.UnaryUnaryMultiCallable[Any, Any],
    request: Message,
    *,
    timeout: float,
    metadata: Metadata,
) -> Message:
    """The answer of one unary call (timeout in seconds, the client's); raises the
    call's grpc.RpcError, `BudgetSpent` for a DEADLINE_EXCEEDED the budget caused."""
    client_deadline = time.monotonic() + timeout
    call = callable_(request, timeout=timeout, metadata=tuple(metadata), wait_for_ready=False)
    try:
        answer: Message = await call
    except asyncio.CancelledError:
        call.cancel()
        raise
    except grpc.RpcError as failure:
        timed_out = isinstance(failure, grpc.aio.AioRpcError) and (
            failure.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        )
        if timed_out and time.monotonic() < client_deadline - _CLIENT_DEADLINE_TOLERANCE:
            raise BudgetSpent(failure) from failure
        raise
    return answer


_END = object()


class ServerStream:
    """The messages of a server-streaming call: `first()` once, then `async for` over
    the rest (the first one too, when `first()` gave up waiting for it); `cancel()`
    ends the call (idempotent)."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._messages: AsyncIterator[Message] = call.__aiter__()
        self._pending: asyncio.Future[object] | None = None

    async def _next(self) -> object:
        try:
            return await anext(self._messages)
        except StopAsyncIteration:
            return _END

    async def first(self, timeout: float) -> Message | None:
        """The first message, None when the stream ended without one; raises the call's
        error, or TimeoutError after `timeout` seconds, the stream still open (its
        first message then comes first from `async for`)."""
        pending = asyncio.ensure_future(self._next())
        try:
            done, _ = await asyncio.wait({pending}, timeout=timeout)
        except BaseException:
            pending.cancel()
            self.cancel()
            raise
        if not done:
            self._pending = pending
            raise TimeoutError
        item = pending.result()
        return None if item is _END else item  # type: ignore[return-value]

    def __aiter__(self) -> ServerStream:
        return self

    async def __anext__(self) -> Message:
        pending, self._pending = self._pending, None
        item = await (pending if pending is not None else self._next())
        if item is _END:
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    def cancel(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None and not pending.done():
            pending.cancel()
        elif pending is not None and not pending.cancelled():
            pending.exception()  # the stream's error, moot once it is cancelled
        self._call.cancel()


def open_stream(
    callable_: grpc.aio.UnaryStreamMultiCallable[Any, Any],
    request: Message,
    *,
    timeout: float,
    metadata: Metadata,
) -> ServerStream:
    """A server stream living at most `timeout` seconds (the budget does not cut it)."""
    call = callable_(request, timeout=timeout, metadata=tuple(metadata), wait_for_ready=False)
    return ServerStream(call)
