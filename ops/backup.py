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

import errno
import gzip
import io
import json
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from common.dynamo import Attributes, Table, ensure_table, from_attributes, to_attributes
from common.private_files import private_folder
from ops.settings import ToolError, missing_table
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


class BackupError(ToolError):
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
            raise missing_table(table.name)
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


# A backup holds password hashes and personal data: the file (and its .partial) is the
# owner's alone from its first byte, and a folder made for it is too.
BACKUP_FILE_MODE = 0o600


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def prepare_destination(path: Path) -> None:
    """Checks, before anything is read, that the backup can be written at `path`: its
    folder is made (0700, with any missing parents) and a partial file can be created
    there. BackupError says what is wrong."""
    if path.is_dir():
        raise BackupError(f"{path} is a folder: give a file name for the backup")
    try:
        private_folder(path.parent)
        descriptor = _create_private(_partial(path))
    except OSError as error:
        raise BackupError(f"cannot write {path}: {_reason(error)}") from None
    os.close(descriptor)
    _partial(path).unlink()


def _create_private(path: Path) -> int:
    """A new empty file at `path`, mode 0600 from its creation (a stale one is replaced:
    O_CREAT keeps an existing file's mode)."""
    path.unlink(missing_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_FILE_MODE)


def _text_writer(raw: IO[bytes], compressed: bool) -> IO[str]:
    """Text into `raw`; closing it ends the gzip stream but leaves `raw` to its owner."""
    if compressed:
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw, mode="wb"), encoding="utf-8")
    return io.TextIOWrapper(raw, encoding="utf-8")


def write_backup(path: Path, snapshots: list[TableSnapshot]) -> dict[str, int]:
    """Writes the file whole or not at all (a temporary file, mode 0600, renamed at the
    end; removed when writing fails). Missing folders are made (0700). BackupError when
    the file cannot be written."""
    counts = {snap.logical: len(snap.items) for snap in snapshots}
    partial = _partial(path)
    try:
        private_folder(path.parent)
        with (
            open(_create_private(partial), "wb") as raw,
            _text_writer(raw, path.suffix == ".gz") as out,
        ):
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
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot write {path}: {_reason(error)}") from None
    return counts


def read_backup(path: Path) -> dict[str, list[Raw]]:
    """The items of a backup file per logical table; BackupError when it cannot be read
    or is not whole (missing, unreadable, not a backup, damaged, cut short)."""
    try:
        with _open_for_reading(path) as source:
            return _parse(path, source)
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise BackupError(f"{path} is damaged (not whole gzip data): use another backup") from None
    except UnicodeDecodeError:
        raise BackupError(f"{path} is not a backup file (not UTF-8 text)") from None
    except OSError as error:
        raise BackupError(f"cannot read {path}: {_reason(error)}") from None


def _open_for_reading(path: Path) -> IO[str]:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder, not a backup file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _parse(path: Path, source: IO[str]) -> dict[str, list[Raw]]:
    tables: dict[str, list[Raw]] = {}
    lines = iter(source)
    try:
        header = json.loads(next(lines))
    except (StopIteration, json.JSONDecodeError):
        raise BackupError(f"{path} is not a backup file") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError(f"{path} is not a backup file")
    if header.get("version") != VERSION:
        raise BackupError(f"{path} is not a version {VERSION} backup file")
    for name in header.get("tables") or []:
        tables[str(name)] = []
    for number, line in enumerate(lines, start=2):
        try:
            record = json.loads(line)
            if record.get("end"):
                if record["counts"] != {name: len(items) for name, items in tables.items()}:
                    raise BackupError(f"{path}: the item counts do not match its last line")
                return tables
            tables.setdefault(record["table"], []).append(record["item"])
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise BackupError(f"{path} is damaged at line {number}: use another backup") from None
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
