"""One owner per local data folder: `./dev audit|backup|restore` on the data of a stack
that runs on other ports says so (and which DYNALITE_PORT to use) instead of starting a
second dynalite on its files; a second `./dev up` on it is refused; a holder that dies,
however it dies, leaves no stale lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.data_lock import DataFolderInUse, DataFolderLock
from devstack.engines import ROOT, free_port
from devstack.stack import LocalStack
from ops.__main__ import main as ops_main
from tests.support import unique


def test_a_tool_on_the_data_of_a_running_stack_names_it_and_its_port(
    dynamodb_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "data"
    stack_port = int(dynamodb_endpoint.rsplit(":", 1)[1])
    # What `./dev up` holds while it runs (devstack/stack.py: start_engines).
    held = DataFolderLock(data_dir, "./dev up").acquire()
    held.describe(dynalite_port=stack_port)
    monkeypatch.delenv("DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.setenv("DYNALITE_PORT", str(free_port()))  # left at another port
    monkeypatch.setenv("TABLE_PREFIX", unique("locked") + "-")
    try:
        for command in (["audit"], ["backup", str(tmp_path / "b.jsonl")]):
            assert ops_main(["--local", "--no-progress", *command]) == 2
            refusal = capsys.readouterr().err
            assert refusal == (
                f"{command[0]} failed: the data folder {data_dir} is in use by ./dev up "
                f"(pid {os.getpid()}; its dynalite listens on 127.0.0.1:{stack_port}): "
                f"set DYNALITE_PORT={stack_port} to use its store\n"
            )
        assert not (data_dir / "dynalite").exists()  # no second engine was started
        # The hint works: on the stack's port the tool reaches the stack's store.
        monkeypatch.setenv("DYNALITE_PORT", str(stack_port))
        assert ops_main(["--local", "--no-progress", "audit"]) == 2
        assert "table " in capsys.readouterr().err  # this prefix has no tables: the store
    finally:
        held.release()


def test_a_second_stack_on_a_folder_in_use_is_refused_before_it_starts_anything(
    tmp_path: Path,
) -> None:
    with DataFolderLock(tmp_path, "an operator's tool (python -m ops)"):
        stack = LocalStack(data_dir=tmp_path, log_dir=tmp_path / "logs")
        with pytest.raises(DataFolderInUse, match=r"in use by an operator's tool"):
            stack.start_engines()
        assert stack.engines == []
        assert not (tmp_path / "dynalite").exists()
    # Released: the folder can be held again.
    DataFolderLock(tmp_path, "./dev up").acquire().release()


def test_a_holder_killed_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from devstack.data_lock import DataFolderLock; "
            "DataFolderLock(pathlib.Path(sys.argv[1]), './dev up').acquire(); "
            "print('held', flush=True); sys.stdin.read()",
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")])},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DataFolderInUse, match=rf"\(pid {holder.pid}\)"):
            DataFolderLock(tmp_path, "./dev up").acquire()
    finally:
        holder.kill()
        holder.wait(timeout=10)
    DataFolderLock(tmp_path, "./dev up").acquire().release()
