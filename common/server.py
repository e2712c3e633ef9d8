"""Server bootstrap shared by every service.

Starts a gRPC server with the standard health service (real status per service, and
SERVING only while the store and Redis answer: `common.health`), reflection and the
service interceptor; on SIGTERM or SIGINT it reports NOT_SERVING
first, waits the drain period so balancers stop sending new calls, then stops with a
grace period for the calls in flight.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.health import (
    REDIS,
    STORE,
    Dependency,
    DependencyMonitor,
    Probe,
    dependency_health_name,
    redis_probe,
)
from common.interceptors import ServiceInterceptor
from common.metrics import ServerMetrics, metrics_enabled
from common.redis_clients import redis_client
from common.revocation import RevocationList
from common.settings import CommonSettings, Network
from common.telemetry import server_tracing
from common.tls import PeerAuthorization, WireTls, wire_tls
from common.tokens import AccessTokenVerifier, KeyResolver

log = logging.getLogger(__name__)

Registrar = Callable[[grpc.Server], None]

_MESSAGE_LIMIT = 4 * 1024 * 1024


class Stoppable(Protocol):
    """Background work a server owns (a keeper, a periodic task): stopped at shutdown."""

    def stop(self) -> None: ...


@dataclass
class RunningServer:
    server: grpc.Server
    health: health.HealthServicer
    port: int
    service_names: Sequence[str]
    drain_seconds: float
    grace_seconds: float
    _stopped: threading.Event = field(default_factory=threading.Event)
    monitor: DependencyMonitor | None = None
    # The server's worker threads: grpc.Server.stop leaves them alive, so shutdown ends them.
    executor: futures.ThreadPoolExecutor | None = None
    background: list[Stoppable] = field(default_factory=list)

    def set_serving(self, serving: bool) -> None:
        # The whole ("") last: whoever sees it SERVING finds every service name set too.
        for name in (*self.service_names, ""):
            self.health.set(name, _status(serving))

    def set_dependency(self, dependency: str, serving: bool) -> None:
        """A dependency's state; "" is the service as a whole."""
        if dependency:
            self.health.set(dependency_health_name(dependency), _status(serving))
        else:
            self.set_serving(serving)

    def shutdown(self) -> None:
        """NOT_SERVING, drain, then stop with grace. Safe to call more than once."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        for task in self.background:
            task.stop()
        if self.monitor is not None:
            self.monitor.stop()
        log.info("shutting down", extra={"drain_s": self.drain_seconds})
        self.health.enter_graceful_shutdown()
        time.sleep(self.drain_seconds)
        self.server.stop(self.grace_seconds).wait()
        if self.executor is not None:
            self.executor.shutdown(wait=False)
        log.info("stopped")

    def wait(self) -> None:
        self.server.wait_for_termination()


def _status(serving: bool) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    if serving:
        return health_pb2.HealthCheckResponse.SERVING
    return health_pb2.HealthCheckResponse.NOT_SERVING


def start_server(
    *,
    service_names: Sequence[str],
    register: Registrar,
    verifier: AccessTokenVerifier,
    host: str,
    port: int,
    max_workers: int,
    drain_seconds: float,
    grace_seconds: float,
    tls: WireTls | None = None,
    dependencies: Mapping[str, Dependency] | None = None,
    probe_interval_seconds: float = 1.0,
    trusted_peers: Sequence[Network] = (),
) -> RunningServer:
    """A started server; with `dependencies` (by name) its health follows them;
    `trusted_peers` may pass on their client's address on plaintext (on mTLS, the
    bridge's certificate: common/client_address)."""
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc")
    server = grpc.server(
        executor,
        # The tracing span encloses everything the service interceptor does and logs.
        interceptors=[
            server_tracing(),
            *([ServerMetrics()] if metrics_enabled() else []),
            # On mTLS, the call graph decides before anything else runs.
            *([PeerAuthorization(tls.identity)] if tls is not None else []),
            ServiceInterceptor(verifier, trusted_peers, mtls=tls is not None),
        ],
        options=[
            ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
            ("grpc.max_send_message_length", _MESSAGE_LIMIT),
            ("grpc.so_reuseport", 0),
        ],
    )
    register(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, tls.server_credentials())
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port}")
    server.start()
    running = RunningServer(
        server=server,
        health=health_servicer,
        port=bound,
        service_names=service_names,
        drain_seconds=drain_seconds,
        grace_seconds=grace_seconds,
        executor=executor,
    )
    if dependencies:
        running.monitor = DependencyMonitor(
            dependencies, running.set_dependency, probe_interval_seconds
        )
        running.monitor.start()
    else:
        running.set_serving(True)
    log.info("serving", extra={"port": bound, "services": list(service_names)})
    return running


