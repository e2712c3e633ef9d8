"""The mesh agrees with the code, computed rather than listed: who may call what
(common/callgraph.py and the calls the code makes), what is retried (the contract's
`retryable`), who reaches the engines (what each process imports)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from common.callgraph import CALL_GRAPH, HEALTH_PATHS, OPEN_TO_ANY_PEER, SERVES, edges
from common.methods import retryable_methods
from tests.callsites import calls_of, import_closure, third_party_imports
from tests.mesh.manifests import (
    ISTIO,
    NAMESPACE,
    OVERLAYS,
    build,
    of_kind,
    principal,
    sa_of,
    seconds,
)

GATEWAY = principal("istio-ingressgateway-service-account", "istio-system")
MESH_OVERLAYS = [o for o in OVERLAYS if any(x["kind"] == "PeerAuthentication" for x in build(o))]


def _policies(overlay: str) -> list[dict[str, Any]]:
    return [p for p in of_kind(build(overlay), "AuthorizationPolicy")]


def allowed_edges(overlay: str) -> set[tuple[str | None, str, str]]:
    """(caller ServiceAccount or None for any peer, callee app, path) of every ALLOW rule
    on a gRPC service; a rule without paths would allow every path and is refused."""
    callees = {sa_of(process) for process in SERVES}
    found: set[tuple[str | None, str, str]] = set()
    for policy in _policies(overlay):
        spec = policy["spec"]
        app = spec.get("selector", {}).get("matchLabels", {}).get("app")
        if app not in callees:
            continue
        assert spec["action"] == "ALLOW", policy["metadata"]["name"]
        for rule in spec["rules"]:
            paths = [p for to in rule["to"] for p in to["operation"]["paths"]]
            assert paths, policy["metadata"]["name"]
            sources = [s for f in rule.get("from", []) for s in f["source"]["principals"]]
            callers: list[str | None] = []
            for source in sources:
                prefix = principal("")
                assert source.startswith(prefix), source
                callers.append(source.removeprefix(prefix))
            found |= {(caller, app, path) for caller in callers or [None] for path in paths}
    return found


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_the_authorization_policies_are_the_call_graph(overlay: str) -> None:
    declared: set[tuple[str | None, str, str]] = {
        (sa_of(e.caller), sa_of(e.callee), e.path) for e in edges()
    }
    declared |= {(None, sa_of(callee), path) for callee in SERVES for path in OPEN_TO_ANY_PEER}
    assert allowed_edges(overlay) == declared


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_every_call_the_code_makes_is_allowed_by_the_mesh(overlay: str) -> None:
    """Not through the table: a call the code makes that no policy allows would be
    refused in the cluster with PERMISSION_DENIED."""
    allowed = allowed_edges(overlay)
    made = {edge for process in CALL_GRAPH if process != "operator" for edge in calls_of(process)}
    assert made
    refused = {
        e
        for e in made
        if (sa_of(e.caller), sa_of(e.callee), e.path) not in allowed
        and (None, sa_of(e.callee), e.path) not in allowed
    }
    assert refused == set()


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_everything_else_is_denied(overlay: str) -> None:
    policies = _policies(overlay)
    deny_all = [p for p in policies if p["metadata"]["name"] == "deny-all"]
    assert len(deny_all) == 1
    assert deny_all[0]["spec"] in ({}, None)
    assert deny_all[0]["metadata"]["namespace"] == NAMESPACE
    for policy in policies:
        spec = policy["spec"] or {}
        assert spec.get("action", "ALLOW") == "ALLOW"
        if policy is not deny_all[0]:
            assert spec.get("selector"), f"{policy['metadata']['name']} applies to every workload"
            for rule in spec["rules"]:
                assert rule.get("from") or rule.get("to"), policy["metadata"]["name"]


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_only_the_gateway_reaches_the_bridge_and_only_the_operator_reflection(
    overlay: str,
) -> None:
    bridge_rules = [
        rule
        for p in _policies(overlay)
        if p["spec"].get("selector", {}).get("matchLabels", {}).get("app") == "rest-bridge"
        for rule in p["spec"]["rules"]
    ]
    sources = [s for r in bridge_rules for f in r["from"] for s in f["source"]["principals"]]
    assert sources == [GATEWAY]
    reflection = {e for e in allowed_edges(overlay) if "reflection" in e[2]}
    assert reflection
    assert {caller for caller, _, _ in reflection} == {"operator"}


def _given(objects: tuple[dict[str, Any], ...]) -> dict[str, set[str]]:
    """ServiceAccount -> the variables its workload's containers are given by name."""
    given: dict[str, set[str]] = {}
    for workload in of_kind(objects, "Deployment", "Job"):
        spec = workload["spec"]["template"]["spec"]
        names = {e["name"] for c in spec["containers"] for e in c.get("env", [])}
        given.setdefault(spec["serviceAccountName"], set()).update(names)
    return given


