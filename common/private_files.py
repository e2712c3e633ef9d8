"""Folders that hold secrets or personal data (store files, keys, backups): created
owner-only (0700) from the start, never created open and tightened afterwards."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FOLDER_MODE = 0o700


def private_folder(path: Path, *, tighten: bool = False) -> Path:
    """`path` as a folder; it and every missing parent are created with mode 0700.

    An existing folder keeps its mode unless `tighten` (for a folder that is the
    platform's own, such as the local stack's data folders): then group and others lose
    their access. `Path.mkdir(parents=True)` gives missing parents the default mode,
    hence the walk. Raises OSError (FileExistsError when `path` is a file).
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)
        except FileExistsError:  # made meanwhile by another process: as if it existed
            if not folder.is_dir():
                raise
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    if tighten and path not in missing:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
    return path
