#!/usr/bin/env bash
# The real node `tp-node` of the local cluster: containerd (Debian) + runc + CNI bridge, kubelet and
# kube-proxy (built by stack/build-node.sh), registered with the local control plane.
#
#   stack/node.sh start     build (cached) and start; waits for the node to be Ready; a no-op when up
#   stack/node.sh stop      stop everything and leave the host as it was: no containers or shims,
#                           no KUBE-*/CNI-*/TP-NODE-* iptables chains, no bridge, no mounts under the
#                           node's dirs, no kubepods cgroups, no /run/containerd; sysctls restored
#   stack/node.sh status    each part (exit 0 only when all is up and the node is Ready)
#   stack/node.sh env       eval "$(stack/node.sh env)" for ctr (CONTAINERD_ADDRESS/NAMESPACE)
#   stack/node.sh import-image ARCHIVE [NAME]
#                           import an image archive (OCI or docker) into containerd's k8s.io
#                           namespace; NAME (repo[:tag]) names an OCI archive whose index only tags
#
# Needs the control plane (stack/controlplane.sh start) and root. State: $TP_RUN_DIR/node
# (logs/<name>.log, pki/, configs, kubelet root, containerd images). Processes are found by their
# command line (binary + a path under $TP_RUN_DIR/node), so `stop` works without pid files too.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/node/lib-node.sh"
. "$STACK_DIR/node/templates.sh"
. "$STACK_DIR/node/host-state.sh"
. "$STACK_DIR/lib-pki.sh"

CP_DIR="$TP_RUN_DIR/controlplane"
PKI="$CP_DIR/pki"
LOGS="$NODE_DIR/logs"
NODE_PKI="$NODE_DIR/pki"
CONTAINERD_ROOT="$NODE_DIR/containerd/root"
KUBELET_ROOT="$NODE_DIR/kubelet/root"
SYSCTL_RECORD="$NODE_DIR/sysctls.orig"
APISERVER_URL="https://$HOST_ADDR:$KUBE_APISERVER_PORT"
: "${NODE_START_TIMEOUT:=120}"
export CONTAINERD_ADDRESS="$CONTAINERD_SOCK" CONTAINERD_NAMESPACE

# Host tunables the kubelet, the CNI bridge plugin and kube-proxy change; recorded before the first
# start and written back at stop.
RECORDED_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait net.ipv4.conf.all.forwarding)

kubectl_admin() { "$CP_BIN_DIR/kubectl" --kubeconfig "$CP_DIR/kubeconfig" "$@"; }
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n "$CONTAINERD_NAMESPACE" "$@"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}'; }

# ------------------------------------------------------------------------------- processes ----
# pids_of <name>: running processes of a node component, by command line: the executable's base
# name is <name> and an argument mentions $NODE_DIR (our config), so a pid file is not needed.
pids_of() {
  local name=$1 p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' '\n' 2>/dev/null < "$p/cmdline") || continue
    [[ -n "$cmd" ]] || continue
    [[ "$(basename "$(head -n1 <<<"$cmd")")" == "$name" ]] || continue
    grep -qF -- "$NODE_DIR/" <<<"$cmd" || continue
    echo "${p#/proc/}"
  done
}
shim_pids() { # containerd-shim-runc-v2 processes serving our containerd socket
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
    [[ "$cmd" == *containerd-shim*"-address $CONTAINERD_SOCK"* ]] && echo "${p#/proc/}"
  done
  return 0
}
running() { [[ -n "$(pids_of "$1")" ]]; }

start_process() { # start_process <name> <ready-fn> <command...>
  local name=$1 ready=$2 t0; shift 2
  t0=$(date +%s.%N)
  if running "$name"; then say "$name: already running (pid $(pids_of "$name" | xargs))"; return 0; fi
  say "$name: starting"
  # setsid: own session, so a Ctrl-C in the caller does not stop it; 8>&- 9>&-: the start lock's
  # fd is not inherited.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  local pid=$! deadline=$((SECONDS + NODE_START_TIMEOUT))
  until "$ready"; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      say "$name: not ready after $(elapsed "$t0"); last lines of $LOGS/$name.log:"
      tail -n 30 "$LOGS/$name.log" >&2
      kill "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
  say "$name: ready (pid $pid) after $(elapsed "$t0")"
}

