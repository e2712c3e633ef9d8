"""svc_user's metrics (Prometheus). Login failures are the refusals of Login by reason
(`grpc_server_refusals_total{grpc_method="Login"}`), counted by the interceptor; the
login throttle's blocks are those with reason `AUTH_004`, of Login and of every other
RPC that checks a password (ChangePassword, CloseAccount)."""

from __future__ import annotations

from prometheus_client import Counter

tokens_revoked = Counter(
    "tokens_revoked_total",
    "Revocations recorded: single access tokens (logout) and whole sessions, by kind.",
    ["kind"],
)
