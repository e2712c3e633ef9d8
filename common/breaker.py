"""A circuit breaker: after a failure, a dependency is left alone for a while.

Closed, every call goes through. A failed call opens it: for `open_seconds` callers are
told at once not to call (and take their documented fallback without waiting for a
timeout). Then exactly one call, the probe, goes through while the others are still
turned away; its success closes the breaker, its failure opens it for another
interval. A probe abandoned for another reason (its caller was cancelled) frees the
probe's place and changes nothing else, so that callers who leave cannot hold the
breaker open.

Written here because the libraries looked at let every concurrent call through once
the interval ends (circuitbreaker, purgatory), so a stalled dependency would still cost
each of those calls its whole timeout, or need Tornado for coroutines (pybreaker).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, open_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if open_seconds <= 0:
            raise ValueError("open_seconds must be positive")
        self._open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until: float | None = None  # None: closed
        self._probing = False

    def allows(self) -> bool:
        """Whether the caller may call now. True for every call while closed; once
        the interval has passed, True for one call (the probe), which must then report
        with `record`."""
        with self._lock:
            if self._open_until is None:
                return True
            if self._probing or self._clock() < self._open_until:
                return False
            self._probing = True
            return True

    def record(self, *, succeeded: bool) -> None:
        """The outcome of a call that `allows` let through."""
        with self._lock:
            self._probing = False
            if succeeded:
                self._open_until = None
            else:
                self._open_until = self._clock() + self._open_seconds

    def abandon(self) -> None:
        """A call that `allows` let through ended without telling anything about the
        dependency."""
        with self._lock:
            self._probing = False
