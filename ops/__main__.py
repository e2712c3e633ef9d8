"""`python -m ops audit | backup FILE | restore FILE`: see the README ("Audit the books",
"Back up and restore")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.errors import DomainError
from ops.audit import audit_trading_table, print_report
from ops.backup import (
    no_progress,
    prepare_destination,
    progress_bar,
    read_backup,
    restore,
    snapshot,
    write_backup,
)
from ops.settings import (
    StoreSettings,
    ToolError,
    ToolStore,
    client_error_reason,
    failed,
    tool_store,
)

EXIT_STATUSES = """exit status:
  0  done (audit and restore: the books balance)
  1  the books do NOT balance (audit, and the audit that ends a restore)
  2  nothing done: bad arguments, a backup file that is missing, unreadable, damaged or
     cut short, a path that cannot be written, a table that does not exist, a store
     that does not answer (STORE_UNAVAILABLE) or refuses; one line on stderr says which"""


def _audit(store: ToolStore, settings: StoreSettings) -> int:
    table = store.existing_tables(settings, "trading")["trading"]
    report = audit_trading_table(table)
    print_report(report, table.name, sys.stdout)
    return 0 if report.clean else 1


def _backup(store: ToolStore, settings: StoreSettings, path: Path, show: bool) -> int:
    tables = store.existing_tables(settings)
    with progress_bar() if show else no_progress() as progress:
        snapshots = snapshot(tables, progress)
    counts = write_backup(path, snapshots)
    print(f"Backed up {sum(counts.values())} items to {path}: {_counts(counts)}")
    return 0


def _restore(
    store: ToolStore, settings: StoreSettings, path: Path, content: dict[str, Any], show: bool
) -> int:
    with progress_bar() if show else no_progress() as progress:
        counts = restore(store.tables(settings), content, progress)
    print(f"Restored {sum(counts.values())} items from {path}: {_counts(counts)}")
    print("Checking the restored books...")
    return _audit(store, settings)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {count}" for table, count in counts.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops",
        description=__doc__,
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        # The file first: a path that cannot be written or a file that cannot be read is
        # said before any store is started or read.
        if args.command == "backup":
            prepare_destination(args.file)
        content = read_backup(args.file) if args.command == "restore" else {}
        with tool_store(settings, local=args.local) as store:
            if args.command == "backup":
                return _backup(store, settings, args.file, show)
            if args.command == "restore":
                return _restore(store, settings, args.file, content, show)
            return _audit(store, settings)
    except DomainError as error:  # the store did not answer within its budget
        return failed(args.command, f"{error.message} ({error.reason})")
    except BotoCoreError as error:  # no answer at all (a call outside the store plumbing)
        return failed(args.command, f"the store did not answer: {error} (STORE_UNAVAILABLE)")
    except ClientError as error:  # the store refused: no access, a table being deleted...
        return failed(args.command, client_error_reason(error))
    except (ToolError, OSError, TimeoutError, RuntimeError) as error:
        # RuntimeError, TimeoutError: the local dynalite could not be started.
        return failed(args.command, str(error))


if __name__ == "__main__":
    sys.exit(main())
