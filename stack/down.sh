#!/usr/bin/env bash
# Stops everything `make up` started (data is kept under .run/; `make clean` removes it).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
bash stack/lambda.sh stop
bash stack/services.sh stop
bash stack/operator.sh stop
# The real node: its containers first, then kubelet, kube-proxy, containerd and their host state.
bash stack/node.sh stop
# Local analytics jobs outlive an operator restart on purpose (the next one adopts them); a full
# stop ends them too.
pkill -f "$TP_RUN_DIR/analytics/" 2>/dev/null && say "analytics: local Flink jobs stopped"
bash stack/dataplane.sh stop
bash stack/controlplane.sh stop
# Last: HOST_ADDR and the blackhole routes, which the data plane and the control plane used.
bash stack/hostnet.sh down
