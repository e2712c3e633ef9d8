"""Background work a test module started must stop with the module.

A server that a fixture or test builds and never shuts down keeps its background
threads (price ticker, probes, revocation keeper, price trigger, expiry sweep) running
for the rest of the session; under coverage tracing a few dozen of them starved the
suite's later tests of the GIL until CI's time ran out. So after each module, threads
of those kinds that the module started and that are still alive fail the run, naming
them; so do processes the module started (an engine, a service, a stack) that still
run. Threads and processes started while a session-scoped fixture was set up are the
session's and stop at its end; a session-scoped fixture in a test module (imported there) would be
set up once per module, so it is refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator

import psutil
import pytest

# The names our code gives its long-lived background threads (common/periodic.py,
# common/health.py, common/revocation.py, svc_order/trigger.py, the tests' bridges).
BACKGROUND = ("health-probes", "revocation-keeper", "price-trigger", "order-sweep", "price-ticker")
# Stopping sets an event; a thread ends after the step it is in.
GRACE_SECONDS = 10.0

_session_owned: set[int] = set()
# Processes (engines, services, stacks) started while a session fixture was set up.
_session_processes: set[int] = set()


def _children() -> dict[int, psutil.Process]:
    """The processes this test process started (and theirs), still running."""
    alive = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    return alive


def _background() -> dict[int, threading.Thread]:
    return {
        t.ident: t
        for t in threading.enumerate()
        if t.ident is not None and t.name.startswith(BACKGROUND)
    }


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    if fixturedef.scope != "session":
        return (yield)
    if fixturedef.baseid.endswith(".py"):
        # Defined in (or imported into) a test module: pytest sets it up once per such
        # module and keeps every copy to the session's end.
        pytest.fail(
            f"session-scoped fixture {fixturedef.argname!r} is defined in the test module "
            f"{fixturedef.baseid}: define it in a conftest.py (or import it only there)",
            pytrace=False,
        )
    before = set(_background())
    processes_before = set(_children())
    try:
        return (yield)
    finally:
        _session_owned.update(set(_background()) - before)
        _session_processes.update(set(_children()) - processes_before)


@pytest.fixture(scope="module", autouse=True)
def _module_stops_what_it_started(request: pytest.FixtureRequest) -> Iterator[None]:
    before = set(_background())
    processes_before = set(_children())
    yield
    deadline = time.monotonic() + GRACE_SECONDS
    while True:
        leaked = [
            t
            for ident, t in _background().items()
            if ident not in before and ident not in _session_owned
        ]
        stray = [
            p
            for pid, p in _children().items()
            if pid not in processes_before and pid not in _session_processes
        ]
        if not (leaked or stray) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if leaked:
        names = ", ".join(sorted(t.name for t in leaked))
        pytest.fail(
            f"{request.node.nodeid} left background threads running: {names} "
            "(shut down every server the module built)",
            pytrace=False,
        )
    if stray:
        commands = "; ".join(" ".join(_command(p)) for p in stray)
        for process in stray:  # the rest of the session must not inherit them
            process.kill()
        pytest.fail(
            f"{request.node.nodeid} left processes running: {commands} "
            "(stop every process the module started)",
            pytrace=False,
        )


def _command(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()[:4]
    except psutil.Error:
        return [str(process.pid)]