def test_the_engines_are_reached_by_exactly_the_processes_that_use_them() -> None:
    """DynamoDB: the processes whose code imports boto3. Redis: those whose code imports
    redis and that are given REDIS_URL (the table Job imports it through shared code
    but has no URL). Computed from each process's imports and the manifests."""
    objects = build("kind")
    given = _given(objects)
    users: dict[str, set[str]] = {"dynamodb": set(), "redis": set()}
    processes = {sa_of(p): f"{p}.__main__" for p in CALL_GRAPH if p != "operator"}
    processes["tables"] = "ops.tables"
    for account, module in processes.items():
        imported = third_party_imports(import_closure(module))
        if "boto3" in imported:
            users["dynamodb"].add(principal(account))
        if "redis" in imported and "REDIS_URL" in given[account]:
            users["redis"].add(principal(account))
    for policy in of_kind(objects, "AuthorizationPolicy"):
        app = policy["spec"].get("selector", {}).get("matchLabels", {}).get("app")
        if app in users:
            granted = {
                s
                for r in policy["spec"]["rules"]
                for f in r["from"]
                for s in f["source"]["principals"]
            }
            assert granted == users.pop(app), app
    assert users == {}, "an engine without its policy"


def _platform_config(objects: tuple[dict[str, Any], ...]) -> dict[str, str]:
    (config,) = (
        c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"] == "platform-config"
    )
    data: dict[str, str] = config["data"]
    return data


def _routes(overlay: str) -> dict[str, list[dict[str, Any]]]:
    return {
        vs["spec"]["hosts"][0].split(".")[0]: vs["spec"]["http"]
        for vs in of_kind(build(overlay), "VirtualService")
        if not vs["spec"].get("gateways")
    }


