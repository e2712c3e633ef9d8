"""`python -m ops.tables`, what the cluster's table Job runs, against real dynalite."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from common.dynamo import make_client
from tests.integration.order_fixtures import unreachable_address
from tests.mesh.manifests import ROOT


def _job(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.tables"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_job_creates_every_table_and_can_run_again(dynamodb_endpoint: str) -> None:
    prefix = f"job{uuid.uuid4().hex[:8]}-"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")]),
        "DYNAMODB_ENDPOINT": dynamodb_endpoint,
        "TABLE_PREFIX": prefix,
        "TRADING_TABLE": "books",
    }
    for _ in range(2):
        run = _job(env)
        assert run.returncode == 0, run.stderr
    client = make_client(dynamodb_endpoint, os.environ.get("AWS_REGION", "us-east-1"))
    for name in ("users", "assets", "books"):
        table = client.describe_table(TableName=prefix + name)["Table"]
        assert table["TableStatus"] == "ACTIVE"


def test_the_job_reports_a_store_that_does_not_answer_in_one_line_with_exit_status_2() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")]),
        "DYNAMODB_ENDPOINT": f"http://{unreachable_address()}",
    }
    run = _job(env)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("tables failed: the store did not answer"), run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
