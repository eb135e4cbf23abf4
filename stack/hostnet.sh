#!/usr/bin/env bash
# The local stack's host network, shared by the control plane, the data plane and the node:
#   HOST_ADDR (10.213.0.1/32 on lo: this kernel has no dummy interfaces) where the apiserver and the
#   data plane listen for pods, and blackhole routes for the pod range 10.244.0.0/16 and the Service
#   range 10.96.0.0/16, so nothing addressed to them can ever leave the machine (the node replaces
#   the Service route with one via its bridge, and its /24 is more specific than the pod blackhole).
#
#   stack/hostnet.sh up       idempotent (stack/controlplane.sh start runs it)
#   stack/hostnet.sh down     remove HOST_ADDR (stack/down.sh, after everything else stopped); the
#                             blackhole routes stay, HOST_ADDR's included: a stale kubeconfig, pod IP
#                             or ClusterIP used after `make down` then fails here instead of taking
#                             the default route off the machine
#   stack/hostnet.sh purge    down, and remove the routes too (`make clean`)
#   stack/hostnet.sh status
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/node/lib-node.sh"

cmd_up() {
  [[ $(id -u) -eq 0 ]] || { say "hostnet: must run as root"; exit 1; }
  ensure_host_addr
  # The local route of an address on lo wins over this one while the address is there.
  ip route replace blackhole "$HOST_ADDR/32"
  ip route replace blackhole "$CLUSTER_CIDR"
  # Keep a route via the node's bridge if the node set one (see stack/node.sh).
  ip route show "$SERVICE_CIDR" | grep -q . || ip route replace blackhole "$SERVICE_CIDR"
}

cmd_down() {
  ip route replace blackhole "$HOST_ADDR/32"
  if ip -4 addr show dev lo | grep -q " $HOST_ADDR/"; then
    ip addr del "$HOST_ADDR/32" dev lo && say "hostnet: $HOST_ADDR removed from lo"
  fi
  return 0
}

cmd_status() {
  ip -4 addr show dev lo | grep -q " $HOST_ADDR/" && echo "HOST_ADDR $HOST_ADDR on lo" || echo "HOST_ADDR $HOST_ADDR absent"
  ip route show | grep -E "^(blackhole )?(${CLUSTER_CIDR%%/*}|${SERVICE_CIDR%%/*}|$HOST_ADDR)" || true
}

cmd_purge() {
  cmd_down
  local r
  for r in "$HOST_ADDR/32" "$CLUSTER_CIDR" "$SERVICE_CIDR"; do
    ip route del "$r" 2>/dev/null && say "hostnet: route $r removed"
  done
  return 0
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  purge) cmd_purge ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|purge|status" >&2; exit 2 ;;
esac
