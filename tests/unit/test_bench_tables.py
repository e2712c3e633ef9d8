"""The benchmark's pure parts: the statistics of a run, merging slices, the load loop on
calls that cost nothing, the tables and ratios it prints, and the profile summary.
Nothing here times anything: figures are given, and what is checked is what a reader of
`bench/RESULTS.md` relies on (each row, each ratio to its baseline)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench import harness, levers, profile, telemetry
from bench.harness import Result


def result(name: str, concurrency: int, calls: int, seconds: float, p50: float) -> Result:
    """A result whose median latency is `p50` ms and whose slowest 2 % take 3 × p50."""
    slow = calls // 50
    latencies = [p50] * (calls - slow) + [3 * p50] * slow
    return Result(name, concurrency, calls, 0, seconds, latencies)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every data row of the markdown tables in `text`."""
    return [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    ]


def test_a_result_gives_its_rate_median_and_99th_percentile() -> None:
    run = Result("x", 2, 100, 0, 4.0, list(map(float, range(1, 101))))
    assert run.per_second == 25.0
    assert run.p50 == 50.5
    assert run.p99 == 99.0
    assert run.percentile(0.0) == 1.0
    assert run.percentile(1.0) == 100.0


def test_a_result_without_calls_or_time_has_no_latency_and_no_rate() -> None:
    empty = Result("x", 1, 0, 0, 0.0, [])
    assert empty.per_second == 0.0
    assert math.isnan(empty.p50)
    assert math.isnan(empty.p99)


