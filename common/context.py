"""What travels with one request inside a process: its id, caller, client address
and deadline.

Server interceptors set these; log lines and outgoing calls read them. Context
variables keep concurrent requests on different threads apart.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(frozen=True)
class Identity:
    """The verified caller of a request."""

    user_id: str
    role: str
    token_id: str
    session_id: str
    expires_at: int
    raw_token: str


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
identity_var: ContextVar[Identity | None] = ContextVar("identity", default=None)
# Absolute time.monotonic() by which the current request must be answered.
deadline_var: ContextVar[float | None] = ContextVar("deadline", default=None)
# The network address of the request's client (common/client_address.py decides it).
client_address_var: ContextVar[str | None] = ContextVar("client_address", default=None)


def new_request_id() -> str:
    return secrets.token_hex(16)


def sane_request_id(candidate: str | None) -> str:
    """The caller's id when it is 1-128 of [A-Za-z0-9._-], otherwise a new one."""
    if candidate and _SANE_REQUEST_ID.fullmatch(candidate):
        return candidate
    return new_request_id()


def current_identity() -> Identity:
    identity = identity_var.get()
    if identity is None:
        raise LookupError("no authenticated caller in this context")
    return identity


def current_client_address() -> str:
    client = client_address_var.get()
    if client is None:
        raise LookupError("no client address in this context")
    return client


def time_remaining() -> float | None:
    deadline = deadline_var.get()
    return None if deadline is None else deadline - time.monotonic()


@contextmanager
def outliving_the_request() -> Iterator[None]:
    """Calls inside are not cut by the request's deadline, only by their own budgets:
    for work that completes or undoes a change already made (a claim's release, an
    applied operation's derived items), which must not stop halfway because the client
    stopped waiting."""
    token = deadline_var.set(None)
    try:
        yield
    finally:
        deadline_var.reset(token)
