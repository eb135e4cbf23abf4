#!/usr/bin/env bash
# The platform inside the local cluster, installed the way a user installs it:
#   stack/platform.sh operator   the CRD, then operator/deploy (namespace, ServiceAccount, least-
#                                privilege RBAC, the operator Deployment from its image); waits
#                                until the operator pod is Ready
#   stack/platform.sh apply      the database/AWS credentials Secret and examples/local.yaml in
#                                namespace ticketing; waits until the TicketPlatform is Ready
#   stack/platform.sh delete     deletes the local TicketPlatform (the operator removes its
#                                children, topics and analytics job) and waits until it is gone
#   stack/platform.sh url        the UI URL (the frontend's NodePort on 127.0.0.1)
#   stack/platform.sh status     the operator Deployment and the local TicketPlatform
# Needs the control plane, the node, the data plane and the images (stack/up.sh runs them first).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

PLATFORM_NAMESPACE="${PLATFORM_NAMESPACE:-ticketing}"
PLATFORM_NAME=local
CREDENTIALS_SECRET=local-credentials
READY_TIMEOUT="${PLATFORM_READY_TIMEOUT:-300}"

eval "$(bash "$STACK_DIR/controlplane.sh" env)"

# The UI URL is the one the example declares (spec.url: the frontend's NodePort on loopback).
ui_url() { "$VENV_DIR/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["spec"]["url"])' examples/local.yaml; }

install_operator() {
  local started=$SECONDS
  say "platform: installing the CRD and the operator (operator/deploy)"
  kubectl apply --server-side --force-conflicts -f crds/ticketplatform.yaml >/dev/null
  kubectl wait --for=condition=Established --timeout=60s crd/ticketplatforms.ticketing.io >/dev/null
  kubectl apply --server-side --force-conflicts -k operator/deploy >/dev/null
  if ! kubectl -n ticketplatform-system rollout status deployment/ticketplatform-operator --timeout=180s >/dev/null; then
    say "platform: the operator did not become Ready:"
    kubectl -n ticketplatform-system get pods -o wide >&2 || true
    kubectl -n ticketplatform-system logs deployment/ticketplatform-operator --tail=30 >&2 || true
    exit 1
  fi
  say "platform: operator Ready after $((SECONDS - started))s"
}

apply_local() {
  local started=$SECONDS
  # The data plane's settings for pods (never the 127.0.0.1 ones: pods cannot reach loopback).
  eval "$(bash "$STACK_DIR/dataplane.sh" env)"
  kubectl create namespace "$PLATFORM_NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # The platform's pods meet the restricted Pod Security Standard; the namespace enforces it.
  kubectl label --overwrite namespace "$PLATFORM_NAMESPACE" pod-security.kubernetes.io/enforce=restricted >/dev/null
  # Credentials go in a Secret the spec references, as with a managed database in production.
  kubectl -n "$PLATFORM_NAMESPACE" create secret generic "$CREDENTIALS_SECRET" \
    --from-literal=DATABASE_URL="$DATABASE_POD_URL" \
    --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
    --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  say "platform: applying examples/local.yaml"
  kubectl apply -f examples/local.yaml >/dev/null
  if ! kubectl -n "$PLATFORM_NAMESPACE" wait "tp/$PLATFORM_NAME" --for=jsonpath='{.status.phase}'=Ready \
      --timeout="${READY_TIMEOUT}s" >/dev/null; then
    say "platform: $PLATFORM_NAME not Ready after ${READY_TIMEOUT}s:"
    kubectl -n "$PLATFORM_NAMESPACE" get tp,pods -o wide >&2 || true
    kubectl -n "$PLATFORM_NAMESPACE" get tp "$PLATFORM_NAME" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 || true
    exit 1
  fi
  say "platform: $PLATFORM_NAME Ready after $((SECONDS - started))s"
}

delete_local() {
  kubectl -n "$PLATFORM_NAMESPACE" delete tp "$PLATFORM_NAME" --ignore-not-found --wait=true --timeout=120s >/dev/null
}

case "${1:-}" in
  operator) install_operator ;;
  apply) apply_local ;;
  delete) delete_local ;;
  url) ui_url ;;
  status)
    kubectl -n ticketplatform-system get deployment ticketplatform-operator --no-headers 2>/dev/null \
      | awk '{print "operator (in cluster)    " $2 " ready"}' || echo "operator (in cluster)    not installed"
    kubectl -n "$PLATFORM_NAMESPACE" get tp "$PLATFORM_NAME" --no-headers 2>/dev/null \
      | awk '{print "platform " $1 "            " $2 " " $3}' || echo "platform local           not applied"
    ;;
  *) echo "usage: $0 operator|apply|delete|url|status" >&2; exit 2 ;;
esac
