"""The pipeline's judgement (scripts/gates.py): what a dependency report fails, and which
pytest arguments make a partial run (no coverage floor)."""

from __future__ import annotations

import pytest

from scripts import gates


def test_a_known_vulnerability_fails_and_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    report = {
        "dependencies": [
            {
                "name": "jinja2",
                "version": "2.4.1",
                "vulns": [{"id": "PYSEC-1", "fix_versions": ["2.11.3"]}],
            },
            {"name": "rich", "version": "15.0.0", "vulns": []},
            {"name": "local-only", "version": "1.0", "skip_reason": "not on PyPI"},
        ]
    }
    assert gates.judge_dependencies(report) == 1
    printed = capsys.readouterr().out
    assert "jinja2 2.4.1: PYSEC-1 (fixed in 2.11.3)" in printed
    assert "2 packages checked, 1 not known to the index, 1 with known vulnerabilities" in printed


def test_clean_dependencies_pass() -> None:
    report = {"dependencies": [{"name": "rich", "version": "15.0.0", "vulns": []}]}
    assert gates.judge_dependencies(report) == 0


def test_an_index_without_vulnerability_data_skips_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = {"dependencies": [{"name": "rich", "version": "15.0.0", "skip_reason": "404"}]}
    assert gates.judge_dependencies(report) == 0
    assert "Dependency audit SKIPPED" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "partial"),
    [
        ([], False),
        (["-q"], False),
        (["-q", "-p", "no:randomly", "--timeout", "600"], False),
        (["tests/unit"], True),
        (["-q", "tests/e2e/test_trading.py::test_buy_list_get_and_portfolio"], True),
        (["-k", "audit"], True),
        (["-m", "slow"], True),
        (["-x"], True),
    ],
)
def test_picking_tests_lifts_the_floor(args: list[str], partial: bool) -> None:
    assert gates.selects_tests(args) is partial


@pytest.mark.parametrize("argv", [[], ["lint"]])
def test_no_gate_or_an_unknown_one_prints_the_gates_and_exits_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert gates.main(argv) == 2
    usage = capsys.readouterr().err
    for gate in ("security", "dependencies", "tests [ARGS]"):
        assert gate in usage
