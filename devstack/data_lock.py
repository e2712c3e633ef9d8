"""Who is using a local data folder (`DATA_DIR`): `./dev up`, or an operator's tool that
started its own dynalite on it while the stack was down.

One engine at a time may own a data folder's store (two dynalites on one folder fight
over its files), so whoever starts one holds an exclusive `flock` on `DATA_DIR/stack.lock`
for as long as it runs and writes there who it is, its pid and its dynalite's port. The
kernel drops the lock when its holder exits, however it exits (a pid file would outlive a
killed stack), so a lock that can be taken is never stale.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from common.private_files import private_folder

LOCK_FILE = "stack.lock"


class DataFolderInUse(RuntimeError):
    """Another process holds the data folder; `holder` is what it wrote of itself
    (who, pid, dynalite_port; empty when it had not written yet)."""

    def __init__(self, data_dir: Path, holder: dict[str, Any]) -> None:
        self.data_dir = data_dir
        self.holder = holder
        who = holder.get("who", "another process")
        pid = holder.get("pid", "?")
        port = holder.get("dynalite_port")
        serving = f"; its dynalite listens on 127.0.0.1:{port}" if port else ""
        super().__init__(f"the data folder {data_dir} is in use by {who} (pid {pid}{serving})")


class DataFolderLock:
    """The exclusive hold of a data folder, from `acquire` to `release` (or exit)."""

    def __init__(self, data_dir: Path, who: str) -> None:
        self.data_dir = data_dir
        self.who = who
        self._descriptor: int | None = None

    def acquire(self) -> DataFolderLock:
        """Holds the folder, or raises DataFolderInUse naming its holder."""
        private_folder(self.data_dir)
        descriptor = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(descriptor)
            os.close(descriptor)
            raise DataFolderInUse(self.data_dir, holder) from None
        self._descriptor = descriptor
        self.describe()
        return self

    def describe(self, dynalite_port: int | None = None) -> None:
        """Writes who holds the folder (and, once known, its dynalite's port)."""
        if self._descriptor is None:
            return
        about: dict[str, Any] = {"who": self.who, "pid": os.getpid()}
        if dynalite_port is not None:
            about["dynalite_port"] = dynalite_port
        os.ftruncate(self._descriptor, 0)
        os.pwrite(self._descriptor, json.dumps(about).encode(), 0)

    def release(self) -> None:
        if self._descriptor is not None:
            os.ftruncate(self._descriptor, 0)
            os.close(self._descriptor)  # closing the file drops the flock
            self._descriptor = None

    def __enter__(self) -> DataFolderLock:
        # A second flock of this process on the same file would conflict with its first.
        return self if self._descriptor is not None else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(descriptor: int) -> dict[str, Any]:
    try:
        about = json.loads(os.pread(descriptor, 4096, 0) or b"{}")
    except ValueError:  # being written this very moment
        return {}
    return about if isinstance(about, dict) else {}
