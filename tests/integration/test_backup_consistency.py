"""A backup taken while people trade is consistent: every snapshot, restored into an
empty table, balances. A cut-short file and a non-empty target are refused; a store
that does not answer is reported as such, within the tools' store budget."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from common.dynamo import ensure_table
from devstack.data_lock import DataFolderLock
from devstack.engines import ROOT, free_port
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


def test_the_tools_report_a_store_that_refuses_connections_with_exit_status_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Nothing listens there: every request is refused, and the tools' store budget
    # ends the retries (no traceback, no file left behind).
    monkeypatch.setenv("DYNAMODB_ENDPOINT", f"http://{unreachable_address()}")
    whole = tmp_path / "source" / "whole.jsonl"
    write_backup(whole, [TableSnapshot("assets", [])])
    commands = (["backup", str(tmp_path / "none.jsonl")], ["audit"], ["restore", str(whole)])
    for command in commands:
        assert ops_main(["--no-progress", *command]) == 2, command
        refusal = capsys.readouterr().err
        assert refusal.startswith(f"{command[0]} failed:"), refusal
        assert refusal.count("\n") == 1, refusal
        assert "STORE_UNAVAILABLE" in refusal
    assert [path.name for path in tmp_path.iterdir()] == ["source"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("name", ["2026-12-01.jsonl.gz", "2026-12-01.jsonl"])
def test_a_backup_into_a_missing_folder_is_made_owner_only_from_its_first_byte(
    name: str,
    dynamodb_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The README's example on a fresh clone: `backups/` does not exist yet.
    monkeypatch.setenv("DYNAMODB_ENDPOINT", dynamodb_endpoint)
    prefix = unique("private") + "-"
    monkeypatch.setenv("TABLE_PREFIX", prefix)
    store = ToolStore(dynamodb_endpoint, "us-east-1")
    for table in ("users", "assets", "trading"):
        ensure_table(store.client, prefix + table)
    store.client.put_item(
        TableName=prefix + "assets", Item={"pk": {"S": "ASSET#BTC"}, "sk": {"S": "ASSET"}}
    )
    monkeypatch.chdir(tmp_path)
    previous = os.umask(0o022)  # the usual umask, under which a plain open() gives 0644
    # A stale partial of an earlier, interrupted run, readable by all.
    stale = tmp_path / "kept"
    stale.mkdir(mode=0o755)
    (stale / (name + ".partial")).write_text("old")
    (stale / (name + ".partial")).chmod(0o644)
    modes_while_writing: list[int] = []
    writer = backup._text_writer

    def watched(raw: IO[bytes], compressed: bool) -> IO[str]:
        modes_while_writing.append(stat.S_IMODE(os.fstat(raw.fileno()).st_mode))
        return writer(raw, compressed)

    monkeypatch.setattr(backup, "_text_writer", watched)
    try:
        for target in (Path("backups/new") / name, stale / name):
            assert ops_main(["--no-progress", "backup", str(target)]) == 0
            assert "Backed up 1 items" in capsys.readouterr().out
            assert _mode(target) == 0o600
            assert read_backup(target)["assets"] == [
                {"pk": {"S": "ASSET#BTC"}, "sk": {"S": "ASSET"}}
            ]
            assert not target.with_name(name + ".partial").exists()
    finally:
        os.umask(previous)
    assert modes_while_writing == [0o600, 0o600]
    assert _mode(tmp_path / "backups") == 0o700
    assert _mode(tmp_path / "backups" / "new") == 0o700
    assert _mode(stale) == 0o755  # an operator's existing folder is left as it is


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """What a user may get wrong: the command, and what its one line must say."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "text.gz").write_text("not gzip")
    header = '{"format": "trading-platform-backup", "version": 1, "tables": ["users"]}\n'
    (tmp_path / "cut.jsonl").write_text(header)
    (tmp_path / "damaged.jsonl").write_text(header + '{"tab\n')
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00")
    missing = "table {prefix}{table} does not exist: check DYNAMODB_ENDPOINT and TABLE_PREFIX"
    return {
        "audit of a store without tables": (["audit"], missing.replace("{table}", "trading")),
        "backup of a store without tables": (
            ["backup", str(tmp_path / "b.jsonl")],
            missing.replace("{table}", "users"),
        ),
        "restore of a missing file": (
            ["restore", str(tmp_path / "missing.jsonl")],
            f"cannot read {tmp_path / 'missing.jsonl'}: No such file or directory",
        ),
        "restore of a folder": (["restore", str(tmp_path)], "it is a folder"),
        "restore of a damaged gzip file": (
            ["restore", str(tmp_path / "text.gz")],
            "is damaged (not whole gzip data)",
        ),
        "restore of a cut-short file": (["restore", str(tmp_path / "cut.jsonl")], "cut short"),
        "restore of a damaged line": (
            ["restore", str(tmp_path / "damaged.jsonl")],
            "is damaged at line 2",
        ),
        "restore of a file that is not text": (
            ["restore", str(tmp_path / "binary.jsonl")],
            "is not a backup file (not UTF-8 text)",
        ),
        "backup onto a folder": (["backup", str(tmp_path)], "is a folder"),
        "backup below a file": (
            ["backup", str(tmp_path / "a-file" / "b.jsonl")],
            f"{tmp_path / 'a-file'} is not a folder",
        ),
    }


def test_every_command_refuses_what_it_cannot_do_in_one_line_with_exit_status_2(
    dynamodb_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A store without the platform's tables: a fresh clone's, or a wrong prefix.
    monkeypatch.setenv("DYNAMODB_ENDPOINT", dynamodb_endpoint)
    prefix = unique("empty") + "-"
    monkeypatch.setenv("TABLE_PREFIX", prefix)
    for case, (command, says) in _bad_inputs(tmp_path).items():
        assert ops_main(["--no-progress", *command]) == 2, case
        captured = capsys.readouterr()
        assert captured.err.startswith(f"{command[0]} failed: "), (case, captured.err)
        assert says.replace("{prefix}", prefix) in captured.err, (case, captured.err)
        assert captured.err.count("\n") == 1, (case, captured.err)
        assert captured.out == "", case
    assert not list(tmp_path.glob("**/*.partial"))
    assert not (tmp_path / "b.jsonl").exists()


def test_the_local_tools_on_a_fresh_data_folder_answer_cleanly_and_keep_it_private(
    tmp_path: Path,
) -> None:
    # `./dev audit` on a fresh clone: no stack, no data yet. The tool starts a dynalite
    # on the data folder (made owner-only) and says the tables are missing.
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DYNAMODB_ENDPOINT", "TABLE_PREFIX")}
    env.update(
        DATA_DIR=str(data_dir),
        DYNALITE_PORT=str(free_port()),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "generated")]),
    )
    done = subprocess.run(
        [sys.executable, "-m", "ops", "--local", "--no-progress", "audit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("audit failed: table trading does not exist"), done.stderr
    assert "Traceback" not in done.stderr
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "dynalite") == 0o700
    # Nothing the tool started (its dynalite) still holds the folder once it ended.
    DataFolderLock(data_dir, "./dev up").acquire().release()
