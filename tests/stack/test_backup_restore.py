"""`./dev backup` of a running stack and `./dev restore` into an empty one reproduce every
user, session, balance and order exactly: the audit passes, a second backup of the
restored store is the same file, and after `./dev up` on it people log in, refresh
their sessions and trade. Real processes throughout (the stack, the tools)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.engines import ROOT
from ops.backup import read_backup
from tests.stack.up_process import start_up, stop_up, wait_up
from tests.support import stack_ports, unique

PASSWORD = "Correct-Horse-42!"


def _dev(command: list[str], data_dir: Path, ports: dict[str, str]) -> str:
    """`./dev <command>` against the stack of `data_dir` (up or down); its output."""
    env = {k: v for k, v in os.environ.items() if k not in ("DYNAMODB_ENDPOINT", "TABLE_PREFIX")}
    env.update(ports, DATA_DIR=str(data_dir))
    done = subprocess.run(
        [str(ROOT / "dev"), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _items(path: Path) -> dict[str, list[str]]:
    """The file's items per table, in a canonical order."""
    return {
        table: sorted(json.dumps(item, sort_keys=True) for item in items)
        for table, items in read_backup(path).items()
    }


class Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.token = ""

    def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **options: Any
    ) -> Any:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.http.request(method, path, headers=headers, **options)
        assert response.status_code in (200, 201), (path, response.status_code, response.text)
        return response.json()

    def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        tokens: dict[str, Any] = self.call(
            "POST", "/api/v1/auth/login", json={"username": username, "password": password}
        )
        self.token = tokens["access_token"]
        return tokens

    def state(self) -> dict[str, Any]:
        """What a user sees of their data."""
        profile = self.call("GET", "/api/v1/auth/profile")
        return {
            "profile": profile,
            "balance": self.call("GET", "/api/v1/balance")["current_balance"],
            "orders": self.call("GET", "/api/v1/orders")["data"],
            "ledger": self.call("GET", "/api/v1/balance/transactions")["transactions"],
            "btc": self.call("GET", "/api/v1/assets/BTC/transactions")["data"],
        }


@pytest.mark.slow
def test_a_backup_restored_into_an_empty_store_is_the_same_platform(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    backup, again = tmp_path / "platform.jsonl.gz", tmp_path / "again.jsonl.gz"
    ports = stack_ports()
    people = [unique("trader") for _ in range(2)]
    before: dict[str, dict[str, Any]] = {}
    refresh_tokens: dict[str, str] = {}

    stack = start_up(first, ports)
    try:
        wait_up(stack)
        client = Client(f"http://127.0.0.1:{ports['BRIDGE_PORT']}")
        for n, name in enumerate(people):
            client.token = ""
            client.call(
                "POST",
                "/api/v1/auth/register",
                json={
                    "username": name,
                    "email": f"{name}@example.org",
                    "password": PASSWORD,
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                },
            )
            refresh_tokens[name] = client.login(name)["refresh_token"]
            client.call("POST", "/api/v1/balance/deposit", json={"amount": "1000"})
            client.call(
                "POST",
                "/api/v1/orders",
                json={"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.002"},
                headers={"Idempotency-Key": f"buy-{n}"},
            )
            client.call(
                "POST",
                "/api/v1/orders",
                json={"order_type": "market_sell", "asset_id": "BTC", "quantity": "0.001"},
            )
            before[name] = client.state()
        # A session logged out before the backup stays logged out after the restore.
        client.login(people[0])
        logged_out = client.token
        client.call("POST", "/api/v1/auth/logout", json={})
        # Taken while the platform runs.
        printed = _dev(["backup", str(backup)], first, ports)
        assert f"to {backup}" in printed
    finally:
        stop_up(stack)
    # The stack's data (store files, keys, logs, spans) is its owner's alone.
    for name in ("", "dynalite", "redis", "keys", "logs", "traces"):
        assert stat.S_IMODE((first / name).stat().st_mode) == 0o700, name
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    # An empty store; the signing key comes back from where it is kept (here: copied).
    shutil.copytree(first / "keys", second / "keys")
    ports = stack_ports()
    restored = _dev(["restore", str(backup)], second, ports)
    assert "The books balance." in restored
    _dev(["backup", str(again)], second, ports)
    assert _items(again) == _items(backup)

    stack = start_up(second, ports)
    try:
        wait_up(stack)
        client = Client(f"http://127.0.0.1:{ports['BRIDGE_PORT']}")
        for name in people:
            # The session from before the backup still refreshes...
            client.token = ""
            refreshed = client.call(
                "POST", "/api/v1/auth/refresh", json={"refresh_token": refresh_tokens[name]}
            )
            client.token = refreshed["access_token"]
            assert client.state() == before[name]
            # ...the password still logs in, and trading goes on from the same books.
            client.login(name)
            client.call(
                "POST",
                "/api/v1/orders",
                json={"order_type": "market_sell", "asset_id": "BTC", "quantity": "0.001"},
            )
            assert len(client.call("GET", "/api/v1/orders")["data"]) == 3
        client.token = logged_out
        refused = client.http.get(
            "/api/v1/balance", headers={"Authorization": f"Bearer {logged_out}"}
        )
        assert refused.status_code == 401
        assert "The books balance." in _dev(["audit"], second, ports)
    finally:
        stop_up(stack)
