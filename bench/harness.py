"""Closed-loop load: N workers, each issuing one call after another, bounded in count.

Every worker gets its own state (a user, an account) from `make_worker`, so the
measured work is what a crowd of distinct users causes, not contention on one item.
"""

from __future__ import annotations

import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Call = Callable[[], None]


@dataclass(frozen=True)
class Result:
    name: str
    concurrency: int
    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return ordered[index]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(0.99)


def run_load(
    name: str,
    calls_by_worker: list[Call],
    calls_per_worker: int,
    warmup_per_worker: int = 5,
) -> Result:
    """Runs each worker's call `calls_per_worker` times after a short warm-up."""
    concurrency = len(calls_by_worker)
    latencies: list[list[float]] = [[] for _ in calls_by_worker]
    errors = [0] * concurrency
    first_error: list[BaseException] = []
    ready = threading.Barrier(concurrency + 1)

    def work(index: int) -> None:
        call = calls_by_worker[index]
        for _ in range(warmup_per_worker):
            call()
        ready.wait()
        for _ in range(calls_per_worker):
            started = time.perf_counter()
            try:
                call()
            except Exception as error:  # counted and reported, the run goes on
                errors[index] += 1
                if not first_error:
                    first_error.append(error)
                continue
            latencies[index].append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if first_error:
        print(f"  {name}: {sum(errors)} errors, first: {first_error[0]!r}")
    merged = [value for worker in latencies for value in worker]
    return Result(name, concurrency, len(merged), sum(errors), elapsed, merged)


def merged(parts: list[Result]) -> Result:
    """One result from slices of the same path run at different times."""
    return Result(
        parts[0].name,
        parts[0].concurrency,
        sum(p.calls for p in parts),
        sum(p.errors for p in parts),
        sum(p.seconds for p in parts),
        [value for p in parts for value in p.latencies_ms],
    )


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
