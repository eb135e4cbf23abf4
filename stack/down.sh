#!/usr/bin/env bash
# Stops everything `make up` started (data is kept under .run/; `make clean` removes it).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
bash stack/lambda.sh stop
bash stack/services.sh stop
bash stack/operator.sh stop
# Local analytics jobs outlive an operator restart on purpose (the next one adopts them); a full
# stop ends them too.
pkill -f "$TP_RUN_DIR/analytics/" 2>/dev/null && say "analytics: local Flink jobs stopped"
bash stack/dataplane.sh stop
bash stack/controlplane.sh stop
