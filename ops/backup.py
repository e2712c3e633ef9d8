"""Backup and restore of every table of the platform, through the DynamoDB API alone.

A backup file is JSON lines (gzip when its name ends in `.gz`):
    {"format": "trading-platform-backup", "version": 1, "created_at": ..., "tables": [...]}
    {"table": "users", "item": {<the item in DynamoDB's attribute-value JSON>}}
    ...
    {"end": true, "counts": {"users": 12, "assets": 20, "trading": 340}}
Items keep DynamoDB's own typed form, so a restore writes back exactly what was read.
A file without its last line (a backup cut short) is refused by restore.

Consistency. The platform never changes two items in one write (DESIGN.md): each
user's account, with the items derived from it, and each user's profile, with its
sessions, is a unit that moves from one consistent state to the next. The backup reads
every table with one Scan and then reads each unit again; a unit read the same way twice
was, at the moment between the two reads, exactly as read (its items only move forward:
versions grow, derived items are added), and a unit that changed is read again until two
reads agree. So every unit in the file is a state the unit really had. Uniqueness
claims are the one rule across units: the file keeps exactly one claim per username and
email of each user in it (a claim caught half-way through an email change is dropped,
one not yet written is added), so a restore never frees a taken name. An account whose
last operation's derived items were not written yet gets them in the file, as svc_order
would write them on its next access.

Every read and write goes through the store's one plumbing (`common.dynamo.Table`,
items kept in their attribute-value form): each call is bounded, retried only when
safe, and an engine that does not answer is `StoreUnavailable`.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from common.dynamo import Attributes, Table, ensure_table, from_attributes, to_attributes
from svc_order.domain import derived_items
from svc_order.store import ACCOUNT, account_from_item, derived_to_items
from svc_user.store import CLAIM, PROFILE, claim_item

FORMAT = "trading-platform-backup"
VERSION = 1
# A unit that changed between two reads is read again at most this many times.
STABLE_READ_ATTEMPTS = 20
# Items per Scan page. Engines also cut pages at 1 MB; the tests make it small so that
# writes land between pages, as they do on a large table.
SCAN_PAGE_ITEMS = 1000
# Items written per step of a restore (one BatchWriteItem; the progress moves per step).
BATCH_SIZE = 25

Raw = Attributes  # an item in DynamoDB's attribute-value form


class BackupError(RuntimeError):
    """The backup or restore cannot be made; the message says why and what to do."""


@dataclass
class TableSnapshot:
    logical: str
    items: list[Raw]


# --- Reading ----------------------------------------------------------------------------


def _pk(item: Raw) -> str:
    return str(item["pk"]["S"])


def _scan(table: Table, advance: Callable[[int], None]) -> list[Raw]:
    items: list[Raw] = []
    for page in table.scan_attributes(page_size=SCAN_PAGE_ITEMS):
        items.extend(page)
        advance(len(page))
    return items


def _unit_of(pk: str) -> tuple[str, ...]:
    """The partitions that change together with `pk`: an account and its user's items."""
    kind, _, owner = pk.partition("#")
    if kind in ("ACCOUNT", "USER"):
        return (f"ACCOUNT#{owner}", f"USER#{owner}")
    return (pk,)


