"""Mutual TLS between the processes, without a mesh.

A process is on mTLS when `TLS_CA_FILE`, `TLS_CERT_FILE` and `TLS_KEY_FILE` are all
set (none set: plaintext, the default; some set: it refuses to start). Its identity is
the URI SAN of its certificate, `spiffe://trading-platform/<name>` with the name of
`common/callgraph.py` (svc_user, svc_inventory, svc_order, rest_bridge, operator); a
serving process also carries the DNS name `<name with - for _>` (e.g. `svc-order`),
which a client checks against the service it means to reach.

Servers require a client certificate from the CA, and `PeerAuthorization` lets a call
through only when the call graph allows the caller's identity that method on this
process (PERMISSION_DENIED otherwise). Certificates are checked at start (readable,
issued by the CA, valid now); they are rotated by issuing new ones and restarting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from common.callgraph import SERVES, may_call
from common.settings import CommonSettings

log = logging.getLogger(__name__)

TRUST_DOMAIN = "trading-platform"
_PREFIX = f"spiffe://{TRUST_DOMAIN}/"


def identity_uri(name: str) -> str:
    return _PREFIX + name


def server_name(name: str) -> str:
    """The DNS name a serving process's certificate carries (no `_` in DNS names)."""
    return name.replace("_", "-")


def _identity_of(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    ours = [uri.removeprefix(_PREFIX) for uri in uris if uri.startswith(_PREFIX)]
    return ours[0] if len(ours) == 1 and ours[0] else None


@dataclass(frozen=True)
class WireTls:
    """This process's CA, certificate chain and key (PEM), and its identity."""

    ca: bytes
    cert: bytes
    key: bytes
    identity: str
    not_after: datetime

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def load_wire_tls(
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    *,
    now: datetime | None = None,
) -> WireTls | None:
    """The process's mTLS material, checked; None when no file is configured.

    Raises ValueError (the process must not start) when only some files are set, a file
    is unreadable, the certificate is not issued by the CA, either is outside its
    validity period, or the certificate carries no identity of ours."""
    files = {"TLS_CA_FILE": ca_file, "TLS_CERT_FILE": cert_file, "TLS_KEY_FILE": key_file}
    if all(path is None for path in files.values()):
        return None
    unset = [name for name, path in files.items() if path is None]
    if unset:
        raise ValueError(
            f"mTLS needs all of TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE; unset: {unset}"
        )
    try:
        ca_pem, cert_pem, key_pem = (Path(str(path)).read_bytes() for path in files.values())
        ca = x509.load_pem_x509_certificate(ca_pem)
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except (OSError, ValueError) as error:
        raise ValueError(f"mTLS files unreadable: {error}") from error
    moment = now or datetime.now(UTC)
    for name, cert in (("TLS_CA_FILE", ca), ("TLS_CERT_FILE", certificate)):
        if not cert.not_valid_before_utc <= moment < cert.not_valid_after_utc:
            raise ValueError(
                f"{name} is not valid now: valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
                f"to {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; issue a new one and restart"
            )
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise ValueError(f"TLS_CERT_FILE is not issued by TLS_CA_FILE: {error}") from error
    identity = _identity_of(certificate)
    if identity is None:
        raise ValueError(f"TLS_CERT_FILE has no URI SAN {_PREFIX}<name>")
    days_left = (certificate.not_valid_after_utc - moment).days
    log.info("mTLS on", extra={"identity": identity, "cert_days_left": days_left})
    return WireTls(ca_pem, cert_pem, key_pem, identity, certificate.not_valid_after_utc)


def wire_tls(settings: CommonSettings) -> WireTls | None:
    """The process's mTLS material from its TLS_* settings (see load_wire_tls)."""
    return load_wire_tls(settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)


def peer_identity(context: grpc.ServicerContext) -> str | None:
    """The call graph name in the caller's verified client certificate, if any."""
    pems: Any = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return None
    try:
        return _identity_of(x509.load_pem_x509_certificate(bytes(pems[0])))
    except ValueError:
        return None


def callee_of(services: Sequence[str]) -> str | None:
    """The process that serves the first of these gRPC services (None: not ours)."""
    serving = {service: process for process, service in SERVES.items()}
    return next((serving[s] for s in services if s in serving), None)


class PeerAuthorization(grpc.ServerInterceptor):
    """Lets a call through only when `callgraph.may_call(peer, me, method)`."""

    def __init__(self, me: str) -> None:
        self._me = me

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        path: str = handler_call_details.method
        me = self._me

        def check(context: grpc.ServicerContext) -> None:
            caller = peer_identity(context)
            if not may_call(caller, me, path):
                log.warning(
                    "call refused by the call graph", extra={"peer": caller, "method": path}
                )
                context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{caller or 'an unidentified peer'} may not call {path} on {me}",
                )

        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def unary_behavior(request: Any, context: grpc.ServicerContext) -> Any:
                check(context)
                return unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def stream_behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                check(context)
                yield from stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                stream_behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            # Reflection is bidirectional streaming (the operator's grpcurl).
            bidi = handler.stream_stream

            def bidi_behavior(requests: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                check(context)
                yield from bidi(requests, context)

            return grpc.stream_stream_rpc_method_handler(
                bidi_behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return None  # no client-streaming RPC exists; refuse rather than pass unchecked
