"""A backup taken while people trade is consistent: every snapshot, restored into an
empty table, balances. A cut-short file and a non-empty target are refused; a store
that does not answer is reported as such, within the tools' store budget."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from common.dynamo import ensure_table
from ops import backup
from ops.__main__ import main as ops_main
from ops.audit import audit_trading_table
from ops.backup import BackupError, TableSnapshot, read_backup, restore, snapshot, write_backup
from ops.settings import ToolStore
from tests.integration.order_fixtures import (
    FakeInventory,
    OrderEndpoint,
    Trader,
    unreachable_address,
)
from tests.support import unique


def quiet(_table: str, _done: int, _total: int) -> None:
    return None


def test_snapshots_taken_during_trading_each_balance(
    start_order_server: Callable[..., OrderEndpoint],
    new_trader: Callable[[], Trader],
    market: FakeInventory,
    dynamodb_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small pages: trades land between them, as on a table too big for one page.
    monkeypatch.setattr(backup, "SCAN_PAGE_ITEMS", 3)
    store = ToolStore(dynamodb_endpoint, "us-east-1")
    prefix = unique("live") + "-"
    ensure_table(store.client, prefix + "trading")
    service = start_order_server(table_prefix=prefix)
    traders = [new_trader().via(service.stub) for _ in range(3)]
    for trader in traders:
        trader.deposit("5000")
    stop = threading.Event()
    placed = [0]

    def trade(trader: Trader) -> None:
        # Bounded: at most 60 orders per trader, or until the snapshots are done.
        for n in range(60):
            if stop.is_set():
                return
            trader.buy("BTC", "0.001") if n % 3 else trader.sell("BTC", "0.001")
            placed[0] += 1

    for trader in traders:
        trader.buy("BTC", "0.01")
    workers = [threading.Thread(target=trade, args=(t,)) for t in traders]
    for worker in workers:
        worker.start()
    try:
        snapshots: list[list[TableSnapshot]] = []
        # Snapshots while every trader is still trading, 20 at most.
        while all(worker.is_alive() for worker in workers) and len(snapshots) < 20:
            snapshots.append(snapshot({"trading": store.table(prefix + "trading")}, quiet))
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert placed[0] > 0
    for n, taken in enumerate(snapshots):
        path = tmp_path / f"snapshot-{n}.jsonl"
        write_backup(path, taken)
        target = store.table(unique("restored") + "-trading")
        restore({"trading": target}, read_backup(path), quiet)
        report = audit_trading_table(target)
        assert report.clean, report.discrepancies
        assert report.accounts == len(traders)


def test_a_cut_short_file_and_a_non_empty_store_are_refused(
    dynamodb_endpoint: str, tmp_path: Path
) -> None:
    store = ToolStore(dynamodb_endpoint, "us-east-1")
    source = store.table(unique("source"))
    ensure_table(store.client, source.name)
    store.client.put_item(
        TableName=source.name, Item={"pk": {"S": "ASSET#BTC"}, "sk": {"S": "ASSET"}}
    )
    path = tmp_path / "whole.jsonl.gz"
    seen: list[tuple[str, int, int]] = []
    write_backup(path, snapshot({"assets": source}, lambda *step: seen.append(step)))
    assert read_backup(path) == {"assets": [{"pk": {"S": "ASSET#BTC"}, "sk": {"S": "ASSET"}}]}
    # The progress reached every item of the table.
    assert seen[-1][:2] == ("assets", 1)
    with pytest.raises(BackupError, match="not empty"):
        restore({"assets": source}, read_backup(path), quiet)

    plain = tmp_path / "whole.jsonl"
    write_backup(plain, snapshot({"assets": source}, quiet))
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(plain.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(BackupError, match="cut short"):
        read_backup(cut)


def test_the_tool_refuses_a_cut_short_file_and_missing_tables_with_exit_status_2(
    dynamodb_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DYNAMODB_ENDPOINT", dynamodb_endpoint)
    monkeypatch.setenv("TABLE_PREFIX", unique("cli") + "-")
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"format": "trading-platform-backup", "version": 1, "tables": ["users"]}\n')
    assert ops_main(["--no-progress", "restore", str(cut)]) == 2
    assert "restore failed:" in capsys.readouterr().err
    # Tables that are not there (a wrong prefix, say) are named, not a traceback.
    assert ops_main(["--no-progress", "backup", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "none.jsonl").exists()


def test_the_tools_report_a_store_that_refuses_connections_with_exit_status_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Nothing listens there: every request is refused, and the tools' store budget
    # ends the retries (no traceback, no file left behind).
    monkeypatch.setenv("DYNAMODB_ENDPOINT", f"http://{unreachable_address()}")
    for command in (["backup", str(tmp_path / "none.jsonl")], ["audit"]):
        assert ops_main(["--no-progress", *command]) == 2, command
        refusal = capsys.readouterr().err
        assert f"{command[0]} failed:" in refusal
        assert "STORE_UNAVAILABLE" in refusal
    assert not list(tmp_path.iterdir())