def _exact_paths(route: dict[str, Any]) -> set[str]:
    return {m["uri"]["exact"] for m in route.get("match", [])}


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_retries_are_exactly_the_retryable_rpcs_that_have_a_caller(overlay: str) -> None:
    called = {e.path for e in edges() if e.path not in HEALTH_PATHS}
    expected = {
        f"/{service}/{method}"
        for service in SERVES.values()
        for method in retryable_methods(service)
        if f"/{service}/{method}" in called
    }
    retried: set[str] = set()
    for app, routes in _routes(overlay).items():
        for route in routes:
            if route["retries"]["attempts"] > 0:
                paths = _exact_paths(route)
                assert paths, f"{app}: a retried route must name its methods"
                retried |= paths
    assert retried == expected


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_no_route_anywhere_keeps_istios_default_retries(overlay: str) -> None:
    """Istio retries twice when a route says nothing: every route says."""
    for vs in of_kind(build(overlay), "VirtualService"):
        for route in vs["spec"]["http"]:
            assert "retries" in route, (vs["metadata"]["name"], route.get("name"))
            if route["retries"]["attempts"] == 0:
                assert set(route["retries"]) == {"attempts"}
    operator = yaml.safe_load((ISTIO / "mesh" / "istio-operator.yaml").read_text())
    assert operator["spec"]["meshConfig"]["defaultHttpRetryPolicy"] == {"attempts": 0}
    our_services = {sa_of(p) for p in SERVES} | {"rest-bridge"}
    assert set(_routes(overlay)) == our_services


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_retries_fit_inside_the_callers_deadlines_on_unavailable_only(overlay: str) -> None:
    objects = build(overlay)
    config = _platform_config(objects)
    deadline = min(
        float(config["DEFAULT_DEADLINE_SECONDS"]), float(config["BRIDGE_DEFAULT_TIMEOUT_SECONDS"])
    )
    assert config["GRPC_CLIENT_RETRIES"] == "false"
    for routes in _routes(overlay).values():
        for route in routes:
            retries = route["retries"]
            if retries["attempts"] == 0:
                continue
            tries = 1 + retries["attempts"]
            assert tries * seconds(retries["perTryTimeout"]) < deadline
            conditions = set(retries["retryOn"].split(","))
            assert "unavailable" in conditions
            assert conditions <= {"unavailable", "connect-failure", "refused-stream", "reset"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_retries_live_in_exactly_one_layer_in_every_overlay(overlay: str) -> None:
    """The mesh's VirtualServices, or else the channels' own: never both, never none."""
    objects = build(overlay)
    mesh_retries = any(
        route["retries"]["attempts"] > 0
        for vs in of_kind(objects, "VirtualService")
        for route in vs["spec"]["http"]
    )
    channel_retries = _platform_config(objects)["GRPC_CLIENT_RETRIES"] == "true"
    assert mesh_retries != channel_retries


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_mutual_tls_is_strict_everywhere(overlay: str) -> None:
    objects = build(overlay)
    peer = list(of_kind(objects, "PeerAuthentication"))
    assert {(p["metadata"]["namespace"], p["spec"]["mtls"]["mode"]) for p in peer} == {
        ("istio-system", "STRICT"),
        (NAMESPACE, "STRICT"),
    }
    assert all("portLevelMtls" not in p["spec"] and "selector" not in p["spec"] for p in peer)
    namespace = next(of_kind(objects, "Namespace"))
    assert namespace["metadata"]["labels"]["istio-injection"] == "enabled"
    destination_rules = of_kind(objects, "DestinationRule")
    rules = {d["spec"]["host"].split(".")[0]: d["spec"] for d in destination_rules}
    assert set(rules) == {sa_of(p) for p in SERVES} | {"rest-bridge"}
    for host, rule in rules.items():
        policy = rule["trafficPolicy"]
        assert policy["tls"]["mode"] == "ISTIO_MUTUAL", host
        assert policy["connectionPool"]["http"]["http2MaxRequests"] > 0, host
        assert policy["outlierDetection"]["maxEjectionPercent"] <= 50, host


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_the_edge_checks_tokens_with_the_bridges_jwks_and_keeps_them(overlay: str) -> None:
    objects = build(overlay)
    (auth,) = of_kind(objects, "RequestAuthentication")
    (rule,) = auth["spec"]["jwtRules"]
    config = _platform_config(objects)
    assert auth["spec"]["selector"]["matchLabels"]["app"] == "rest-bridge"
    assert rule["issuer"] == config["JWT_ISSUER"]
    assert rule["audiences"] == [config["JWT_AUDIENCE"]]
    assert rule["jwksUri"].endswith("/.well-known/jwks.json")
    # The services verify the token again: the sidecar must not strip it.
    assert rule["forwardOriginalToken"] is True


@pytest.mark.parametrize("overlay", MESH_OVERLAYS)
def test_traces_go_to_the_collector_the_mesh_config_names(overlay: str) -> None:
    objects = build(overlay)
    operator = yaml.safe_load((ISTIO / "mesh" / "istio-operator.yaml").read_text())
    providers = {p["name"]: p for p in operator["spec"]["meshConfig"]["extensionProviders"]}
    (telemetry,) = of_kind(objects, "Telemetry")
    for tracing in telemetry["spec"]["tracing"]:
        for provider in tracing["providers"]:
            target = providers[provider["name"]]["opentelemetry"]
            name, namespace = target["service"].split(".")[:2]
            service = next(
                s
                for s in of_kind(objects, "Service")
                if s["metadata"]["name"] == name and s["metadata"]["namespace"] == namespace
            )
            assert target["port"] in {p["port"] for p in service["spec"]["ports"]}


def test_the_gateway_routes_everything_to_the_bridge_once() -> None:
    objects = build("kind")
    (gateway,) = of_kind(objects, "Gateway")
    edge = [v for v in of_kind(objects, "VirtualService") if v["spec"].get("gateways")]
    assert len(edge) == 1
    assert edge[0]["spec"]["gateways"] == [f"{NAMESPACE}/{gateway['metadata']['name']}"]
    (route,) = edge[0]["spec"]["http"]
    assert route["route"][0]["destination"]["host"].startswith("rest-bridge.")
    assert route["retries"] == {"attempts": 0}
