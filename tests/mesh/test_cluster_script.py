"""istio/cluster.sh driven against stand-ins of docker, kind, kubectl and istioctl that
record what they are asked: the steps of `up` in their order, what is applied, where the
signing key goes, and the operator's grpcurl pod. (Whether the real tools then succeed
is what only a machine with Docker can show.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.mesh.manifests import ISTIO, KUBECTL, build, of_kind
from tests.mesh.test_manifests import kubernetes_version

CLUSTER = ISTIO / "cluster.sh"
# One stand-in for the four tools: it logs its name and arguments (and its stdin, when
# a pipe or file feeds it), and answers the few questions the script asks.
STAND_IN = """#!/bin/bash
tool=$(basename "$0")
# Named by the time it started (and pid: the two ends of a pipe start together).
n="$(date +%s%N)-$$"
printf '%s\\0' "$tool" "$@" > "$RECORD/$n.args"
cat > "$RECORD/$n.stdin"
case "$tool $1 $2" in
  "istioctl version "*) echo 1.31.0 ;;
  "kind version "*) echo v0.33.0 ;;
  "docker run "*) printf -- '-----BEGIN PRIVATE KEY-----\\nstand-in\\n' ;;
  "kubectl kustomize "*) exec "$REAL_KUBECTL" "$@" ;;
esac
case "$*" in
  *"get secret jwt-signing-key"*) exit 1 ;;
esac
exit 0
"""


def _run(tmp_path: Path, *args: str) -> list[tuple[list[str], str | None]]:
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    record = tmp_path / "record"
    record.mkdir(exist_ok=True)
    for name in ("docker", "kind", "kubectl", "istioctl"):
        (tools / name).write_text(STAND_IN)
        (tools / name).chmod(0o755)
    run = subprocess.run(
        ["/bin/bash", str(CLUSTER), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={
            "PATH": f"{tools}:/usr/bin:/bin",
            "RECORD": str(record),
            "REAL_KUBECTL": str(KUBECTL),
            "HOME": str(tmp_path),
        },
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    calls = []
    for args_file in sorted(record.glob("*.args")):
        stdin = args_file.with_suffix(".stdin")
        text = stdin.read_text() if stdin.exists() else None
        calls.append((args_file.read_text().split("\0")[:-1], text or None))
    return calls


def _index(calls: list[tuple[list[str], str | None]], *words: str) -> int:
    for i, (argv, _) in enumerate(calls):
        if all(word in argv for word in words):
            return i
    raise AssertionError(f"never called with {words}: {[' '.join(a) for a, _ in calls]}")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[list[str], str | None]]:
    return _run(tmp_path_factory.mktemp("up"), "up")


def test_up_goes_cluster_mesh_image_manifests_key_rollout_smoke(
    up: list[tuple[list[str], str | None]],
) -> None:
    steps = [
        _index(up, "kind", "create", "cluster"),
        _index(up, "istioctl", "install", "istio/mesh/istio-operator.yaml"),
        _index(up, "docker", "build"),
        _index(up, "kind", "load", "docker-image", "trading-platform:dev"),
        _index(up, "kubectl", "apply", "-f", "-"),
        _index(up, "kubectl", "create", "secret", "generic", "jwt-signing-key"),
        _index(up, "kubectl", "wait", "job/create-tables"),
        _index(up, "kubectl", "rollout", "status", "deployment/rest-bridge"),
        _index(up, "kubectl", "run", "python", "-"),
    ]
    assert steps == sorted(steps)


def test_up_applies_exactly_the_kind_overlay(up: list[tuple[list[str], str | None]]) -> None:
    _, applied = up[_index(up, "kubectl", "apply", "-f", "-")]
    assert applied is not None
    objects = tuple(doc for doc in yaml.safe_load_all(applied) if doc)
    assert objects == build("kind")


def test_up_waits_for_every_workload_it_applies(up: list[tuple[list[str], str | None]]) -> None:
    waited = {
        argv[argv.index("status") + 1]
        for argv, _ in up
        if argv[0] == "kubectl" and "rollout" in argv
    }
    workloads = {
        f"{w['kind'].lower()}/{w['metadata']['name']}"
        for w in of_kind(build("kind"), "Deployment", "StatefulSet")
    }
    assert waited == workloads


def test_the_signing_key_goes_only_into_the_clusters_secret(
    up: list[tuple[list[str], str | None]],
) -> None:
    holders = [argv for argv, stdin in up if stdin and "PRIVATE KEY" in stdin]
    assert len(holders) == 1
    assert holders[0][:5] == ["kubectl", "--context", "kind-trading", "-n", "trading"]
    assert "--from-file=jwt-ed25519.pem=/dev/stdin" in holders[0]


def test_the_smoke_test_is_the_script_run_against_the_gateway(
    up: list[tuple[list[str], str | None]],
) -> None:
    argv, stdin = up[_index(up, "kubectl", "run", "python", "-")]
    assert stdin == (ISTIO / "smoke.py").read_text()
    assert argv[-1].startswith("http://istio-ingressgateway.istio-system")
    assert "--image=trading-platform:dev" in argv


def test_grpcurl_runs_as_the_operator_in_a_pod_the_namespace_admits(tmp_path: Path) -> None:
    body = '{"asset_ids": ["BTC", "ETH"]}'
    calls = _run(tmp_path, "grpcurl", "-plaintext", "-d", body, "svc-inventory:50052", "list")
    argv, _ = calls[_index(calls, "kubectl", "run", "grpcurl")]
    overrides = json.loads(next(a for a in argv if a.startswith("--overrides=")).split("=", 1)[1])
    spec = overrides["spec"]
    assert spec["serviceAccountName"] == "operator"
    assert spec["containers"][0]["args"] == [
        "-plaintext",
        "-d",
        body,
        "svc-inventory:50052",
        "list",
    ]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "grpcurl"}, "spec": spec}
    kubernetes_validate.validate(pod, kubernetes_version(), strict=True)
    # What the restricted Pod Security Standard of namespace trading requires.
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    container = spec["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
