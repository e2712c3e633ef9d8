"""`./dev up` (python -m devstack) run as a child process of a test, on its own ports
and data folder, and stopped with Ctrl-C (SIGINT) as a person would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from devstack.engines import ROOT


def start_up(data_dir: Path, ports: dict[str, str], *options: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DYNAMODB_ENDPOINT")}
    env.update(ports)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "generated")])
    command = [sys.executable, "-m", "devstack", "--data-dir", str(data_dir), "--skip-web"]
    return subprocess.Popen(
        # As a shell's background job (`./dev up &`): SIGINT ignored (inherited through
        # exec) until devstack sets its own handler; stop_up's SIGINT must stop it all
        # the same. Done by the shell rather than a preexec_fn: a preexec_fn makes
        # Python fork() instead of vfork(), and gRPC's fork handlers abort a child
        # forked from a process with live gRPC threads (seen in CI). The web build has
        # its own tests (tests/web builds it through the same function): --skip-web.
        ["/bin/sh", "-c", 'trap "" INT; exec "$@"', "sh", *command, *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_up(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if "Ctrl-C stops everything" in line:
            return "".join(seen)
    raise AssertionError("the stack did not come up:\n" + "".join(seen))


def stop_up(process: subprocess.Popen[str]) -> tuple[int, list[int]]:
    try:
        children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:  # it stopped by itself (a failed start)
        children = []
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    return code, [pid for pid in children if psutil.pid_exists(pid) and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
