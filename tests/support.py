"""Small helpers the tests share."""

from __future__ import annotations

import uuid

import grpc

from common.dynamo import StoreBudget
from common.tls import server_name
from devstack.engines import free_port
from devstack.pki import Identity
from devstack.stack import ORDER_PROCESSES_VARIABLE, SPECS, with_processes

# The services of the test session get a patient store budget: this machine is shared
# and a loaded engine can take over a second to answer. The fault tests set the
# defaults (STORE_DEFAULTS) on the services whose store they kill or stop.
PATIENT_STORE: dict[str, object] = {"store_read_timeout_seconds": 5.0, "store_budget_seconds": 5.0}
STORE_DEFAULTS: dict[str, object] = {
    "store_read_timeout_seconds": StoreBudget().read_timeout_seconds,
    "store_budget_seconds": StoreBudget().total_seconds,
}


def unique(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


# svc_order's processes in a stack a test starts with `./dev up`: two, the configuration
# the platform is optimised for, so that every stack test meets an account served by two
# processes (balanced round robin, one table).
STACK_ORDER_PROCESSES = 2


def stack_ports(order_processes: int = STACK_ORDER_PROCESSES) -> dict[str, str]:
    """Every port variable of `./dev up` (engines, services, metrics pages), each a free
    ephemeral port, so a stack a test starts never meets another on a default port; and
    ORDER_PROCESSES, the count of svc_order processes those ports are for."""
    ports = {"DYNALITE_PORT": str(free_port()), "REDIS_PORT": str(free_port())}
    # svc_order's further processes too (ORDER_GRPC_PORT_2, ...): left to choose their
    # own, they could pick a port handed out here that is not bound yet.
    for spec in with_processes(list(SPECS), order_processes):
        ports[spec.port_variable] = str(free_port())
        if spec.metrics_port_variable:
            ports[spec.metrics_port_variable] = str(free_port())
    ports[ORDER_PROCESSES_VARIABLE] = str(order_processes)
    return ports


# mTLS: `pytest --mtls tests/e2e` runs the services on mutual TLS (tests/conftest.py).
Pki = dict[str, Identity] | None


def tls_settings(pki: Pki, name: str) -> dict[str, object]:
    """The TLS_* settings of process `name` (none when the run is plaintext)."""
    if pki is None:
        return {}
    identity = pki[name]
    return {
        "tls_ca_file": identity.ca_file,
        "tls_cert_file": identity.cert_file,
        "tls_key_file": identity.key_file,
    }


def dial(pki: Pki, port: int, callee: str, caller: str) -> grpc.Channel:
    """A test's channel to `callee` on `port`, presenting `caller`'s certificate on mTLS."""
    address = f"127.0.0.1:{port}"
    if pki is None:
        return grpc.insecure_channel(address)
    identity = pki[caller]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=identity.ca_file.read_bytes(),
        private_key=identity.key_file.read_bytes(),
        certificate_chain=identity.cert_file.read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", server_name(callee))]
    return grpc.secure_channel(address, credentials, options=options)
