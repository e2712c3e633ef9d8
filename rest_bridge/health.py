"""GET /health: the gRPC health of each configured service and Redis.

A configured service that is not SERVING, or Redis down, answers 503 `degraded`: the
service's routes cannot work, and without Redis the services cannot check revoked
tokens nor svc_user count failed logins, so every protected route and login fail. A
service with no address leaves the bridge `degraded` with 200: the other routes work.

A service that answers but is not SERVING is asked which of its dependencies fail (the
names `common.health` publishes); `causes` names them, e.g. {"svc_order": ["store"]}.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.health import DEPENDENCIES, dependency_health_name
from rest_bridge.calls import unary_call

UP, DOWN, NOT_CONFIGURED = "up", "down", "not_configured"


async def _serving(channel: grpc.aio.Channel, service: str, timeout: float) -> bool | None:
    """Whether `service` is SERVING; None when the process does not answer (or does
    not know the name)."""
    check = health_pb2_grpc.HealthStub(channel).Check
    try:
        answer: Any = await unary_call(
            check, health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=()
        )
    except grpc.RpcError:
        return None
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


async def _service_state(
    channel: grpc.aio.Channel | None, service: str, timeout: float
) -> tuple[str, list[str]]:
    """The service's state and the dependencies it reports failing."""
    if channel is None:
        return NOT_CONFIGURED, []
    serving = await _serving(channel, service, timeout)
    if serving:
        return UP, []
    if serving is None:
        return DOWN, []
    dependencies = await asyncio.gather(
        *(_serving(channel, dependency_health_name(name), timeout) for name in DEPENDENCIES)
    )
    failing = [name for name, up in zip(DEPENDENCIES, dependencies, strict=True) if up is False]
    return DOWN, failing


async def _redis_state(client: aioredis.Redis, timeout: float) -> str:
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except Exception:  # any failure means down
        return DOWN
    return UP


async def health_report(
    services: Mapping[str, tuple[str, grpc.aio.Channel | None]],
    redis: aioredis.Redis,
    timeout: float,
) -> tuple[int, dict[str, Any]]:
    """services: dependency name -> (gRPC service name, channel or None)."""
    names = list(services)
    found, redis_state = await asyncio.gather(
        asyncio.gather(*(_service_state(services[n][1], services[n][0], timeout) for n in names)),
        _redis_state(redis, timeout),
    )
    dependencies = {name: state for name, (state, _) in zip(names, found, strict=True)}
    dependencies["redis"] = redis_state
    causes = {name: failing for name, (_, failing) in zip(names, found, strict=True) if failing}
    if DOWN in dependencies.values():
        status, code = "degraded", 503
    elif NOT_CONFIGURED in dependencies.values():
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    body: dict[str, Any] = {
        "status": status,
        "service": "rest_bridge",
        "dependencies": dependencies,
    }
    if causes:
        body["causes"] = causes
    return code, body
