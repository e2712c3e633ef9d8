"""gRPC calls awaited from the event loop without holding a thread per call.

Unary calls use the channel's future API and hand the result back to the loop; a
cancelled HTTP request cancels its call. A unary call that runs out of time before the
caller's own timeout was cut by the channel's dependency budget (common/channels.py):
it raises `BudgetSpent`, which the bridge answers as 503, not 504. A server stream is
read by one thread that feeds a bounded queue; the call is cancelled when the reader
stops or falls behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Sequence
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
    callable_: grpc.UnaryUnaryMultiCallable[Any, Any],
    request: Message,
    *,
    timeout: float,
    metadata: Metadata,
) -> Message:
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Message] = loop.create_future()
    client_deadline = time.monotonic() + timeout
    call = callable_.future(
        request, timeout=timeout, metadata=tuple(metadata), wait_for_ready=False
    )

    def settle(done: grpc.Future[Any]) -> None:
        if outcome.done():
            return
        try:
            outcome.set_result(done.result())
        except grpc.RpcError as error:
            outcome.set_exception(error)
        except grpc.FutureCancelledError:
            outcome.cancel()

    def hand_back(done: grpc.Future[Any]) -> None:
        loop.call_soon_threadsafe(settle, done)

    call.add_done_callback(hand_back)
    try:
        return await outcome
    except asyncio.CancelledError:
        call.cancel()
        raise
    except grpc.RpcError as failure:
        timed_out = isinstance(failure, grpc.Call) and (
            failure.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        )
        if timed_out and time.monotonic() < client_deadline - _CLIENT_DEADLINE_TOLERANCE:
            raise BudgetSpent(failure) from failure
        raise


_END = object()


class StreamReader:
    """Messages of a server-streaming call, read by one thread into a bounded queue."""

    def __init__(self, call: Any, loop: asyncio.AbstractEventLoop, max_queued: int = 256) -> None:
        self._call = call
        self._loop = loop
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=max_queued)
        # The reader thread runs in the caller's context, so the stream's client span
        # belongs to the request's trace.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._pump,),
            name="sse-reader",
            daemon=True,
        )
        self._ended = False

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._call.cancel()

    def _offer(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            # A client this far behind gets no more stale prices: end its stream.
            self._call.cancel()

    def _hand_over(self, item: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self._offer, item)
        except RuntimeError:
            self._call.cancel()  # the loop is closed: nobody is listening

    def _pump(self) -> None:
        try:
            for message in self._call:
                self._hand_over(message)
            self._hand_over(_END)
        except grpc.RpcError as error:
            self._hand_over(error)

    async def next(self) -> Message | None:
        """The next message; None at the end; raises the call's error (once)."""
        if self._ended:
            return None
        item = await self._queue.get()
        if item is _END:
            self._ended = True
            return None
        if isinstance(item, grpc.RpcError):
            self._ended = True
            raise item
        assert isinstance(item, Message)
        return item


def open_stream(
    callable_: grpc.UnaryStreamMultiCallable[Any, Any],
    request: Message,
    *,
    timeout: float,
    metadata: Metadata,
) -> StreamReader:
    call = callable_(request, timeout=timeout, metadata=tuple(metadata), wait_for_ready=False)
    reader = StreamReader(call, asyncio.get_running_loop())
    reader.start()
    return reader
