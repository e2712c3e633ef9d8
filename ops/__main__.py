"""`python -m ops audit | backup FILE | restore FILE`: see the README ("Audit the books",
"Back up and restore")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.errors import DomainError
from ops.audit import audit_trading_table, print_report
from ops.backup import (
    BackupError,
    no_progress,
    progress_bar,
    read_backup,
    restore,
    snapshot,
    write_backup,
)
from ops.settings import StoreSettings, ToolStore, tool_store


def _audit(store: ToolStore, settings: StoreSettings) -> int:
    table = store.tables(settings)["trading"]
    report = audit_trading_table(table)
    print_report(report, table.name, sys.stdout)
    return 0 if report.clean else 1


def _backup(store: ToolStore, settings: StoreSettings, path: Path, show: bool) -> int:
    with progress_bar() if show else no_progress() as progress:
        snapshots = snapshot(store.tables(settings), progress)
    counts = write_backup(path, snapshots)
    print(f"Backed up {sum(counts.values())} items to {path}: {_counts(counts)}")
    return 0


def _restore(store: ToolStore, settings: StoreSettings, path: Path, show: bool) -> int:
    content = read_backup(path)
    with progress_bar() if show else no_progress() as progress:
        counts = restore(store.tables(settings), content, progress)
    print(f"Restored {sum(counts.values())} items from {path}: {_counts(counts)}")
    print("Checking the restored books...")
    return _audit(store, settings)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {count}" for table, count in counts.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    parser.add_argument(
        "--local",
        action="store_true",
        help="without DYNAMODB_ENDPOINT, use the local stack's store (what ./dev does)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("audit", help="check that every account's books balance")
    backup = commands.add_parser("backup", help="export every table to FILE (.gz: gzip)")
    backup.add_argument("file", type=Path)
    restore_command = commands.add_parser("restore", help="load FILE into an empty store")
    restore_command.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    settings = StoreSettings()
    show = not args.no_progress
    try:
        with tool_store(settings, local=args.local) as store:
            if args.command == "backup":
                return _backup(store, settings, args.file, show)
            if args.command == "restore":
                return _restore(store, settings, args.file, show)
            return _audit(store, settings)
    except BackupError as error:
        print(f"{args.command} failed: {error}", file=sys.stderr)
        return 2
    except DomainError as error:  # the store did not answer within its budget
        print(f"{args.command} failed: {error.message} ({error.reason})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
