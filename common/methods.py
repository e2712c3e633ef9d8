"""What the contracts say about each RPC, read once from the generated descriptors."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from trading.v1 import inventory_pb2, options_pb2, order_pb2, user_pb2

# Importing the modules registers their descriptors in the default pool.
TRADING_FILES = (user_pb2.DESCRIPTOR, inventory_pb2.DESCRIPTOR, order_pb2.DESCRIPTOR)
TRADING_PACKAGE = "trading.v1"


@dataclass(frozen=True)
class MethodPolicy:
    full_name: str
    public: bool
    retryable: bool
    # The audit log's name for every call of it; "" when it is not audited.
    audit_event: str = ""


def _options_of(method: MethodDescriptor) -> MethodPolicy:
    options = method.GetOptions()
    return MethodPolicy(
        full_name=method.full_name,
        public=bool(options.Extensions[options_pb2.public]),
        retryable=bool(options.Extensions[options_pb2.retryable]),
        audit_event=str(options.Extensions[options_pb2.audit_event]),
    )


@cache
def policy_for(grpc_method: str) -> MethodPolicy | None:
    """The policy of '/trading.v1.UserService/Login'; None outside our contracts
    (health and reflection), which the interceptor leaves open to probes."""
    service, _, method = grpc_method.lstrip("/").partition("/")
    if not service.startswith(f"{TRADING_PACKAGE}."):
        return None
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    except KeyError:
        # Unknown to this process yet inside our package: require a token.
        return MethodPolicy(full_name=f"{service}.{method}", public=False, retryable=False)
    return _options_of(descriptor)


def retryable_methods(service_full_name: str) -> list[str]:
    service = descriptor_pool.Default().FindServiceByName(service_full_name)
    return [m.name for m in service.methods if _options_of(m).retryable]
