"""Who the client of a call is, by network address, as far as a service can believe it.

A service sees only its gRPC peer. The REST bridge knows better (the HTTP peer, or the
address behind its trusted proxies) and passes it on as `x-client-address`. Anyone can
send that metadata, so a service believes it only from a caller it knows to be the
bridge; from any other caller the peer's own address is the client:

- on mTLS (the process has TLS_* set), by the caller's certificate: its identity must
  be `rest_bridge` (`RELAYS`). An address says nothing there: every process of
  `./dev up --mtls` is on loopback, and a certified svc_order is no bridge;
- on plaintext, by the peer's IP, within `CLIENT_ADDRESS_TRUSTED_PEERS` (IPs or CIDRs).
  Locally (`./dev up`) that list is loopback, where the bridge runs; in the mesh every
  peer is the local sidecar, and what keeps the header honest is the mesh's mTLS and
  the call graph (common/callgraph.py): only the bridge may call Login.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import unquote

import grpc

from common.callgraph import REST_BRIDGE
from common.settings import Network
from common.tls import peer_identity

CLIENT_ADDRESS_HEADER = "x-client-address"
# The processes (call graph names) that pass on their own client's address.
RELAYS = frozenset({REST_BRIDGE})


def peer_address(peer: str) -> str:
    """The IP of a gRPC peer string: 'ipv4:127.0.0.1:5000', 'ipv6:%5B::1%5D:5000'
    (the brackets may come escaped), 'unix:/path' (returned whole)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        host = unquote(rest).rpartition(":")[0]
        return host.strip("[]")
    return peer


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(
    context: grpc.ServicerContext, trusted_peers: Sequence[Network], *, mtls: bool = False
) -> str:
    """The caller's `x-client-address` when the caller is trusted and the value is an IP
    address; otherwise the peer's own address. Trusted: on mTLS (`mtls`), a caller
    whose certificate identity is in `RELAYS` (`trusted_peers` is not consulted); on
    plaintext, a peer whose IP is within `trusted_peers`."""
    peer = peer_address(context.peer())
    if mtls:
        if peer_identity(context) not in RELAYS:
            return peer
    else:
        peer_ip = _address(peer)
        if peer_ip is None or not any(peer_ip in network for network in trusted_peers):
            return peer
    for key, value in context.invocation_metadata():
        if key == CLIENT_ADDRESS_HEADER and isinstance(value, str):
            claimed = _address(value)
            if claimed is not None:
                return str(claimed)
    return peer
