"""The manifests would apply, and every workload is one a careful operator would run.

Checked offline: kustomize builds each overlay; core objects validate strictly against
the Kubernetes schema of the release the kind cluster runs; Istio objects against
Istio's schema with unknown fields refused.
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.settings import CommonSettings
from ops.settings import StoreSettings
from rest_bridge.config import BridgeSettings
from svc_inventory.config import InventorySettings
from svc_order.config import OrderSettings
from svc_user.config import UserSettings
from tests.callsites import FIRST_PARTY
from tests.mesh.manifests import (
    ISTIO,
    OVERLAYS,
    ROOT,
    build,
    is_istio,
    istio_problems,
    kustomize,
    of_kind,
    pod_spec,
)

WORKLOADS = ("Deployment", "StatefulSet", "Job")


def kubernetes_version() -> str:
    """The Kubernetes release of the kind node image (istio/kind-cluster.yaml)."""
    config = yaml.safe_load((ISTIO / "kind-cluster.yaml").read_text())
    image = config["nodes"][0]["image"]
    match = re.search(r":v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}$", image)
    assert match, f"the node image is not pinned by version and digest: {image}"
    return f"{match.group(1)}.0"


def test_every_overlay_and_the_base_build() -> None:
    assert "kind" in OVERLAYS
    for overlay in OVERLAYS:
        assert build(overlay)
    assert kustomize(ISTIO / "base")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_validate_strictly_against_the_target_kubernetes(overlay: str) -> None:
    version = kubernetes_version()
    core = [obj for obj in build(overlay) if not is_istio(obj)]
    assert core
    for obj in core:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_refuses_an_unknown_field() -> None:
    """What makes the test above able to fail."""
    deployment = next(of_kind(build("kind"), "Deployment"))
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    pod_spec(broken)["containers"][0]["readinessProbe"]["grpcc"] = {"port": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_version(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_istio_objects_validate_against_istio_schema(overlay: str) -> None:
    istio = [obj for obj in build(overlay) if is_istio(obj)]
    problems = {f"{o['kind']}/{o['metadata']['name']}": istio_problems(o) for o in istio}
    assert {name: found for name, found in problems.items() if found} == {}


def test_istio_validation_refuses_unknown_fields_and_wrong_types() -> None:
    route = next(o for o in build("kind") if o["kind"] == "VirtualService")
    typo = yaml.safe_load(yaml.safe_dump(route))
    typo["spec"]["http"][0]["retries"]["retryOnn"] = "unavailable"
    assert istio_problems(typo) == ["unknown field .spec.http[0].retries.retryOnn"]
    wrong = yaml.safe_load(yaml.safe_dump(route))
    wrong["spec"]["http"][0]["retries"]["attempts"] = "many"
    with pytest.raises(ValueError, match="attempts"):
        istio_problems(wrong)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = pod_spec(obj)["containers"]
    return containers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_locked_down_probed_and_bounded(overlay: str) -> None:
    for workload in of_kind(build(overlay), *WORKLOADS):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        assert pod.get("serviceAccountName") not in (None, "default"), name
        for container in _containers(workload):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert ":latest" not in container["image"], name
            if workload["kind"] != "Job":
                assert "readinessProbe" in container, name
                assert "livenessProbe" in container, name


def test_grpc_services_use_native_grpc_probes_on_the_health_service() -> None:
    objects = build("kind")
    grpc_ports = {
        (s["metadata"]["name"], p["port"])
        for s in of_kind(objects, "Service")
        for p in s["spec"]["ports"]
        if p.get("appProtocol") == "grpc" and s["metadata"]["name"] != "otel-collector"
    }
    probed = set()
    for deployment in of_kind(objects, "Deployment"):
        for container in _containers(deployment):
            readiness = container["readinessProbe"]
            if "grpc" in readiness:
                assert "grpc" in container["livenessProbe"]
                probed.add((deployment["metadata"]["name"], readiness["grpc"]["port"]))
    assert grpc_ports == probed != set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_port_is_named_for_its_protocol(overlay: str) -> None:
    """Istio picks the protocol from the port's name or appProtocol: a gRPC port seen
    as TCP would get no retries, no per-RPC authorization and no traces."""
    protocols = {"grpc", "http", "tcp"}
    for service in of_kind(build(overlay), "Service"):
        for port in service["spec"]["ports"]:
            prefix = port["name"].split("-")[0]
            assert prefix in protocols, (service["metadata"]["name"], port)
            assert port.get("appProtocol", prefix) == prefix, (service["metadata"]["name"], port)
        if service["metadata"]["name"].startswith("svc-"):
            assert [p["name"] for p in service["spec"]["ports"]] == ["grpc"]
        if service["metadata"]["name"] == "rest-bridge":
            assert [p["name"] for p in service["spec"]["ports"]] == ["http"]


def _config(objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    maps = [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"] == "platform-config"]
    assert len(maps) == 1
    data: dict[str, str] = maps[0]["data"]
    return data


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grace_period_outlasts_drain_and_grace(overlay: str) -> None:
    objects = build(overlay)
    config = _config(objects)
    needed = float(config["SHUTDOWN_DRAIN_SECONDS"]) + float(config["SHUTDOWN_GRACE_SECONDS"])
    deployments = of_kind(objects, "Deployment")
    ours = [d for d in deployments if _containers(d)[0]["image"].startswith("trading")]
    assert len(ours) == 4
    for deployment in ours:
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > needed


_ENVIRON = re.compile(r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']""")