def revocation_list(settings: CommonSettings) -> RevocationList:
    """The revocation list in the settings' Redis, with the settings' Redis budget."""
    return RevocationList(redis_client(settings.redis_url, settings.redis_timeout_seconds))


def start_service(
    settings: CommonSettings,
    *,
    port: int,
    service_names: Sequence[str],
    register: Registrar,
    resolve_key: KeyResolver,
    revocations: RevocationList,
    store: Probe | None = None,
    needs_redis: bool = True,
) -> RunningServer:
    """start_server with the verifier and the server settings every service shares.

    Health follows `store` (the service's table probe) and the settings' Redis, probed
    every `health_probe_seconds`; `needs_redis=False` for a service that still serves
    without Redis (then only the dependency's own health name reports it).
    """
    dependencies = None
    if store is not None:
        redis = redis_client(settings.redis_url, settings.redis_timeout_seconds)
        dependencies = {
            STORE: Dependency(store),
            REDIS: Dependency(redis_probe(redis), required=needs_redis),
        }
    verifier = AccessTokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        resolve_key=resolve_key,
        revocations=revocations,
    )
    return start_server(
        service_names=service_names,
        register=register,
        verifier=verifier,
        host=settings.grpc_host,
        port=port,
        max_workers=settings.grpc_max_workers,
        drain_seconds=settings.shutdown_drain_seconds,
        grace_seconds=settings.shutdown_grace_seconds,
        tls=wire_tls(settings),
        dependencies=dependencies,
        probe_interval_seconds=settings.health_probe_seconds,
        trusted_peers=settings.client_address_trusted_peers,
    )


# Allocations between two collections of the youngest generation (CPython's default is
# 700). A request allocates thousands of objects (botocore above all), so at the
# default svc_order collected several times per order: about 5 % of its CPU, measured
# with gc.callbacks (issue #13). Garbage in reference cycles waits a little longer.
GC_YOUNGEST_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """After start: what the process built to serve (modules, API models, channels,
    about 120,000 objects) lives as long as it does, so it is moved out of the
    collector's sight (`gc.freeze`); a full collection then walks only what requests
    left, in milliseconds instead of some 65 ms with the GIL held. And the youngest
    generation is collected every `GC_YOUNGEST_THRESHOLD` allocations."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNGEST_THRESHOLD, middle, oldest)


def serve_until_signalled(start: Callable[[], RunningServer]) -> None:
    """Start the server with `start`, block until SIGTERM/SIGINT, then shut down
    gracefully. The handlers come first: a signal that arrives while the process is
    still starting (a supervisor or Kubernetes stopping it early) shuts it down as soon
    as it is up, instead of killing it where it stands."""
    received = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received", extra={"signal": signal.Signals(signum).name})
        received.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running = start()
    settle_garbage_collector()

    def shut_down_when_signalled() -> None:
        received.wait()
        running.shutdown()

    worker = threading.Thread(target=shut_down_when_signalled, name="shutdown", daemon=True)
    worker.start()
    running.wait()
    # The server has stopped; what the shutdown does after that (closing channels) ends too.
    if received.is_set():
        worker.join()
