#!/usr/bin/env bash
# The embedded default, from nothing: installs what is missing, builds or reuses the cached
# control plane, starts it and the data plane, installs the CRD, runs the operator and the
# services, applies examples/local.yaml and prints `kubectl get tp` and the UI URL once Ready.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

bash stack/system-packages.sh
bash stack/python.sh
bash stack/controlplane.sh start
bash stack/dataplane.sh start >/dev/null
eval "$(bash stack/controlplane.sh env)"
eval "$(bash stack/dataplane.sh env)"

say "installing the TicketPlatform CRD"
kubectl apply --server-side --force-conflicts -f crds/ticketplatform.yaml >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/ticketplatforms.ticketing.io >/dev/null
bash stack/operator.sh start
bash stack/flink.sh setup
bash stack/services.sh start
bash stack/lambda.sh start

say "applying examples/local.yaml"
kubectl create namespace ticketing --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -f examples/local.yaml >/dev/null
kubectl -n ticketing wait tp/local --for=jsonpath='{.status.phase}'=Ready --timeout=180s >/dev/null \
  || { kubectl -n ticketing describe tp local; exit 1; }

echo
kubectl -n ticketing get tp
echo
echo "UI:          http://127.0.0.1:$FRONTEND_PORT/"
echo "kubeconfig:  export KUBECONFIG=$KUBECONFIG   (kubectl: $CP_BIN_DIR/kubectl)"
echo "stop:        make down"
