"""Keeps the local stack running: a process that dies is started again, with back-off.

`./dev up` calls `check()` twice a second. A child (dynalite, Redis, a service, the
bridge) that exited is restarted on its port with its data after a pause that doubles
with each death in a row (1 s, 2 s, 4 s, ... at most 30 s) and starts over once the
child has stayed up for a minute. Each step is printed; meanwhile the bridge's
`/health` names what is down. One death never stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from devstack.stack import LocalStack

FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 30.0
STABLE_SECONDS = 60.0


@dataclass
class _Child:
    deaths_in_a_row: int = 0
    restart_at: float | None = None  # when a restart is due (clock seconds)
    started_at: float = 0.0
    awaiting_ready: bool = False


class Supervisor:
    def __init__(
        self,
        stack: LocalStack,
        report: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stack = stack
        self._report = report
        self._clock = clock
        now = clock()
        self._children = {name: _Child(started_at=now) for name in stack.children()}
        self.restarts = 0

    def check(self) -> None:
        """One round: notice deaths, restart what is due, announce what is back."""
        now = self._clock()
        for name, process in self._stack.children().items():
            child = self._children.setdefault(name, _Child(started_at=now))
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(name, child)
                continue
            code = process.poll()
            if code is not None:
                if now - child.started_at >= STABLE_SECONDS:
                    child.deaths_in_a_row = 0
                pause = min(FIRST_PAUSE_SECONDS * 2**child.deaths_in_a_row, MAX_PAUSE_SECONDS)
                child.deaths_in_a_row += 1
                child.restart_at = now + pause
                child.awaiting_ready = False
                self._report(f"{name} exited (code {code}); restarting it in {pause:g} s")
            elif child.awaiting_ready and self._stack.is_ready(name):
                child.awaiting_ready = False
                self._report(f"{name} is serving again")

    def _restart(self, name: str, child: _Child) -> None:
        child.restart_at = None
        child.started_at = self._clock()
        try:
            self._stack.restart(name)
        except (OSError, RuntimeError, TimeoutError) as error:
            # Counted as another death: the next try waits longer.
            self._report(f"{name} could not be restarted: {error}")
            pause = min(FIRST_PAUSE_SECONDS * 2**child.deaths_in_a_row, MAX_PAUSE_SECONDS)
            child.deaths_in_a_row += 1
            child.restart_at = self._clock() + pause
            return
        self.restarts += 1
        child.awaiting_ready = True
        pid = self._stack.children()[name].pid
        self._report(f"{name} restarted (pid {pid}; deaths in a row: {child.deaths_in_a_row})")
