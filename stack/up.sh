#!/usr/bin/env bash
# The embedded default, from nothing: installs what is missing, builds or reuses the cached parts,
# starts the control plane and the real node, the data plane outside the cluster (as managed
# services are in production), builds the images and imports them into the node, installs the
# operator from operator/deploy, applies examples/local.yaml and prints `kubectl get tp` and the UI
# URL once the platform is Ready. Each phase prints how long it took.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

started=$SECONDS
phase() { # phase <name> <command...>: run one phase and report its time
  local name=$1 t=$SECONDS
  shift
  "$@"
  say "phase $name: $((SECONDS - t))s"
}

phase packages bash stack/system-packages.sh
phase python bash stack/python.sh
# The images are mostly downloads (debootstrap, pip): they build while the Go builds and the
# cluster start use the CPUs, and are imported once the node runs.
bash stack/images.sh build &
images_build=$!
phase controlplane bash stack/controlplane.sh start
phase node bash stack/node.sh start
phase addons bash stack/addons.sh apply
phase dataplane bash -c 'bash stack/dataplane.sh start >/dev/null'
phase images-wait wait "$images_build"
phase images-import bash stack/images.sh import
phase operator bash stack/platform.sh operator
# The ticket generator: S3 -> SQS -> the Lambda handler (the AWS endpoint runs no functions itself).
phase lambda bash stack/lambda.sh start
phase platform bash stack/platform.sh apply
eval "$(bash stack/controlplane.sh env)"

echo
kubectl -n ticketing get tp
echo
echo "UI:          $(bash stack/platform.sh url)/"
echo "kubeconfig:  export KUBECONFIG=$KUBECONFIG   (kubectl: $CP_BIN_DIR/kubectl)"
echo "stop:        make down          (make up took $((SECONDS - started))s)"
