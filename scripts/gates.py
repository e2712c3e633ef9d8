"""The pipeline's gates that `./dev test` runs after lint and types (README, "The
pipeline's gates"):

    security      bandit over our code: any finding above low fails (accepted ones
                  carry `# nosec BXXX` with the reason on the same line)
    dependencies  pip-audit of the installed packages against known vulnerabilities;
                  skipped, saying so, when the index's vulnerability data does not answer
    tests [ARGS]  pytest under coverage (branch, our code, generated/ excluded, the
                  processes the tests start included); prints the figure; below the
                  floor (pyproject: fail_under) fails, on a whole run only
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Our code, as coverage measures it (pyproject: [tool.coverage.run] source).
OUR_PACKAGES = (
    "common",
    "svc_user",
    "svc_inventory",
    "svc_order",
    "rest_bridge",
    "devstack",
    "ops",
    "bench",
    "scripts",
)
COVERAGE_DIR = ROOT / ".build" / "coverage"
DEPENDENCY_AUDIT_TIMEOUT_SECONDS = 300


def security() -> int:
    print("Security scan (bandit, findings above low fail)...", flush=True)
    done = subprocess.run(
        [
            str(BIN / "bandit"),
            "--recursive",
            "--quiet",
            "--severity-level",
            "medium",
            "--configfile",
            str(ROOT / "pyproject.toml"),
            *OUR_PACKAGES,
        ],
        cwd=ROOT,
        check=False,
    )
    if done.returncode == 0:
        print("Security scan: no finding above low.")
    return done.returncode


def dependencies() -> int:
    print("Dependency audit (pip-audit)...", flush=True)
    try:
        done = subprocess.run(
            [
                str(BIN / "pip-audit"),
                "--format",
                "json",
                "--progress-spinner",
                "off",
                "--skip-editable",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=DEPENDENCY_AUDIT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print("Dependency audit SKIPPED: the package index did not answer in time.")
        return 0
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        print(f"Dependency audit SKIPPED: the package index did not answer ({reason}).")
        return 0
    return judge_dependencies(report)


def judge_dependencies(report: Mapping[str, Any]) -> int:
    """0 when no audited package has a known vulnerability (or none could be audited).

    `report` is pip-audit's JSON: {"dependencies": [{"name", "version", "vulns": [...]}
    or {..., "skip_reason"}]}.
    """
    packages = [p for p in report.get("dependencies", []) if isinstance(p, dict)]
    audited = [p for p in packages if "skip_reason" not in p]
    if not audited:
        print(
            f"Dependency audit SKIPPED: the index's vulnerability data answered for none of "
            f"the {len(packages)} installed packages (offline, or a mirror without it)."
        )
        return 0
    vulnerable = [p for p in audited if p.get("vulns")]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fixed release"
            print(f"  {package['name']} {package['version']}: {vuln['id']} (fixed in {fixed})")
    skipped = len(packages) - len(audited)
    print(
        f"Dependency audit: {len(audited)} packages checked, {skipped} not known to the "
        f"index, {len(vulnerable)} with known vulnerabilities."
    )
    return 1 if vulnerable else 0


def selects_tests(args: list[str]) -> bool:
    """Whether pytest arguments pick some tests (a path, -k, -m), so a floor on the
    whole code base would mean nothing."""
    picking = {"-k", "-m", "--lf", "--last-failed", "--deselect", "-x", "--exitfirst"}
    return any(a.split("=")[0] in picking or "::" in a or (ROOT / a).exists() for a in args)


def tests(args: list[str]) -> int:
    COVERAGE_DIR.mkdir(parents=True, exist_ok=True)
    for stale in COVERAGE_DIR.glob(".coverage*"):
        stale.unlink()
    coverage = str(BIN / "coverage")
    # Absolute, so that every process the tests start writes beside the others.
    env = {**os.environ, "COVERAGE_FILE": str(COVERAGE_DIR / ".coverage")}
    ran = subprocess.run([coverage, "run", "-m", "pytest", *args], cwd=ROOT, env=env, check=False)
    subprocess.run([coverage, "combine", "--quiet"], cwd=ROOT, env=env, check=False)
    report = [coverage, "report"]
    partial = selects_tests(args)
    if partial:
        # Only some tests ran: print the figure, hold no floor.
        report.append("--fail-under=0")
    print("\nBranch coverage of our code (generated/ and tests excluded):", flush=True)
    judged = subprocess.run(report, cwd=ROOT, env=env, check=False)
    if partial:
        print("(some tests only: the floor applies to a whole run)")
    elif judged.returncode == 2:
        print("Coverage is below the floor (pyproject.toml: fail_under).")
    return ran.returncode or judged.returncode


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "security":
        return security()
    if command == "dependencies":
        return dependencies()
    if command == "tests":
        return tests(rest)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