def _variables_read_directly() -> set[str]:
    """Variables our code reads from os.environ itself (OpenTelemetry's, for one)."""
    return {
        name
        for package in FIRST_PARTY
        for path in (ROOT / package).rglob("*.py")
        for name in _ENVIRON.findall(path.read_text())
    }


def _settings_names() -> set[str]:
    classes: list[type[Any]] = [
        CommonSettings,
        UserSettings,
        InventorySettings,
        OrderSettings,
        BridgeSettings,
        StoreSettings,
    ]
    return {name.upper() for cls in classes for name in cls.model_fields}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_a_setting_the_code_reads(overlay: str) -> None:
    """A misspelt variable would be ignored silently (extra="ignore")."""
    objects = build(overlay)
    known = _settings_names() | _variables_read_directly()
    known |= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # read by boto3
    assert set(_config(objects)) - known == set()
    for deployment in of_kind(objects, "Deployment", "Job"):
        for container in _containers(deployment):
            if container["image"].startswith("trading"):
                names = {e["name"] for e in container.get("env", [])}
                assert names - known == set(), deployment["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_settings_that_matter_in_a_cluster_are_set(overlay: str) -> None:
    config = _config(build(overlay))
    for name in (
        "GRPC_HOST",
        "BRIDGE_HOST",
        "USER_SERVICE_ADDR",
        "INVENTORY_SERVICE_ADDR",
        "ORDER_SERVICE_ADDR",
        "JWT_PRIVATE_KEY_FILE",
        "GRPC_CLIENT_RETRIES",
        "TRUSTED_PROXIES",
        "SHUTDOWN_DRAIN_SECONDS",
        "SHUTDOWN_GRACE_SECONDS",
    ):
        assert name in config, name
    assert config["GRPC_HOST"] == config["BRIDGE_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_in_a_config_map_or_the_repository(overlay: str) -> None:
    objects = build(overlay)
    config_text = yaml.safe_dump([o for o in of_kind(objects, "ConfigMap")])
    assert "PRIVATE KEY" not in config_text
    for name in ("REDIS_URL", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        assert name not in _config(objects)
    # The signing key is made in the cluster (istio/cluster.sh), never committed.
    signing = [o for o in of_kind(objects, "Secret") if "jwt" in o["metadata"]["name"]]
    assert signing == []
    for path in ISTIO.rglob("*"):
        if path.is_file():
            assert "PRIVATE KEY-----" not in path.read_text(errors="replace"), path


def test_only_svc_user_mounts_the_signing_key() -> None:
    mounting = [
        d["metadata"]["name"]
        for d in of_kind(build("kind"), *WORKLOADS)
        for volume in pod_spec(d).get("volumes", [])
        if volume.get("secret", {}).get("secretName") == "jwt-signing-key"
    ]
    assert mounting == ["svc-user"]


def test_every_stateless_service_scales_and_survives_a_drain() -> None:
    objects = build("kind")
    services = {"svc-user", "svc-inventory", "svc-order", "rest-bridge"}
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in autoscalers}
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app"] for p in of_kind(objects, "PodDisruptionBudget")
    }
    accounts = {a["metadata"]["name"] for a in of_kind(objects, "ServiceAccount")}
    assert scaled == services
    for deployment in of_kind(objects, "Deployment"):
        if deployment["metadata"]["name"] in scaled:
            # A count in the Deployment would undo the autoscaler at every apply.
            assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]
    assert budgets == services
    assert services <= accounts
