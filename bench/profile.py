"""Where the time goes: sampling profiles of every Python process of the platform while
the heaviest scenario runs (market buys through the bridge, 16 workers).

    ./dev bench --profile [--gil] [--write-results DIR]

py-spy (from PyPI) samples each process from outside, 100 times a second, idle
threads left out; with `--gil` only the samples of the thread holding the GIL, i.e.
the process's Python CPU (without it a thread waiting in a socket read or on a lock
counts too, so waits on the engines weigh in). It writes collapsed stacks
(`<process>.txt`, readable by speedscope and flamegraph tools) and this prints each
process's heaviest frames by own time and by inclusive time. Needs the right to trace
the processes (root, or ptrace_scope 0).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.harness import run_load
from devstack.stack import LocalStack

SECONDS = 20
TOP = 12
# The platform's own processes (the engines are not Python).
PYTHON_PROCESSES = ("svc_user", "svc_inventory", "svc_order", "rest_bridge")


def py_spy() -> Path:
    return Path(sys.executable).with_name("py-spy")


def heaviest(collapsed: Path) -> tuple[Counter[str], Counter[str], int]:
    """Samples by the frame they were in (own) and by every frame on their stack."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    return own, inclusive, total


def main(out_dir: Path | None, gil: bool = False) -> int:
    from bench.__main__ import OVERRIDES, bridge_calls, trader_tokens

    target = out_dir or Path(tempfile.mkdtemp(prefix="bench-profile-"))
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-profile-stack-") as scratch:
        stack = LocalStack(
            data_dir=None, log_dir=Path(scratch), overrides=dict(OVERRIDES), fixed_ports=False
        )
        try:
            print("Starting a local stack with in-memory engines...")
            stack.start()
            calls = bridge_calls(stack, trader_tokens(stack, 16))
            run_load("warm-up", calls, 5, 0)
            samplers = {}
            for name, process in stack.processes.items():
                if name.split("-")[0] not in PYTHON_PROCESSES:
                    continue
                output = target / f"{name}.txt"
                samplers[name] = (
                    output,
                    subprocess.Popen(
                        [
                            str(py_spy()),
                            "record",
                            "--pid",
                            str(process.pid),
                            "--duration",
                            str(SECONDS),
                            "--rate",
                            "100",
                            "--format",
                            "raw",
                            "--output",
                            str(output),
                            "--nonblocking",
                            *(["--gil"] if gil else []),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    ),
                )
            print(f"Sampling {', '.join(samplers)} for {SECONDS} s under load...")
            # Enough orders to outlast the samplers; bounded all the same.
            result = run_load("REST POST /api/v1/orders [profiled]", calls, 400, 0)
            for name, (_, sampler) in samplers.items():
                _, errors = sampler.communicate(timeout=SECONDS + 60)
                if sampler.returncode != 0:
                    print(f"  py-spy on {name} failed: {errors.decode(errors='replace')[-300:]}")
        finally:
            stack.stop()
    print(f"\n{result.calls} orders, {result.per_second:.1f}/s; collapsed stacks in {target}")
    for name, (output, _) in samplers.items():
        if not output.exists():
            continue
        own, inclusive, total = heaviest(output)
        print(f"\n{name}: {total} samples")
        print("  own time:")
        for frame, samples in own.most_common(TOP):
            print(f"    {samples * 100 / total:5.1f} %  {frame}")
        print("  inclusive time:")
        for frame, samples in inclusive.most_common(TOP):
            print(f"    {samples * 100 / total:5.1f} %  {frame}")
    return 0