stop_pids() { # stop_pids <what> <grace-seconds> <pid>...: TERM, wait, KILL after the grace period
  local what=$1 grace=$2 pid; shift 2
  [[ $# -gt 0 ]] || return 0
  say "$what: stopping (pid $*)"
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$what: pid $pid still running after ${grace}s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "$@"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done; done
}

# -------------------------------------------------------------------------------------- pki ----
cert_ok() { # cert_ok <name> <san-needle>: exists, signed by the current CA, has the SAN
  local crt="$NODE_PKI/$1.crt"
  [[ -f "$crt" && -f "$NODE_PKI/$1.key" ]] || return 1
  openssl verify -CAfile "$PKI/ca.crt" "$crt" >/dev/null 2>&1 || return 1
  [[ -z "$2" ]] || openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | grep -qF "$2"
}

gen_pki() {
  mkdir -p "$NODE_PKI"; chmod 700 "$NODE_PKI"
  # The Node authorizer and NodeRestriction know the kubelet by this identity.
  cert_ok kubelet-client "" \
    || sign_cert "$NODE_PKI" kubelet-client "$PKI/ca" "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  # Serving certificate signed by the cluster CA (no serverTLSBootstrap): the apiserver and
  # metrics-server verify the kubelet at HOST_ADDR with the CA they already have.
  cert_ok kubelet-serving "IP Address:$HOST_ADDR" \
    || sign_cert "$NODE_PKI" kubelet-serving "$PKI/ca" "/CN=$NODE_NAME" serverAuth "IP:$HOST_ADDR,IP:127.0.0.1,DNS:$NODE_NAME"
  # Bound to system:node-proxier by the default ClusterRoleBinding of that name.
  cert_ok kube-proxy-client "" || sign_cert "$NODE_PKI" kube-proxy-client "$PKI/ca" "/CN=system:kube-proxy" clientAuth
}

write_configs() {
  mkdir -p "$NODE_DIR/containerd" "$CONTAINERD_ROOT" "$NODE_DIR/cni/net.d" "$NODE_DIR/kubelet" \
    "$KUBELET_ROOT" "$NODE_DIR/kube-proxy" "$NODE_DIR/pod-logs"
  render_containerd_config
  render_cni_config
  render_kubeconfig "$NODE_DIR/kubelet/kubeconfig" "$NODE_PKI/kubelet-client.crt" "$NODE_PKI/kubelet-client.key"
  render_kubelet_config
  render_kubeconfig "$NODE_DIR/kube-proxy/kubeconfig" "$NODE_PKI/kube-proxy-client.crt" "$NODE_PKI/kube-proxy-client.key"
  render_kube_proxy_config
}

# ---------------------------------------------------------------------------------- sysctls ----
record_sysctls() {
  [[ -f "$SYSCTL_RECORD" ]] && return 0 # recorded by an earlier start and not yet restored
  local k v tmp="$SYSCTL_RECORD.tmp"
  : > "$tmp"
  for k in "${RECORDED_SYSCTLS[@]}"; do
    v=$(sysctl -n "$k" 2>/dev/null) || continue
    printf '%s=%s\n' "$k" "$v" >> "$tmp"
  done
  mv "$tmp" "$SYSCTL_RECORD"
  say "sysctls recorded in $SYSCTL_RECORD"
}

restore_sysctls() {
  [[ -f "$SYSCTL_RECORD" ]] || return 0
  local line k v changed=()
  while IFS= read -r line; do
    k=${line%%=*}; v=${line#*=}
    [[ "$(sysctl -n "$k" 2>/dev/null)" == "$v" ]] && continue
    sysctl -qw "$k=$v" 2>/dev/null && changed+=("$k=$v")
  done < "$SYSCTL_RECORD"
  rm -f "$SYSCTL_RECORD"
  say "sysctls restored${changed[*]:+: ${changed[*]}}"
}

# ------------------------------------------------------------------------------------ ready ----
apiserver_ready() {
  local token
  token=$(awk -F, '$2=="admin"{print $1}' "$PKI/tokens.csv" 2>/dev/null) || return 1
  [[ -n "$token" ]] || return 1
  [[ "$(curl -sS --max-time 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token" \
        "$APISERVER_URL/readyz" 2>/dev/null)" == ok ]]
}
containerd_ready() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }
kubelet_healthy() { [[ "$(curl -s --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" 2>/dev/null)" == ok ]]; }
node_ready() {
  [[ "$(kubectl_admin get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
# Ready as reported by a kubelet heartbeat at or after <since> (UTC, RFC 3339): right after a
# restart the Node object still shows the old kubelet's Ready for up to 40s.
node_ready_since() {
  local got
  got=$(kubectl_admin get node "$NODE_NAME" \
    -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2>/dev/null) || return 1
  [[ "${got%% *}" == True && ! "${got#* }" < "$1" ]]
}
kube_proxy_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz" >/dev/null 2>&1; }
pause_imported() { [[ -n "$(ctr_k8s images ls -q "name==$PAUSE_IMAGE" 2>/dev/null)" ]]; }

all_up() {
  running containerd && running kubelet && running kube-proxy && containerd_ready \
    && kubelet_healthy && kube_proxy_healthy && node_ready
}

# -------------------------------------------------------------------------------- commands ----
import_image() { # import_image <archive> [<name>]
  local archive=$1 name=${2:-} args=()
  [[ -z "$name" ]] || args=(--base-name "${name%:*}")
  ctr_k8s images import "${args[@]}" "$archive" >/dev/null
}

cmd_start() {
  [[ $(id -u) -eq 0 ]] || { say "node: must run as root (containerd, iptables, cgroups)"; exit 1; }
  mkdir -p "$NODE_DIR" "$LOGS"
  exec 9>"$NODE_DIR/start.lock"
  flock 9
  if all_up; then say "node $NODE_NAME already up and Ready"; return 0; fi
  local t0; t0=$(date +%s.%N)
  apiserver_ready || { say "node: the control plane is not up at $APISERVER_URL (stack/controlplane.sh start)"; exit 1; }
  bash "$STACK_DIR/build-node.sh"
  record_sysctls
  gen_pki
  write_configs
  ensure_node_net
  say "host network ready after $(elapsed "$t0")"

  # HTTP(S)_PROXY to a closed loopback port: an image that is not on the node is never fetched
  # from outside this machine (the pull fails at once with "proxyconnect ... connection refused").
  start_process containerd containerd_ready env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
    NO_PROXY= http_proxy= https_proxy= no_proxy= /usr/bin/containerd --config "$NODE_DIR/containerd/config.toml"
  if ! pause_imported; then
    say "containerd: importing $PAUSE_IMAGE"
    import_image "$NODE_PAUSE_ARCHIVE" "$PAUSE_IMAGE"
    pause_imported || { say "containerd: $PAUSE_IMAGE missing after import"; exit 1; }
  fi

  local since; since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  start_process kubelet kubelet_healthy "$NODE_BIN_DIR/kubelet" \
    --config="$NODE_DIR/kubelet/config.yaml" \
    --kubeconfig="$NODE_DIR/kubelet/kubeconfig" \
    --root-dir="$KUBELET_ROOT" \
    --cert-dir="$NODE_PKI" \
    --hostname-override="$NODE_NAME" \
    --node-ip="$HOST_ADDR" \
    --v=1
  local t1; t1=$(date +%s.%N)
  local deadline=$((SECONDS + NODE_START_TIMEOUT))
  until node_ready_since "$since"; do
    if ! running kubelet || ((SECONDS >= deadline)); then
      say "node $NODE_NAME not Ready; last lines of $LOGS/kubelet.log:"; tail -n 30 "$LOGS/kubelet.log" >&2; exit 1
    fi
    sleep 0.3
  done
  say "node $NODE_NAME Ready $(elapsed "$t1") after the kubelet"
  local cidr; cidr=$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.spec.podCIDR}' 2>/dev/null || true)
  [[ "$cidr" == "$NODE_POD_CIDR" ]] || say "warning: node podCIDR is '${cidr:-unset}', the CNI bridge serves $NODE_POD_CIDR"

  start_process kube-proxy kube_proxy_healthy "$NODE_BIN_DIR/kube-proxy" \
    --config="$NODE_DIR/kube-proxy/config.yaml" --v=1
  say "node $NODE_NAME up in $(elapsed "$t0") (kubelet $HOST_ADDR:$KUBELET_PORT, pods $NODE_POD_CIDR on $CNI_BRIDGE)"
}

# Containers first (so no process is left in kubepods), then the daemons, then host state.
cmd_stop() {
  local t0 did=0; t0=$(date +%s.%N)
  local pids
  pids=$(pids_of kube-proxy | xargs); [[ -z "$pids" ]] || { stop_pids kube-proxy 10 $pids; did=1; }
  pids=$(pids_of kubelet | xargs); [[ -z "$pids" ]] || { stop_pids kubelet 20 $pids; did=1; }
  if running containerd && containerd_ready; then
    local tasks; tasks=$(ctr_k8s tasks ls -q 2>/dev/null | xargs || true)
    if [[ -n "$tasks" ]]; then
      say "containers: killing $(wc -w <<<"$tasks") task(s)"
      for id in $tasks; do ctr_k8s tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
      for id in $tasks; do
        for _ in $(seq 1 50); do
          [[ "$(ctr_k8s tasks ls 2>/dev/null | awk -v i="$id" '$1==i{print $3}')" == RUNNING ]] || break; sleep 0.1
        done
        ctr_k8s tasks rm -f "$id" >/dev/null 2>&1 || true
      done
    fi
    local containers; containers=$(ctr_k8s containers ls -q 2>/dev/null | xargs || true)
    [[ -z "$containers" ]] || { say "containers: removing $(wc -w <<<"$containers")"; ctr_k8s containers rm $containers >/dev/null 2>&1 || true; }
  fi
  kill_kubepods_processes
  pids=$(pids_of containerd | xargs); [[ -z "$pids" ]] || { stop_pids containerd 20 $pids; did=1; }
  pids=$(shim_pids | xargs); [[ -z "$pids" ]] || stop_pids containerd-shims 5 $pids
  cleanup_node_host_state
  restore_sysctls
  rm -f "$NODE_DIR"/pids/*.pid 2>/dev/null || true
  ((did)) && say "node $NODE_NAME stopped in $(elapsed "$t0")" || say "node $NODE_NAME was not running (host state cleaned)"
}

cmd_status() {
  local ok=0 c
  for c in containerd kubelet kube-proxy; do
    if running "$c"; then printf '%-22s up (pid %s)\n' "$c" "$(pids_of "$c" | xargs)"; else printf '%-22s down\n' "$c"; ok=1; fi
  done
  if containerd_ready; then
    printf '%-22s %s\n' "containerd socket" "$CONTAINERD_SOCK"
    if pause_imported; then printf '%-22s %s present\n' "sandbox image" "$PAUSE_IMAGE"; else printf '%-22s %s missing\n' "sandbox image" "$PAUSE_IMAGE"; ok=1; fi
    printf '%-22s %s\n' "containers (k8s.io)" "$(ctr_k8s containers ls -q 2>/dev/null | wc -l)"
  fi
  kubelet_healthy && printf '%-22s ok\n' "kubelet /healthz" || { printf '%-22s not answering\n' "kubelet /healthz"; ok=1; }
  kube_proxy_healthy && printf '%-22s ok\n' "kube-proxy /healthz" || { printf '%-22s not answering\n' "kube-proxy /healthz"; ok=1; }
  if node_ready; then printf '%-22s %s Ready\n' "node" "$NODE_NAME"; else printf '%-22s %s not Ready\n' "node" "$NODE_NAME"; ok=1; fi
  if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
    printf '%-22s %s %s\n' "bridge" "$CNI_BRIDGE" "$(ip -4 -br addr show dev "$CNI_BRIDGE" | awk '{print $3}')"
  else printf '%-22s %s absent\n' "bridge" "$CNI_BRIDGE"; ok=1; fi
  printf '%-22s %s\n' "routes" "$(ip route show | grep -E '^(blackhole )?10\.(244|96)\.' | paste -sd';' -)"
  [[ -f "$SYSCTL_RECORD" ]] && printf '%-22s %s\n' "sysctls recorded" "$SYSCTL_RECORD"
  return $ok
}

cmd_env() {
  printf 'export CONTAINERD_ADDRESS=%q\n' "$CONTAINERD_SOCK"
  printf 'export CONTAINERD_NAMESPACE=%q\n' "$CONTAINERD_NAMESPACE"
  printf 'export TP_NODE_NAME=%q\n' "$NODE_NAME"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  import-image)
    [[ -n "${2:-}" ]] || { echo "usage: $0 import-image ARCHIVE [NAME]" >&2; exit 2; }
    import_image "$2" "${3:-}" ;;
  *) echo "usage: $0 start|stop|status|env|import-image ARCHIVE [NAME]" >&2; exit 2 ;;
esac
