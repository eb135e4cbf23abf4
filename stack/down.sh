#!/usr/bin/env bash
# Stops everything `make up` started (data is kept under .run/; `make clean` removes it).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
bash stack/lambda.sh stop
bash stack/services.sh stop
bash stack/operator.sh stop
bash stack/dataplane.sh stop
bash stack/controlplane.sh stop
