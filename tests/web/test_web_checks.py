"""web/'s own checks, run by ./dev test: ESLint, strict TypeScript, and the Vitest unit
and component tests (forms and their rules, money, the auth refresh logic)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from devstack.webapp import WEB, ensure_dependencies

pytestmark = pytest.mark.timeout(900)


def npm(*args: str) -> subprocess.CompletedProcess[str]:
    ensure_dependencies(say=lambda _line: None)
    command = [shutil.which("npm") or "npm", *args]
    return subprocess.run(command, cwd=WEB, capture_output=True, text=True, timeout=840)


def report(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr)[-6000:]


def test_eslint_finds_nothing() -> None:
    done = npm("run", "--silent", "lint")
    assert done.returncode == 0, report(done)


def test_typescript_strict_compiles() -> None:
    done = npm("run", "--silent", "typecheck")
    assert done.returncode == 0, report(done)


def test_vitest_unit_and_component_tests_pass() -> None:
    done = npm("exec", "--", "vitest", "run", "--reporter=verbose")
    assert done.returncode == 0, report(done)
    assert " passed" in done.stdout, report(done)
    assert " failed" not in done.stdout, report(done)
