"""The bridge's channels to the services: grpc.aio, opened on the loop that serves.

grpc.aio binds a channel to the event loop running when it is made, and uvicorn makes
its loop (uvloop, or asyncio with BRIDGE_EVENT_LOOP=asyncio) only when it starts; so
`BridgeChannels` takes the addresses and the policy when the app is built (reading the
mTLS material then, so that a bad file stops the start) and makes the channels at the
app's startup (`open`, from its lifespan; or at the first call, should the app be served
without its lifespan), then closes them at shutdown (`close`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

import grpc

from common.channels import CallPolicy, make_aio_channel


class ChannelSource(Protocol):
    """Where the bridge's endpoints find the channel of a gRPC service (None: not
    configured). A mapping of channels is one."""

    def get(self, service: str, /) -> grpc.aio.Channel | None: ...


class BridgeChannels:
    """One grpc.aio channel per configured service (full gRPC service name ->
    address), made by the shared factory with `policy`."""

    def __init__(self, addresses: Mapping[str, str], policy: CallPolicy) -> None:
        self._addresses = dict(addresses)
        self._policy = policy
        self._open: dict[str, grpc.aio.Channel] | None = None
        self._closed = False

    def configured(self, service: str) -> bool:
        return service in self._addresses

    def open(self) -> None:
        """Make the channels on the running loop (once). Raises RuntimeError with no
        loop running, or once closed."""
        asyncio.get_running_loop()  # grpc.aio would bind the channels to another loop
        if self._closed:
            raise RuntimeError("the bridge's channels are closed")
        if self._open is None:
            self._open = {
                service: make_aio_channel(address, services=[service], policy=self._policy)
                for service, address in self._addresses.items()
            }

    def get(self, service: str, /) -> grpc.aio.Channel | None:
        """The service's channel (from the loop), None when it has no address."""
        if self._open is None:
            self.open()
        assert self._open is not None
        return self._open.get(service)

    async def close(self) -> None:
        """Close every channel (calls still running are cancelled)."""
        channels, self._open, self._closed = self._open, None, True
        for channel in (channels or {}).values():
            await channel.close()
