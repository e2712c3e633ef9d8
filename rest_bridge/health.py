"""GET /health: the gRPC health of each configured service and Redis.

A configured service that is not SERVING, or Redis down, answers 503 `degraded`: the
service's routes cannot work, and without Redis the services cannot check revoked
tokens nor the bridge count failed logins, so every protected route and login fail. A
service with no address leaves the bridge `degraded` with 200: the other routes work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rest_bridge.calls import unary_call

UP, DOWN, NOT_CONFIGURED = "up", "down", "not_configured"


async def _service_state(channel: grpc.Channel | None, service: str, timeout: float) -> str:
    if channel is None:
        return NOT_CONFIGURED
    check = health_pb2_grpc.HealthStub(channel).Check
    try:
        answer: Any = await unary_call(
            check, health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=()
        )
    except grpc.RpcError:
        return DOWN
    return UP if answer.status == health_pb2.HealthCheckResponse.SERVING else DOWN


async def _redis_state(client: aioredis.Redis, timeout: float) -> str:
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except Exception:  # any failure means down
        return DOWN
    return UP


async def health_report(
    services: Mapping[str, tuple[str, grpc.Channel | None]],
    redis: aioredis.Redis,
    timeout: float,
) -> tuple[int, dict[str, Any]]:
    """services: dependency name -> (gRPC service name, channel or None)."""
    names = list(services)
    states = await asyncio.gather(
        *(_service_state(services[n][1], services[n][0], timeout) for n in names),
        _redis_state(redis, timeout),
    )
    dependencies = dict(zip([*names, "redis"], states, strict=True))
    service_states = [dependencies[n] for n in names]
    if DOWN in states:
        status, code = "degraded", 503
    elif NOT_CONFIGURED in service_states:
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    return code, {"status": status, "service": "rest_bridge", "dependencies": dependencies}
