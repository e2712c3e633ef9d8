"""`./dev up` supervises what it started: each process killed in turn (dynalite, Redis,
every service, the bridge) is restarted by itself with its data, the console says so,
the bridge's /health shows the gap, and the platform never stops."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.stack import existing_specs
from tests.stack.up_process import start_up, stop_up
from tests.support import stack_ports, unique

PASSWORD = "Correct-Horse-42!"
WAIT_SECONDS = 90.0


class Console:
    """The lines `./dev up` prints, read in a thread so a test can wait for one."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._process = process
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, after: int = 0) -> int:
        """Index of the first line from `after` on that contains `text`."""
        deadline = time.monotonic() + WAIT_SECONDS
        with self._changed:
            while True:
                for index in range(after, len(self.lines)):
                    if text in self.lines[index]:
                        return index
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line with {text!r}:\n" + "\n".join(self.lines))
                self._changed.wait(left)


def _child(up: subprocess.Popen[str], name: str) -> psutil.Process:
    for child in psutil.Process(up.pid).children(recursive=True):
        command = child.cmdline()
        if (
            (name == "dynalite" and any(part.endswith("dynalite.js") for part in command))
            # Redis rewrites its command line ("redis-server 127.0.0.1:port").
            or (name == "redis" and "redis-server" in " ".join(command))
            or name in command
        ):
            return child
    raise AssertionError(f"no child process {name}; up: {up.poll()}")


def _wait_healthy(client: httpx.Client) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("/health did not come back to 200")


@pytest.mark.slow
def test_up_restarts_each_process_that_dies_and_keeps_the_data(tmp_path: Path) -> None:
    # One svc_order process, so that killing it leaves the gap this test looks at;
    # tests/stack/test_faults.py kills one and both of two.
    ports = stack_ports(order_processes=1)
    names = ["dynalite", "redis", *(spec.name for spec in existing_specs())]
    up = start_up(tmp_path, ports)
    console = Console(up)
    try:
        seen = console.wait_for("Ctrl-C stops everything")
        client = httpx.Client(base_url=f"http://127.0.0.1:{ports['BRIDGE_PORT']}", timeout=30)
        name = unique()
        registered = client.post(
            "/api/v1/auth/register",
            json={
                "username": name,
                "email": f"{name}@example.org",
                "password": PASSWORD,
                "first_name": "ada",
                "last_name": "lovelace",
            },
        )
        assert registered.status_code == 201, registered.text
        credentials = {"username": name, "password": PASSWORD}
        kept = client.post("/api/v1/auth/login", json=credentials).json()["access_token"]
        ended = client.post("/api/v1/auth/login", json=credentials).json()["access_token"]
        out = client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {ended}"})
        assert out.status_code == 200

        gaps: dict[str, dict[str, str]] = {}
        for victim in names:
            os.kill(_child(up, victim).pid, signal.SIGKILL)
            seen = console.wait_for(f"{victim} exited", seen)
            if victim not in ("rest_bridge", "dynalite"):
                # The restart waits a second at least: the gap is visible meanwhile.
                health = client.get("/health")
                assert health.status_code == 503, victim
                gaps[victim] = health.json()["dependencies"]
            seen = console.wait_for(f"{victim} restarted", seen)
            _wait_healthy(client)
            assert up.poll() is None, f"./dev up stopped after {victim} died"

        bearer = {"Authorization": f"Bearer {kept}"}
        assert client.get("/api/v1/auth/profile", headers=bearer).status_code == 200
        refused = client.get("/api/v1/auth/profile", headers={"Authorization": f"Bearer {ended}"})
        assert refused.status_code == 401, "a logged-out token works again after the restarts"
        again = client.post("/api/v1/auth/login", json=credentials)
        assert again.status_code == 200, "the user is gone after dynalite restarted"
        client.close()
    finally:
        code, survivors = stop_up(up)
    assert code == 0
    assert survivors == []
    # Each gap names what is down: Redis by itself, a service under its own name.
    assert set(gaps) == set(names) - {"rest_bridge", "dynalite"}
    for victim, dependencies in gaps.items():
        assert dependencies[victim] == "down", (victim, dependencies)
