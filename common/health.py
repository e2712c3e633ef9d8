"""Health that reflects a service's dependencies: its store and Redis.

A thread probes each dependency every interval and publishes the result through the
standard gRPC health service: under the dependency's own name (`dependency/store`,
`dependency/redis`) and, for the service as a whole ("" and each service name),
SERVING only while every dependency it cannot work without answers (svc_inventory,
for one, quotes from its store when its Redis cache is down). Callers that only ask "is it serving?"
get the truth; the bridge's /health asks the dependency names to say why not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from common.errors import Unavailable
from common.telemetry import untraced

log = logging.getLogger(__name__)

DEPENDENCY_PREFIX = "dependency/"
STORE = "store"
REDIS = "redis"
# What a service's health may name; the bridge asks exactly these.
DEPENDENCIES = (STORE, REDIS)

# Raises when the dependency does not answer; returns when it does.
Probe = Callable[[], None]
# (name, serving) -> None
Publish = Callable[[str, bool], None]


@dataclass(frozen=True)
class Dependency:
    probe: Probe
    # False: the service still serves without it (degraded), so only its own name says.
    required: bool = True


def dependency_health_name(dependency: str) -> str:
    return DEPENDENCY_PREFIX + dependency


def redis_probe(client: redis.Redis) -> Probe:
    def probe() -> None:
        try:
            client.ping()
        except redis.RedisError as error:
            raise Unavailable("redis does not answer", reason="REDIS_UNAVAILABLE") from error

    return probe


class DependencyMonitor:
    """Probes `dependencies` (by name) every `interval_seconds` on a thread of its own
    and calls `publish(name, serving)` for each dependency and for the whole (name ""),
    whenever a state changes and at the first round."""

    def __init__(
        self, dependencies: Mapping[str, Dependency], publish: Publish, interval_seconds: float
    ) -> None:
        self._dependencies = dict(dependencies)
        self._publish = publish
        self._interval = interval_seconds
        self._states: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-probes", daemon=True)

    def start(self) -> None:
        self.probe_once()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def probe_once(self) -> dict[str, bool]:
        states = {
            name: self._answers(name, dependency.probe)
            for name, dependency in self._dependencies.items()
        }
        states[""] = all(
            states[name] for name, dependency in self._dependencies.items() if dependency.required
        )
        for name, serving in states.items():
            if self._states.get(name) != serving:
                if name:
                    log.log(
                        logging.INFO if serving else logging.WARNING,
                        "dependency answers" if serving else "dependency does not answer",
                        extra={"dependency": name},
                    )
                self._publish(name, serving)
        self._states = states
        return states

    def _answers(self, name: str, probe: Probe) -> bool:
        try:
            # A probe is not a request: no span (a store and a Redis call a second, in
            # every process, would otherwise be most of an idle platform's spans file).
            with untraced():
                probe()
        except Exception as error:  # any failure of a probe means: not answering
            log.debug("probe failed", extra={"dependency": name, "error": repr(error)})
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.probe_once()
