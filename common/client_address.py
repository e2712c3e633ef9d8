"""Who the client of a call is, by network address, as far as a service can believe it.

A service sees only its gRPC peer. The REST bridge knows better (the HTTP peer, or the
address behind its trusted proxies) and passes it on as `x-client-address`. Anyone can
send that metadata, so a service believes it only from peers it is told to trust
(`CLIENT_ADDRESS_TRUSTED_PEERS`, IPs or CIDRs); from any other peer the peer's own
address is the client. Locally (`./dev up`) that list is loopback, where the bridge
runs; in the mesh every peer is the local sidecar, and what keeps the header honest is
the call graph (common/callgraph.py): under mTLS only the bridge may call Login.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import unquote

import grpc

from common.settings import Network

CLIENT_ADDRESS_HEADER = "x-client-address"


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


def client_address(context: grpc.ServicerContext, trusted_peers: Sequence[Network]) -> str:
    """The caller's `x-client-address` when the peer is trusted and the value is an IP
    address; otherwise the peer's own address."""
    peer = peer_address(context.peer())
    peer_ip = _address(peer)
    if peer_ip is None or not any(peer_ip in network for network in trusted_peers):
        return peer
    for key, value in context.invocation_metadata():
        if key == CLIENT_ADDRESS_HEADER and isinstance(value, str):
            claimed = _address(value)
            if claimed is not None:
                return str(claimed)
    return peer