def test_slices_of_one_path_merge_into_one_result() -> None:
    parts = [
        Result("gRPC", 16, 2, 1, 0.5, [1.0, 2.0]),
        Result("gRPC", 16, 3, 0, 1.5, [3.0, 4.0, 5.0]),
    ]
    whole = harness.merged(parts)
    assert whole == Result("gRPC", 16, 5, 1, 2.0, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert whole.per_second == 2.5
    assert whole.p50 == 3.0


def test_the_load_runs_every_worker_its_count_and_counts_failures_apart(
    capsys: pytest.CaptureFixture[str],
) -> None:
    made: list[str] = []

    def succeeding() -> None:
        made.append("ok")

    attempts = 0

    def failing_every_other_measured_call() -> None:
        nonlocal attempts
        attempts += 1
        # Attempts 1 and 2 are the warm-up; 4, 6, ... 12 of the measured ten fail.
        if attempts > 2 and attempts % 2 == 0:
            raise RuntimeError("409: refused")

    run = harness.run_load("two workers", [succeeding, failing_every_other_measured_call], 10, 2)
    assert run.concurrency == 2
    assert len(made) == 12
    assert run.errors == 5
    assert run.calls == 15
    assert len(run.latencies_ms) == 15
    assert all(latency >= 0 for latency in run.latencies_ms)
    assert "two workers: 5 errors, first: RuntimeError('409: refused')" in capsys.readouterr().out


def test_cpu_memory_and_machine_are_read_for_a_live_process() -> None:
    assert harness.cpu_seconds(os.getpid()) > 0
    assert harness.peak_rss_mb(os.getpid()) > 1
    described = harness.machine()
    assert f"{os.cpu_count()} cores" in described
    assert "Python" in described


def main_results(with_bridge: bool) -> list[Result]:
    runs = [
        result("store alone", 1, 100, 1.0, 2.0),
        result("gRPC PlaceOrder", 1, 100, 2.0, 3.0),
        result("store alone", 16, 1600, 2.0, 10.0),
        result("gRPC PlaceOrder", 16, 1600, 4.0, 15.0),
    ]
    if with_bridge:
        runs += [
            result("REST POST /api/v1/orders", 1, 100, 2.5, 3.3),
            result("REST POST /api/v1/orders", 16, 1600, 5.0, 18.0),
        ]
    return runs


def test_the_benchmark_table_gives_each_path_and_its_ratios_to_the_store_alone() -> None:
    cpu = {
        ("store alone", 1): {"svc_order": 0.0, "dynalite": 1.5},
        ("gRPC PlaceOrder", 1): {"svc_order": 2.0, "dynalite": 1.5},
    }
    memory = {"svc_order": 80.4, "dynalite": 120.0}
    text = bench_main.report(main_results(with_bridge=True), memory, cpu)
    rows = table_rows(text)
    assert ["gRPC PlaceOrder", "16", "1600", "400.0", "15.0", "45.0", "0"] in rows
    ratios = {row[0]: row[1:] for row in rows if len(row) == 3}
    assert ratios["gRPC p50 / store p50, c=1"] == ["1.50", "<= 1.5"]
    assert ratios["gRPC orders/s / store orders/s, c=16"] == ["0.50", ">= 0.6"]
    assert ratios["REST p50 / gRPC p50, c=1"] == ["1.10", "<= 1.25"]
    assert ratios["REST p50 / gRPC p50, c=16"] == ["1.20", "<= 1.25"]
    assert ratios["REST orders/s / store orders/s, c=16"] == ["0.40", ""]
    assert ratios["REST orders/s, c=16"] == ["320", ">= 310"]
    assert ratios["REST p99 ms, c=16"] == ["54", "<= 50"]
    # CPU per order by process, and the total; memory with the services' target.
    assert "| path | c | svc_order | dynalite | total |" in text
    assert ["gRPC PlaceOrder", "1", "2.0", "1.5", "3.5"] in rows
    assert ratios["svc_order"] == ["80", "< 150"]
    assert ratios["dynalite"] == ["120", ""]


def test_without_a_bridge_the_benchmark_table_has_no_rest_ratios() -> None:
    cpu = {("store alone", 1): {"svc_order": 1.0}}
    text = bench_main.report(main_results(with_bridge=False), {}, cpu)
    assert "gRPC p50 / store p50, c=1 | 1.50" in text
    assert "REST" not in text


def test_the_telemetry_table_gives_each_setting_as_a_ratio_to_everything_off() -> None:
    results: dict[tuple[str, str, int], Result] = {}
    cpu: dict[tuple[str, str, int], float] = {}
    for setting, p50, seconds, cpu_ms in (
        ("on", 6.0, 5.0, 3.0),
        ("metrics", 5.0, 4.5, 2.4),
        ("off", 4.0, 4.0, 2.0),
    ):
        results[(setting, "gRPC PlaceOrder", 16)] = result("gRPC PlaceOrder", 16, 800, seconds, p50)
        cpu[(setting, "gRPC PlaceOrder", 16)] = cpu_ms
    rows = table_rows(telemetry.report(results, cpu))
    assert ["gRPC PlaceOrder", "16", "on", "800", "160.0", "6.0", "18.0", "3.0"] in rows
    ratios = [row for row in rows if len(row) == 6]
    assert ratios[1:] == [
        ["gRPC PlaceOrder", "16", "on", "1.50", "0.80", "1.50"],
        ["gRPC PlaceOrder", "16", "metrics", "1.25", "0.89", "1.20"],
    ]


def test_the_levers_table_compares_each_variant_to_before_process_by_process() -> None:
    path = "REST POST /api/v1/orders"
    results = {
        ("before", path, 16): result(path, 16, 800, 8.0, 20.0),
        ("after", path, 16): result(path, 16, 800, 4.0, 12.0),
        ("2 processes", path, 16): result(path, 16, 800, 5.0, 15.0),
    }
    by_process = {
        ("before", path, 16): {"svc_order": 6.0, "dynalite": 2.0},
        ("after", path, 16): {"svc_order": 3.0, "dynalite": 1.0},
        ("2 processes", path, 16): {"svc_order": 2.0, "svc_order-2": 2.0, "dynalite": 1.2},
    }
    knee = [(result(path, 1, 100, 2.0, 9.0), 5.04), (result(path, 64, 640, 4.0, 300.0), 4.0)]
    text = levers.report(results, by_process, knee)
    rows = table_rows(text)
    # Each run with the platform's CPU per request summed over its processes.
    assert [path, "16", "after", "800", "200.0", "12.0", "36.0", "0", "4.0"] in rows
    assert [path, "16", "before", "800", "100.0", "20.0", "60.0", "0", "8.0"] in rows
    # Ratios to "before" of every other variant, and none for "before" itself.
    ratio_table = text.split("| CPU per request / before |")[1].split("by process")[0]
    assert table_rows(ratio_table) == [
        [path, "16", "after", "2.00", "0.60", "0.50"],
        [path, "16", "2 processes", "1.60", "0.75", "0.65"],
    ]
    # By process: a process a variant does not run has an empty cell.
    assert "| path | c | variant | dynalite | svc_order | svc_order-2 |" in text
    assert [path, "16", "before", "2.0", "6.0", ""] in rows
    assert [path, "16", "2 processes", "1.2", "2.0", "2.0"] in rows
    # The knee: one row per concurrency step.
    assert ["1", "100", "50.0", "9.0", "27.0", "0", "5.0"] in rows
    assert ["64", "640", "160.0", "300.0", "900.0", "0", "4.0"] in rows


def test_the_levers_ratios_are_taken_against_the_baseline_commit_when_there_is_one() -> None:
    path = "REST POST /api/v1/orders"
    results = {
        ("code at abc1234", path, 16): result(path, 16, 800, 8.0, 20.0),
        ("before", path, 16): result(path, 16, 800, 10.0, 25.0),
        ("after", path, 16): result(path, 16, 800, 4.0, 10.0),
    }
    by_process = {
        ("code at abc1234", path, 16): {"svc_order": 8.0},
        ("before", path, 16): {"svc_order": 10.0},
        ("after", path, 16): {"svc_order": 2.0},
    }
    text = levers.report(results, by_process, [], reference="code at abc1234")
    ratio_table = text.split("| CPU per request / code at abc1234 |")[1].split("by process")[0]
    assert table_rows(ratio_table) == [
        [path, "16", "before", "0.80", "1.25", "1.25"],
        [path, "16", "after", "2.00", "0.50", "0.25"],
    ]


def test_a_baseline_checkout_is_the_commit_asked_for_and_is_removed_afterwards(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "baseline"
    with levers.checkout("HEAD", folder) as (commit, root):
        assert root == folder
        assert (root / "svc_order" / "__main__.py").is_file()
        head = (root / ".git").read_text()  # a worktree's .git names its git folder
        assert "worktrees" in head
        assert len(commit) >= 7
    assert not folder.exists()
    with (
        pytest.raises(subprocess.CalledProcessError),
        levers.checkout("no-such-ref-anywhere", tmp_path / "other"),
    ):
        pass


def test_a_profile_counts_own_time_by_leaf_and_inclusive_time_once_per_stack(
    tmp_path: Path,
) -> None:
    collapsed = tmp_path / "svc_order.txt"
    collapsed.write_text(
        "main;serve;handle;encode 30\n"
        "main;serve;handle 10\n"
        "main;recurse;recurse 5\n"
        "a line py-spy did not finish\n"
    )
    own, inclusive, total = profile.heaviest(collapsed)
    assert total == 45
    assert own == {"encode": 30, "handle": 10, "recurse": 5}
    assert inclusive["main"] == 45
    assert inclusive["handle"] == 40
    # A frame that recurses is on the stack once for its samples, not twice.
    assert inclusive["recurse"] == 5


def test_py_spy_is_looked_for_beside_the_running_python() -> None:
    assert profile.py_spy().parent == Path(sys.executable).parent
