"""`python -m ops audit|backup|restore`: see the README ("Audit the books")."""

from __future__ import annotations

import argparse
import sys

from ops.audit import audit_trading_table, print_report
from ops.settings import StoreSettings, store_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__)
    parser.add_argument(
        "--local",
        action="store_true",
        help="without DYNAMODB_ENDPOINT, use the local stack's store (what ./dev does)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("audit", help="check that every account's books balance")
    args = parser.parse_args(argv)
    settings = StoreSettings()
    with store_client(settings, local=args.local) as client:
        table = settings.tables()["trading"]
        report = audit_trading_table(client, table)
        print_report(report, table, sys.stdout)
        return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