def _canonical(items: Iterable[Raw]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def _stable_units(table: Table, scanned: list[Raw]) -> list[Raw]:
    """The scanned items, with every unit confirmed or re-read until two reads agree."""
    by_pk: dict[str, list[Raw]] = {}
    for item in scanned:
        by_pk.setdefault(_pk(item), []).append(item)
    units = sorted({_unit_of(pk) for pk in by_pk})
    result: list[Raw] = []
    for unit in units:
        previous = [item for pk in unit for item in by_pk.get(pk, [])]
        for _ in range(STABLE_READ_ATTEMPTS):
            current = [item for pk in unit for item in table.query_attributes(pk)]
            if _canonical(current) == _canonical(previous):
                break
            previous = current
        else:
            raise BackupError(
                f"{table.name}: {', '.join(unit)} kept changing during the backup; run it again "
                "(or at a quieter time)"
            )
        result.extend(current)
    return result


def _reconcile_claims(items: list[Raw]) -> list[Raw]:
    """Exactly the username and email claims of the users in `items`, one each."""
    wanted: dict[tuple[str, str], Raw] = {}
    for item in items:
        plain = from_attributes(item)
        if plain["sk"] != PROFILE or plain.get("closed_at"):
            continue
        created = datetime.fromisoformat(plain["created_at"])
        for kind, value in (("USERNAME", plain["username"]), ("EMAIL", plain["email"])):
            wanted[(kind, value)] = to_attributes(
                claim_item(kind, value, plain["user_id"], created)  # type: ignore[arg-type]
            )
    kept: list[Raw] = []
    for item in items:
        plain = from_attributes(item)
        if plain["sk"] != CLAIM:
            kept.append(item)
            continue
        kind, _, value = plain["pk"].partition("#")
        match = wanted.get((kind, value))
        if match is not None and match["user_id"] == item["user_id"]:
            wanted[(kind, value)] = item  # the claim as stored, with its own time
    return kept + list(wanted.values())


def _complete_operations(items: list[Raw]) -> list[Raw]:
    """The trading items plus the derived items of each account's last operation that
    were not written yet (an operation between its two writes, or cut by a crash): what
    svc_order writes on the account's next access, written into the copy instead."""
    keys = {(_pk(item), str(item["sk"]["S"])) for item in items}
    added: list[Raw] = []
    for item in items:
        plain = from_attributes(item)
        if plain["sk"] != ACCOUNT or "last_operation" not in plain:
            continue
        account = account_from_item(plain)
        if account.last_operation is None:
            continue
        for derived in derived_to_items(account.user_id, derived_items(account.last_operation)):
            if (derived["pk"], derived["sk"]) not in keys:
                added.append(to_attributes(derived))
    return items + added


def snapshot(
    tables: dict[str, Table], progress: Callable[[str, int, int], None]
) -> list[TableSnapshot]:
    """Every item of every table (logical name -> table), consistent per unit.

    `progress(table, done, total)` is called as items are read (total is the engine's
    own estimate, which may lag).
    """
    snapshots = []
    for logical, table in tables.items():
        total = table.estimated_item_count()
        if total is None:
            raise BackupError(
                f"table {table.name} does not exist: check DYNAMODB_ENDPOINT and TABLE_PREFIX"
            )
        done = 0

        def advance(count: int, logical: str = logical, total: int = total) -> None:
            nonlocal done
            done += count
            progress(logical, done, max(total, done))

        items = _stable_units(table, _scan(table, advance))
        if logical == "users":
            items = _reconcile_claims(items)
        if logical == "trading":
            items = _complete_operations(items)
        snapshots.append(TableSnapshot(logical, items))
    return snapshots


# --- The file ---------------------------------------------------------------------------


def _open(path: Path, writing: bool, compressed: bool) -> IO[str]:
    if compressed:
        return gzip.open(path, "wt" if writing else "rt", encoding="utf-8")
    return path.open("w" if writing else "r", encoding="utf-8")


def write_backup(path: Path, snapshots: list[TableSnapshot]) -> dict[str, int]:
    """Writes the file whole or not at all (a temporary file renamed at the end)."""
    counts = {snap.logical: len(snap.items) for snap in snapshots}
    partial = path.with_name(path.name + ".partial")
    with _open(partial, True, path.suffix == ".gz") as out:
        header = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "tables": [snap.logical for snap in snapshots],
        }
        out.write(json.dumps(header) + "\n")
        for snap in snapshots:
            for item in snap.items:
                out.write(json.dumps({"table": snap.logical, "item": item}) + "\n")
        out.write(json.dumps({"end": True, "counts": counts}) + "\n")
    os.replace(partial, path)
    return counts


def read_backup(path: Path) -> dict[str, list[Raw]]:
    """The items of a backup file per logical table; BackupError when it is not whole."""
    tables: dict[str, list[Raw]] = {}
    with _open(path, False, path.suffix == ".gz") as source:
        lines = iter(source)
        try:
            header = json.loads(next(lines))
        except (StopIteration, json.JSONDecodeError):
            raise BackupError(f"{path} is not a backup file") from None
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise BackupError(f"{path} is not a version {VERSION} backup file")
        for name in header["tables"]:
            tables[name] = []
        for line in lines:
            record = json.loads(line)
            if record.get("end"):
                if record["counts"] != {name: len(items) for name, items in tables.items()}:
                    raise BackupError(f"{path}: the item counts do not match its last line")
                return tables
            tables[record["table"]].append(record["item"])
    raise BackupError(f"{path} was cut short (no last line): use another backup")


# --- Restoring --------------------------------------------------------------------------


def _batches(items: list[Raw]) -> Iterator[list[Raw]]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]


def restore(
    tables: dict[str, Table],
    content: dict[str, list[Raw]],
    progress: Callable[[str, int, int], None],
) -> dict[str, int]:
    """Writes a backup into empty tables (created when missing); the counts written.

    Refuses (BackupError) when a table holds anything: a restore never mixes states.
    """
    unknown = sorted(set(content) - set(tables))
    if unknown:
        raise BackupError(f"the backup holds tables this platform does not have: {unknown}")
    for logical in content:
        table = tables[logical]
        ensure_table(table.client, table.name)
        if not table.is_empty():
            raise BackupError(f"table {table.name} is not empty: restore only into an empty store")
    for logical, items in content.items():
        progress(logical, 0, len(items))
        done = 0
        for batch in _batches(items):
            tables[logical].put_many_attributes(batch)
            done += len(batch)
            progress(logical, done, len(items))
    return {logical: len(items) for logical, items in content.items()}


def progress_bar() -> AbstractContextManager[Callable[[str, int, int], None]]:
    """A progress bar per table on stderr (rich); silent when stderr is not a terminal."""
    return _RichProgress()


class _RichProgress(AbstractContextManager[Callable[[str, int, int], None]]):
    def __init__(self) -> None:
        self._bar = Progress(
            TextColumn("{task.description:10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Callable[[str, int, int], None]:
        self._bar.__enter__()
        return self._update

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    def _update(self, table: str, done: int, total: int) -> None:
        if table not in self._tasks:
            self._tasks[table] = self._bar.add_task(table, total=total)
        self._bar.update(self._tasks[table], completed=done, total=total)


def no_progress() -> AbstractContextManager[Callable[[str, int, int], None]]:
    return nullcontext(lambda _table, _done, _total: None)
