# Shared helpers for the local-stack scripts. Source it; it defines no side effects beyond variables.
STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$STACK_DIR/.." && pwd)"
# shellcheck source=versions.env
. "$STACK_DIR/versions.env"
# Slow builds are cached here, keyed by version. Git ignores .cache/; CI points TP_CACHE_DIR at a
# folder outside the clone so a second run on the same machine reuses the binaries.
TP_CACHE_DIR="${TP_CACHE_DIR:-$REPO_DIR/.cache}"
# Runtime state (data dirs, logs, pids, kubeconfig) of the running local stack.
TP_RUN_DIR="${TP_RUN_DIR:-$REPO_DIR/.run}"
CP_BIN_DIR="$TP_CACHE_DIR/controlplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Loopback ports of the local stack (override any of them from the environment).
: "${ETCD_CLIENT_PORT:=23791}" "${ETCD_PEER_PORT:=23801}"
: "${KUBE_APISERVER_PORT:=16443}"
: "${KAFKA_PORT:=19092}" "${KAFKA_CONTROLLER_PORT:=19093}" "${KAFKA_POD_PORT:=19094}"
: "${POSTGRES_PORT:=15432}"
: "${MOTO_PORT:=15000}"
: "${FRONTEND_PORT:=18080}" "${USER_SERVICE_PORT:=18081}" "${EVENT_CATALOG_PORT:=18082}" "${BOOKING_SERVICE_PORT:=18083}"
: "${OPERATOR_METRICS_PORT:=18090}" "${OPERATOR_HEALTH_PORT:=18091}"
export ETCD_CLIENT_PORT ETCD_PEER_PORT KUBE_APISERVER_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_POD_PORT POSTGRES_PORT \
  MOTO_PORT FRONTEND_PORT USER_SERVICE_PORT EVENT_CATALOG_PORT BOOKING_SERVICE_PORT \
  OPERATOR_METRICS_PORT OPERATOR_HEALTH_PORT TP_CACHE_DIR TP_RUN_DIR
VENV_DIR="${VENV_DIR:-$REPO_DIR/.venv}"

# launch NAME PIDFILE LOG READY_FN CMD...: start CMD detached (its own session, without this
# script's lock fds 8 and 9), record its pid, and wait until `READY_FN PID` succeeds; otherwise
# show the tail of LOG, kill it and exit 1.
launch() {
  local name=$1 pidfile=$2 log=$3 ready=$4 started=$SECONDS pid
  shift 4
  setsid nohup "$@" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$pidfile"
  if ! "$ready" "$pid"; then
    say "$name: not ready after $((SECONDS - started))s; last lines of $log:"
    tail -n 30 "$log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  say "$name: ready (pid $pid) after $((SECONDS - started))s"
}

# stop_process NAME PID PIDFILE GRACE_SECONDS: SIGTERM, then SIGKILL after the grace period;
# waits until the process is gone and removes PIDFILE.
stop_process() {
  local name=$1 pid=$2 pidfile=$3 grace=$4
  say "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name: still running after ${grace}s, killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$pidfile"
  say "$name: stopped"
}

# HOST_ADDR: this machine's address for what pods must reach (kube-apiserver, Kafka's pod listener,
# PostgreSQL, the AWS endpoint). Pods cannot reach 127.0.0.1, and 0.0.0.0 would expose the stack to
# the VM's network, so it is a /32 on the loopback device (this kernel has no dummy interfaces):
# local to this machine, routable from the pod bridge, never announced outside.
: "${HOST_ADDR:=10.213.0.1}"
export HOST_ADDR
ensure_host_addr() {
  # While the address is absent (after `make down`), this route keeps HOST_ADDR from leaving the
  # machine; the address's own local route takes precedence once it is added.
  ip route replace blackhole "$HOST_ADDR/32"
  ip -4 addr show dev lo | grep -q " $HOST_ADDR/" && return 0
  ip addr add "$HOST_ADDR/32" dev lo
  say "host address $HOST_ADDR added to lo"
}
