#!/usr/bin/env bash
# The test command: installs and builds what is missing (cached), then runs the whole suite
# against real servers (the fixtures start the control plane, Kafka, PostgreSQL, moto, Flink).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"
bash stack/system-packages.sh
bash stack/python.sh
# The project's images (tests.fixtures.node imports them) are mostly downloads (debootstrap, pip):
# they build in the background while the Go builds below keep the CPUs busy.
bash stack/images.sh build &
images_build=$!
bash stack/build-controlplane.sh
# kubelet, kube-proxy and the pause/busybox images of the real node (tests.fixtures.node starts it).
bash stack/build-node.sh
# CoreDNS and metrics-server binaries and images (tests.fixtures.addons applies them on the node).
bash stack/addons.sh build
bash stack/flink.sh setup
# OpenTofu (built once from its Go module, cached) for `tofu fmt -check` in tests/terraform.
bash stack/terraform.sh build
wait "$images_build" || { say "image build failed (its output is above)"; exit 1; }
# grpc's C core logs every GOAWAY of the local Dataproc test server at INFO; keep errors only.
export GRPC_VERBOSITY="${GRPC_VERBOSITY:-ERROR}"
exec "$VENV_DIR/bin/python" -m pytest "$@"
