"""A background thread that runs one step at a fixed rhythm until it is stopped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.telemetry import untraced

log = logging.getLogger(__name__)


class PeriodicTask:
    """Runs `step` every `interval_seconds` (start to start) on a daemon thread.

    A step that raises is logged and the rhythm goes on: one bad tick must not stop
    prices for good. A step slower than the interval is followed by the next at once.
    The thread is a daemon so that a process exiting without `stop` never hangs on it.
    """

    def __init__(self, name: str, step: Callable[[], object], interval_seconds: float) -> None:
        self._step = step
        self._interval = interval_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_seconds: float = 10.0) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_seconds)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                with untraced():
                    self._step()
            except Exception:
                log.exception("periodic step failed", extra={"task": self._thread.name})
            self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))
