"""The audit log: one structured record per security-relevant event, on its own stream.

Which calls are events is written in the contracts: an RPC with the method option
`(trading.v1.audit_event)` writes exactly one record per call, whatever its outcome
(the server interceptor calls `record_call`). The revocation list writes one record
per revocation and per restore (`record`). A record holds:

    ts, stream ("audit"), service, event, outcome ("success" | "failure"), reason
    (the error's stable reason on failure), user_id, session_id, request_id,
    client_address (common/client_address.py: the bridge's `x-client-address` from a
    trusted peer, else the peer), method, and the event's details.

Details come only from `SAFE_FIELDS`, by name, from the request, the response (and its
`data`) and what the service added with `note()`: ids, amounts, quantities, prices,
the username of a login. Passwords, tokens and hashes are in no safe field, so they
cannot reach the record; `note()` refuses any other name.

The stream: the logger "audit", which does not propagate to the service's log. It
writes to `AUDIT_LOG_FILE` when set (./dev up: `.data/logs/audit.log`, one file for
every process, lines appended whole), else to standard output, while the service's
own log lines go to standard error: a collector keeps the two apart.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from common.context import client_address_var, identity_var, request_id_var

STREAM = "audit"
SUCCESS = "success"
FAILURE = "failure"

# The only detail fields a record may carry.
SAFE_FIELDS = frozenset(
    {
        "username",
        "user_id",
        "session_id",
        "amount",
        "asset_id",
        "order_type",
        "quantity",
        "price",
        "status",
        "total_amount",
        "time_in_force",
        "order_id",
        "transaction_id",
        "current_balance",
        "changed_fields",
        "kind",
        "subject_id",
        "expires_at",
        "revocations",
        "sessions_revoked",
    }
)

_log = logging.getLogger(STREAM)
_notes: ContextVar[dict[str, Any] | None] = ContextVar("audit_notes", default=None)


class AuditFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "stream": STREAM,
            "service": self.service,
            "event": record.getMessage(),
            **getattr(record, "audit", {}),
        }
        return json.dumps(line, default=str)


def configure_audit_stream(service: str, path: Path | None) -> None:
    """Sends audit records to `path` (appended) or standard output, never elsewhere."""
    handler: logging.Handler = (
        logging.FileHandler(path, encoding="utf-8")
        if path is not None
        else logging.StreamHandler(sys.stdout)
    )
    handler.setFormatter(AuditFormatter(service))
    _log.handlers[:] = [handler]
    _log.setLevel(logging.INFO)
    _log.propagate = False


def note(**fields: Any) -> None:
    """Adds details to the record of the current call (the service knows more than
    the messages say, e.g. who logged in). Only SAFE_FIELDS; ValueError otherwise."""
    unsafe = sorted(set(fields) - SAFE_FIELDS)
    if unsafe:
        raise ValueError(f"not an audit field: {', '.join(unsafe)}")
    notes = _notes.get()
    if notes is not None:
        notes.update(fields)


def begin_call() -> None:
    """Starts collecting notes for the call running in this context."""
    _notes.set({})


def record(event: str, *, outcome: str = SUCCESS, reason: str = "", **details: Any) -> None:
    """Writes one record, with who, where from and which request, from the context."""
    unsafe = sorted(set(details) - SAFE_FIELDS - {"method"})
    if unsafe:
        raise ValueError(f"not an audit field: {', '.join(unsafe)}")
    identity = identity_var.get()
    entry: dict[str, Any] = {
        "outcome": outcome,
        "request_id": request_id_var.get(),
        "client_address": client_address_var.get(),
    }
    if reason:
        entry["reason"] = reason
    if identity is not None:
        entry["user_id"] = identity.user_id
        entry["session_id"] = identity.session_id
    else:
        # A public call (login, refresh) learns who it is about as it goes.
        noted = _notes.get() or {}
        entry.update({k: noted[k] for k in ("user_id", "session_id") if k in noted})
    entry.update({k: v for k, v in details.items() if v not in (None, "", [])})
    _log.info(event, extra={"audit": entry})


def _safe_fields(message: Message) -> Iterator[tuple[str, Any]]:
    for field, value in message.ListFields():
        if field.name in SAFE_FIELDS and not isinstance(value, Message):
            yield field.name, value
        elif field.name == "data" and isinstance(value, Message):
            yield from _safe_fields(value)


def _set_fields(message: Message) -> list[str]:
    """Names of the optional fields a request set (what an update changes)."""
    return sorted(
        field.name
        for field in message.DESCRIPTOR.fields
        if field.has_presence and message.HasField(field.name)
    )


def record_call(
    event: str,
    method: str,
    request: Any,
    response: Any,
    reason: str = "",
) -> None:
    """The one record of an audited call: failed when `reason` is given."""
    details: dict[str, Any] = {}
    if isinstance(request, Message):
        details.update(_safe_fields(request))
        if event == "profile_update":
            details["changed_fields"] = _set_fields(request)
    if isinstance(response, Message):
        details.update(_safe_fields(response))
    notes: Mapping[str, Any] = _notes.get() or {}
    details.update(notes)
    record(
        event,
        outcome=FAILURE if reason else SUCCESS,
        reason=reason,
        method=method,
        **details,
    )
