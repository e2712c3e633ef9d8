"""The conservation audit of the trading table: every account, every rule, every id.

Reads each user's records at one moment (svc_order.store.DynamoTradingStore.books),
checks them with svc_order.audit.audit_books (the rules live there), and prints a
summary and every discrepancy. Safe on a live system: it only reads, and an account
that does not balance is read again a second later before it is reported (an order
between its two writes is not a discrepancy).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from common.dynamo import Table
from svc_order.audit import Discrepancy, audit_books
from svc_order.store import DynamoTradingStore, UnstableRead

# An operation's derived items follow its account write by milliseconds: an account
# whose books do not balance is read again this much later before it is reported.
CONFIRM_AFTER_SECONDS = 1.0


@dataclass
class AuditReport:
    accounts: int = 0
    records: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    # Users whose account never held still long enough to be read at one moment.
    unread: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.discrepancies and not self.unread


def audit_trading_table(table: Table) -> AuditReport:
    store = DynamoTradingStore(table)
    report = AuditReport()
    for user_id in store.user_ids():
        try:
            books = store.books(user_id)
            if audit_books(books):
                time.sleep(CONFIRM_AFTER_SECONDS)
                books = store.books(user_id)
        except UnstableRead:
            report.unread.append(user_id)
            continue
        report.accounts += books.account is not None
        report.records += (
            len(books.cash_entries)
            + len(books.asset_entries)
            + len(books.orders_by_id)
            + len(books.orders_by_time)
        )
        report.discrepancies.extend(audit_books(books))
    return report


def print_report(report: AuditReport, table: str, out: TextIO) -> None:
    print(f"Audit of {table}", file=out)
    print(f"  accounts audited     {report.accounts}", file=out)
    print(f"  records checked      {report.records}", file=out)
    print(f"  discrepancies        {len(report.discrepancies)}", file=out)
    for kind, count in sorted(Counter(d.kind.value for d in report.discrepancies).items()):
        print(f"    {kind:26} {count}", file=out)
    if report.unread:
        print(f"  not read (busy)      {len(report.unread)}", file=out)
    for found in report.discrepancies:
        print(
            f"{found.kind.value} user={found.user_id} ids={','.join(found.ids)}: {found.detail}",
            file=out,
        )
    for user_id in report.unread:
        print(f"NOT_READ user={user_id}: the account kept changing; audit it again", file=out)
    print("The books balance." if report.clean else "The books do NOT balance.", file=out)
