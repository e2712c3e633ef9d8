"""The whole platform as child processes on this machine: engines, services, bridge.

`./dev up` and the benchmarks use it. Everything binds to loopback; each process logs
to its own file; `stop()` ends what `start()` began, services first, engines last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.callgraph import OPERATOR
from common.dynamo import ensure_table, make_client
from common.private_files import private_folder
from common.tls import server_name
from devstack.data_lock import DataFolderLock
from devstack.engines import (
    ROOT,
    Engine,
    engine_environment,
    free_port,
    start_dynalite,
    start_redis,
)
from devstack.pki import Identity, ensure_pki
from devstack.trace import default_traces_file, rotate

START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    port_variable: str
    default_port: int
    table_variable: str | None = None
    default_table: str | None = None
    address_variable: str | None = None  # how the others find it
    http: bool = False
    # Its own Prometheus port (METRICS_PORT of that process); the bridge serves
    # /metrics on its HTTP port.
    metrics_port_variable: str | None = None
    default_metrics_port: int = -1
    # Another process of the service `module` (svc_order on every core): it reads its
    # port from `port_setting` (the service's own variable), set to this spec's port.
    module: str | None = None
    port_setting: str | None = None

    @property
    def runs(self) -> str:
        """The module this process runs (its service)."""
        return self.module or self.name


SPECS = (
    ProcessSpec(
        "svc_user",
        "USER_GRPC_PORT",
        50051,
        "USERS_TABLE",
        "users",
        "USER_SERVICE_ADDR",
        metrics_port_variable="USER_METRICS_PORT",
        default_metrics_port=9151,
    ),
    ProcessSpec(
        "svc_inventory",
        "INVENTORY_GRPC_PORT",
        50052,
        "ASSETS_TABLE",
        "assets",
        "INVENTORY_SERVICE_ADDR",
        metrics_port_variable="INVENTORY_METRICS_PORT",
        default_metrics_port=9152,
    ),
    ProcessSpec(
        "svc_order",
        "ORDER_GRPC_PORT",
        50053,
        "TRADING_TABLE",
        "trading",
        "ORDER_SERVICE_ADDR",
        metrics_port_variable="ORDER_METRICS_PORT",
        default_metrics_port=9153,
    ),
    ProcessSpec("rest_bridge", "BRIDGE_PORT", 8000, http=True),
)


# svc_order runs this many processes under the local stack (ORDER_PROCESSES; default
# 1). Each has its own port; its clients spread calls over all of them
# (common.channels: a comma-separated address list is balanced round robin).
ORDER_PROCESSES_VARIABLE = "ORDER_PROCESSES"
SCALED_SERVICE = "svc_order"


def existing_specs() -> list[ProcessSpec]:
    """The services that exist in this checkout, in start order."""
    return [s for s in SPECS if (ROOT / s.name / "__main__.py").is_file()]


def with_processes(specs: list[ProcessSpec], count: int) -> list[ProcessSpec]:
    """`specs` with svc_order's further processes after its first (names `svc_order-2`,
    ...; ports in variables `ORDER_GRPC_PORT_2`, ...; they reach no table of their own)."""
    scaled: list[ProcessSpec] = []
    for spec in specs:
        if spec.module is not None:
            continue  # made again below: the count may have changed
        scaled.append(spec)
        if spec.name != SCALED_SERVICE:
            continue
        for number in range(2, count + 1):
            scaled.append(
                replace(
                    spec,
                    name=f"{spec.name}-{number}",
                    port_variable=f"{spec.port_variable}_{number}",
                    table_variable=None,
                    default_table=None,
                    address_variable=None,
                    metrics_port_variable=(
                        f"{spec.metrics_port_variable}_{number}"
                        if spec.metrics_port_variable
                        else None
                    ),
                    module=spec.name,
                    port_setting=spec.port_variable,
                )
            )
    return scaled


def default_order_processes() -> int:
    # One by default: measured on two shared cores (bench/RESULTS.md), a second process
    # added CPU per order (each process streams prices, sweeps and probes every second)
    # and bought no throughput while the machine, not svc_order, was the bound.
    return int(os.environ.get(ORDER_PROCESSES_VARIABLE) or 1)


def tracing_environment(data_dir: Path) -> dict[str, str]:
    """Spans to a file under the data folder (unless OTLP is configured, which the
    services then prefer), written within half a second so `./dev trace` sees them."""
    traces_file = Path(os.environ.get("TRACES_FILE") or default_traces_file(data_dir))
    if not os.environ.get("TRACES_FILE"):
        # Spans name users and requests: owner only, like the data folders beside it.
        private_folder(traces_file.parent, tighten=True)
    rotate(traces_file)
    return {
        "TRACES_FILE": str(traces_file),
        "OTEL_BSP_SCHEDULE_DELAY": os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "500"),
    }


def signing_key(directory: Path) -> Path:
    from svc_user.credentials import new_private_key_pem

    path = directory / "jwt-ed25519.pem"
    if not path.exists():
        private_folder(directory, tighten=True)
        path.touch(mode=0o600)
        path.write_bytes(new_private_key_pem())
    return path


@dataclass
class LocalStack:
    """data_dir None means engines in memory (benchmarks); a folder persists them."""

    data_dir: Path | None
    log_dir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    fixed_ports: bool = True
    engines: list[Engine] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    specs: list[ProcessSpec] = field(default_factory=existing_specs)
    # mTLS between the processes: a dev CA and a certificate per process under pki/.
    mtls: bool = False
    identities: dict[str, Identity] = field(default_factory=dict)
    # Processes of svc_order; None: ORDER_PROCESSES from overrides or the environment,
    # else default_order_processes().
    order_processes: int | None = None
    # The checkout whose services run (the engines and tables are this one's): the
    # bench runs an earlier commit's services side by side with this one's.
    code_root: Path = ROOT
    # Held from start_engines to stop when data_dir is set: one owner per data folder.
    data_lock: DataFolderLock | None = None

    def _port(self, variable: str, default: int) -> int:
        if variable in self.overrides:
            return int(self.overrides[variable])
        if variable in os.environ:
            return int(os.environ[variable])
        return default if self.fixed_ports else free_port()

    def start_engines(self) -> None:
        # Logs hold usernames and client addresses (the audit log): owner only, like
        # the data folders beside them (a missing DATA_DIR is made owner-only too).
        private_folder(self.log_dir, tighten=True)
        persisted = self.data_dir
        if persisted is not None and self.data_lock is None:
            # Raises DataFolderInUse when another stack or tool runs on the folder.
            self.data_lock = DataFolderLock(persisted, "./dev up").acquire()
        dynalite_port = self._port("DYNALITE_PORT", 8001)
        dynalite = start_dynalite(
            persisted / "dynalite" if persisted else None,
            dynalite_port,
            self.log_dir / "dynalite.log",
        )
        self.engines.append(dynalite)
        if self.data_lock is not None:
            self.data_lock.describe(dynalite_port=int(dynalite.url.rsplit(":", 1)[1]))
        redis_url = self.overrides.get("REDIS_URL") or os.environ.get("REDIS_URL")
        if not redis_url:
            redis = start_redis(
                persisted / "redis" if persisted else None,
                self._port("REDIS_PORT", 6390),
                self.log_dir / "redis.log",
            )
            self.engines.append(redis)
            redis_url = redis.url
        # This process creates the tables, so it needs the engine variables too.
        os.environ.update(engine_environment(dynalite.url, redis_url))
        key_dir = (persisted or self.log_dir) / "keys"
        if self.mtls:
            self.identities = ensure_pki((persisted or self.log_dir) / "pki")
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(self.code_root), str(self.code_root / "generated")]),
            "JWT_PRIVATE_KEY_FILE": str(signing_key(key_dir)),
            # The bridge runs on loopback: the services believe the client address it
            # passes (login throttle, audit records).
            "CLIENT_ADDRESS_TRUSTED_PEERS": os.environ.get(
                "CLIENT_ADDRESS_TRUSTED_PEERS", "127.0.0.1/32"
            ),
            **tracing_environment(persisted or self.log_dir),
            # Every process appends its audit records to one file of their own.
            "AUDIT_LOG_FILE": str(self.log_dir / "audit.log"),
            **self.overrides,
        }
        count = self.order_processes
        if count is None:
            configured = self.overrides.get(ORDER_PROCESSES_VARIABLE)
            count = int(configured) if configured else default_order_processes()
        self.specs = with_processes(self.specs, max(1, count))
        addresses: dict[str, list[str]] = {}
        for spec in self.specs:
            default_port = spec.default_port
            if spec.module is not None:
                default_port = free_port()  # no fixed port is reserved for the others
            port = self._port(spec.port_variable, default_port)
            self.env[spec.port_variable] = str(port)
            service = next(s for s in self.specs if s.name == spec.runs)
            if spec.metrics_port_variable:
                default_metrics = spec.default_metrics_port
                if spec.module is not None and service.metrics_port_variable:
                    # A page of its own (a free port) when the service has one at all.
                    first = int(self.env[service.metrics_port_variable])
                    default_metrics = free_port() if first > 0 else first
                metrics_port = self._port(spec.metrics_port_variable, default_metrics)
                self.env[spec.metrics_port_variable] = str(metrics_port)
            if service.address_variable:
                addresses.setdefault(service.address_variable, []).append(f"127.0.0.1:{port}")
        for variable, found in addresses.items():
            self.env.setdefault(variable, ",".join(found))

    def create_tables(self) -> None:
        client = make_client(self.env["DYNAMODB_ENDPOINT"], self.env["AWS_REGION"])
        prefix = self.env.get("TABLE_PREFIX", "")
        for spec in self.specs:
            if spec.table_variable and spec.default_table:
                ensure_table(client, prefix + self.env.get(spec.table_variable, spec.default_table))

    def _launch(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{spec.name}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", spec.runs],
                cwd=self.code_root,
                env={
                    **self.env,
                    "METRICS_PORT": self.env.get(spec.metrics_port_variable or "", "-1"),
                    **(
                        {spec.port_setting: self.env[spec.port_variable]}
                        if spec.port_setting
                        else {}
                    ),
                    **(self.identities[spec.runs].environment() if self.mtls else {}),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_process(self, spec: ProcessSpec) -> None:
        process = self._launch(spec)
        self.processes[spec.name] = process
        log = self.log_dir / f"{spec.name}.log"
        self._wait_ready(spec, int(self.env[spec.port_variable]), process, log)

    def start(self, progress: bool = False) -> None:
        self.start_engines()
        self.create_tables()
        for spec in self.specs:
            if progress:
                print(f"Starting {spec.name} (log: {self.log_dir / (spec.name + '.log')})...")
            self.start_process(spec)

    def metrics_url(self, name: str) -> str:
        spec = next(s for s in self.specs if s.name == name)
        if spec.metrics_port_variable is None:
            return f"http://127.0.0.1:{self.port(name)}/metrics"
        return f"http://127.0.0.1:{self.env[spec.metrics_port_variable]}/metrics"

    def port(self, name: str) -> int:
        spec = next(s for s in self.specs if s.name == name)
        return int(self.env[spec.port_variable])

    def children(self) -> dict[str, subprocess.Popen[bytes]]:
        """Every process this stack started, by name: engines, then services."""
        found = {engine.name: engine.process for engine in self.engines}
        found.update(self.processes)
        return found

    def restart(self, name: str) -> None:
        """Start `name` again on its port with its data; the old process must be gone.
        An engine is waited for (and dynalite's tables made again if it kept none); a
        service is only launched: `is_ready` tells when it serves."""
        for index, engine in enumerate(self.engines):
            if engine.name == name:
                port = int(engine.url.rsplit(":", 1)[1].split("/")[0])
                persisted = self.data_dir / name if self.data_dir else None
                start = start_dynalite if name == "dynalite" else start_redis
                self.engines[index] = start(persisted, port, self.log_dir / f"{name}.log")
                if name == "dynalite":
                    self.create_tables()
                return
        spec = next(s for s in self.specs if s.name == name)
        self.processes[name] = self._launch(spec)

    def is_ready(self, name: str) -> bool:
        for engine in self.engines:
            if engine.name == name:
                return engine.process.poll() is None
        spec = next(s for s in self.specs if s.name == name)
        port = int(self.env[spec.port_variable])
        return _http_ready(port) if spec.http else _grpc_serving(port, self.probe(name))

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(list(self.processes.items())):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in time; killing it")
                process.kill()
                process.wait()
        for engine in reversed(self.engines):
            engine.stop()
        self.processes.clear()
        self.engines.clear()
        if self.data_lock is not None:
            self.data_lock.release()
            self.data_lock = None

    def probe(self, name: str) -> tuple[grpc.ChannelCredentials, str] | None:
        """How this stack reaches `name` for health: None (plaintext), or the operator's
        credentials and the server name the certificate of `name` carries."""
        if not self.mtls:
            return None
        operator = self.identities[OPERATOR]
        credentials = grpc.ssl_channel_credentials(
            root_certificates=operator.ca_file.read_bytes(),
            private_key=operator.key_file.read_bytes(),
            certificate_chain=operator.cert_file.read_bytes(),
        )
        spec = next((s for s in self.specs if s.name == name), None)
        return credentials, server_name(spec.runs if spec else name)

    def _wait_ready(
        self, spec: ProcessSpec, port: int, process: subprocess.Popen[bytes], log: Path
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(
                    f"{spec.name} exited during start; last log lines:\n" + "\n".join(tail)
                )
            if _http_ready(port) if spec.http else _grpc_serving(port, self.probe(spec.name)):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{spec.name} not ready within {START_TIMEOUT_SECONDS} s; see {log}")


def _grpc_serving(port: int, secure: tuple[grpc.ChannelCredentials, str] | None = None) -> bool:
    address = f"127.0.0.1:{port}"
    if secure is None:
        channel = grpc.insecure_channel(address)
    else:
        credentials, name = secure
        options = [("grpc.ssl_target_name_override", name)]
        channel = grpc.secure_channel(address, credentials, options=options)
    with channel:
        try:
            status = (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(), timeout=1)
                .status
            )
        except grpc.RpcError:
            return False
    return bool(status == health_pb2.HealthCheckResponse.SERVING)


def _http_ready(port: int) -> bool:
    try:
        # Bandit B310 accepted: the URL is ours, http on loopback, never a caller's.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:  # nosec B310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
