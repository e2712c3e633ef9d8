"""Where the stores are: the same variables the services read (README, Configuration)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.dynamo import StoreBudget, Table, make_client
from devstack.data_lock import DataFolderInUse, DataFolderLock
from devstack.engines import ROOT, start_dynalite

# Operators' tools wait longer than a request may: no client's deadline is at stake, and
# a Scan page of a large table takes longer than one item. The store's one plumbing
# (common/dynamo.Table) still bounds every call, retries only what is safe and reports
# an engine that does not answer as StoreUnavailable.
TOOL_BUDGET = StoreBudget(
    connect_timeout_seconds=2.0, read_timeout_seconds=10.0, total_seconds=60.0, max_attempts=5
)


class ToolError(RuntimeError):
    """An operator's tool cannot do what was asked; the message (one line) says why and
    what to do. `python -m ops` prints it and exits with status 2."""


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    dynamodb_endpoint: str | None = Field(
        None, description="DynamoDB-compatible endpoint; unset means AWS itself."
    )
    aws_region: str = Field("us-east-1", description="Region of the DynamoDB client.")
    table_prefix: str = Field("", description="Prefix of every table name.")
    users_table: str = Field("users", description="svc_user's table (after the prefix).")
    assets_table: str = Field("assets", description="svc_inventory's table (after the prefix).")
    trading_table: str = Field("trading", description="svc_order's table (after the prefix).")
    # Only for `--local` (./dev): where the local stack keeps and serves its store.
    data_dir: Path = Field(ROOT / ".data", description="The local stack's data folder.")
    dynalite_port: int = Field(8001, description="Port of the local stack's dynalite.")

    def tables(self) -> dict[str, str]:
        """Every table of the platform: owner -> full name."""
        return {
            "users": self.table_prefix + self.users_table,
            "assets": self.table_prefix + self.assets_table,
            "trading": self.table_prefix + self.trading_table,
        }


class ToolStore:
    """The store as operators' tools reach it: one client, every table within
    `TOOL_BUDGET` (the client's timeouts are the budget's; botocore retries nothing)."""

    def __init__(self, endpoint: str | None, region: str) -> None:
        self.client: Any = make_client(endpoint, region, budget=TOOL_BUDGET)

    def table(self, name: str) -> Table:
        return Table(self.client, name, TOOL_BUDGET)

    def tables(self, settings: StoreSettings) -> dict[str, Table]:
        """Every table of the platform: owner -> its table."""
        return {logical: self.table(name) for logical, name in settings.tables().items()}

    def existing_tables(self, settings: StoreSettings, *logicals: str) -> dict[str, Table]:
        """The named tables of the platform (all when none is named); ToolError naming
        the first that does not exist."""
        tables = self.tables(settings)
        wanted = {name: tables[name] for name in logicals or tables}
        for table in wanted.values():
            if table.estimated_item_count() is None:
                raise missing_table(table.name)
        return wanted


def failed(command: str, reason: str) -> int:
    """What every operator's tool does when it cannot do what was asked: one line on
    stderr, exit status 2 (ops/__main__.py: EXIT_STATUSES)."""
    print(f"{command} failed: {' '.join(reason.split())}", file=sys.stderr)
    return 2


def client_error_reason(error: ClientError) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Message')} ({details.get('Code')})"


def missing_table(name: str) -> ToolError:
    return ToolError(
        f"table {name} does not exist: check DYNAMODB_ENDPOINT and TABLE_PREFIX "
        "(a new local store has no tables until ./dev up makes them)"
    )


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def tool_store(settings: StoreSettings, *, local: bool) -> Iterator[ToolStore]:
    """The settings' store.

    `local` (what ./dev passes) without DYNAMODB_ENDPOINT means the local stack's store:
    its running dynalite, or, when the stack is down, a dynalite started on its data
    folder for as long as the store is used, the folder held meanwhile (ToolError when
    a stack on another DYNALITE_PORT, or another tool, holds it: devstack/data_lock.py).
    """
    if settings.dynamodb_endpoint or not local:
        yield ToolStore(settings.dynamodb_endpoint, settings.aws_region)
        return
    # dynalite takes any credentials, but the client must have some.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    if _listening(settings.dynalite_port):
        yield ToolStore(f"http://127.0.0.1:{settings.dynalite_port}", settings.aws_region)
        return
    try:
        lock = DataFolderLock(settings.data_dir, "an operator's tool (python -m ops)").acquire()
    except DataFolderInUse as error:
        # A stack on other ports than DYNALITE_PORT says: a second dynalite on its
        # files would fail, and must not be tried.
        port = error.holder.get("dynalite_port")
        hint = f"set DYNALITE_PORT={port} to use its store" if port else "try again when it ends"
        raise ToolError(f"{error}: {hint}") from None
    with lock:
        engine = start_dynalite(settings.data_dir / "dynalite")
        lock.describe(dynalite_port=int(engine.url.rsplit(":", 1)[1]))
        try:
            yield ToolStore(engine.url, settings.aws_region)
        finally:
            engine.stop()
