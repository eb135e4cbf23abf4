#!/usr/bin/env bash
# The local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# and kwok (3 fake nodes whose pods become Running and Ready, tainted kwok.x-k8s.io/node=fake:NoSchedule).
# The apiserver listens on HOST_ADDR (10.213.0.1, on lo: see stack/hostnet.sh) so that pods and the
# real node (stack/node.sh) reach it; everything else on 127.0.0.1.
#
#   stack/controlplane.sh start    build (cached) and start everything; a no-op when already up
#   stack/controlplane.sh stop     stop every process this script started
#   stack/controlplane.sh status   what is up (exit 0 only when all is up and the apiserver is ready)
#   stack/controlplane.sh env      eval "$(stack/controlplane.sh env)" for KUBECONFIG and PATH
#
# State lives in $TP_RUN_DIR/controlplane: pki/, etcd/ (data), logs/<name>.log, pids/<name>.pid,
# kubeconfig (user admin), operator.kubeconfig (user ticketplatform-operator), audit.log (json).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$STACK_DIR/lib-pki.sh"

CP_DIR="$TP_RUN_DIR/controlplane"
PKI="$CP_DIR/pki"
LOGS="$CP_DIR/logs"
PIDS="$CP_DIR/pids"
ADMIN_KUBECONFIG="$CP_DIR/kubeconfig"
OPERATOR_KUBECONFIG="$CP_DIR/operator.kubeconfig"
AUDIT_LOG="$CP_DIR/audit.log"
KWOK_CONF_DIR="$STACK_DIR/kwok"
: "${KUBE_CONTROLLER_MANAGER_PORT:=16257}" "${KUBE_SCHEDULER_PORT:=16259}"
APISERVER_URL="https://$HOST_ADDR:$KUBE_APISERVER_PORT"
# The real node's pod range: the controller-manager gives every node a /24 of it (kwok's nodes have
# theirs fixed in stack/kwok/nodes.yaml, so the real node gets 10.244.0.0/24).
CLUSTER_CIDR=10.244.0.0/16
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# How long to wait for each step (seconds).
: "${CP_START_TIMEOUT:=90}"

kubectl_admin() { "$CP_BIN_DIR/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

is_component() { # is_component <name> <pid>: that pid runs <name> with this run dir's state
  local cmd
  cmd=$(tr '\0' '\n' 2>/dev/null < "/proc/$2/cmdline") || return 1
  [[ "$(basename "$(head -n1 <<<"$cmd")")" == "$1" ]] && grep -qF -- "$CP_DIR/" <<<"$cmd"
}
# The recorded pid, or else (pid file gone, e.g. after a test run was interrupted) the process found
# by its command line: binary name plus an argument under $CP_DIR. So stop always finds it.
pid_of() {
  local pid p
  pid=$(cat "$PIDS/$1.pid" 2>/dev/null || true)
  if [[ -n "$pid" ]] && is_component "$1" "$pid"; then echo "$pid"; return 0; fi
  for p in /proc/[0-9]*; do
    if is_component "$1" "${p#/proc/}"; then echo "${p#/proc/}"; return 0; fi
  done
  return 0
}
alive() { [[ -n "$(pid_of "$1")" ]]; }
port_open() { (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }

apiserver_ready() {
  [[ -f "$PKI/ca.crt" && -f "$PKI/tokens.csv" ]] || return 1
  local token; token=$(awk -F, '$2=="admin"{print $1}' "$PKI/tokens.csv")
  [[ "$(curl -sS --max-time 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token" \
        "$APISERVER_URL/readyz" 2>/dev/null)" == ok ]]
}

ready_nodes() {
  kubectl_admin get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null \
    | grep -c '^True$' || true
}

wait_for() { # wait_for <description> <timeout-seconds> <command...>
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      say "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------------------------------- pki ----
gen_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [[ ! -f "$PKI/ca.crt" ]]; then
    say "pki: CA"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=ticketplatform-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" 2>/dev/null
    rm -f "$PKI/apiserver.crt"
  fi
  # Regenerated when its SANs predate HOST_ADDR.
  if [[ -f "$PKI/apiserver.crt" ]] && ! openssl x509 -in "$PKI/apiserver.crt" -noout -ext subjectAltName 2>/dev/null \
      | grep -qF "IP Address:$HOST_ADDR"; then
    say "pki: the apiserver certificate lacks $HOST_ADDR; issuing a new one"
    rm -f "$PKI/apiserver.crt"
  fi
  if [[ ! -f "$PKI/apiserver.crt" ]]; then
    say "pki: apiserver serving certificate (127.0.0.1, $HOST_ADDR, 10.96.0.1, localhost, kubernetes.default...)"
    openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$PKI/apiserver.key" \
      -out "$PKI/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
    cat > "$PKI/apiserver.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=IP:127.0.0.1,IP:$HOST_ADDR,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl x509 -req -sha256 -days 3650 -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" \
      -CAkey "$PKI/ca.key" -CAcreateserial -extfile "$PKI/apiserver.ext" \
      -out "$PKI/apiserver.crt" 2>/dev/null
  fi
  if [[ ! -f "$PKI/front-proxy-ca.crt" ]]; then
    # The requestheader (front proxy) CA: the apiserver publishes it in
    # kube-system/extension-apiserver-authentication, where the controller-manager, the scheduler
    # and any aggregated API server look for it.
    say "pki: front-proxy CA and client certificate"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" -subj "/CN=front-proxy-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" \
      -addext "subjectKeyIdentifier=hash" 2>/dev/null
    sign_cert "$PKI" front-proxy-client "$PKI/front-proxy-ca" "/CN=front-proxy-client" clientAuth
  fi
  if [[ ! -f "$PKI/apiserver-kubelet-client.crt" ]]; then
    # The apiserver's identity towards kubelets (logs, exec, port-forward, metrics proxy).
    sign_cert "$PKI" apiserver-kubelet-client "$PKI/ca" "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  fi
  if [[ ! -f "$PKI/sa.key" ]]; then
    say "pki: service-account key pair"
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  if [[ ! -f "$PKI/tokens.csv" ]]; then
    say "pki: static tokens for admin and ticketplatform-operator"
    # token,user,uid,"group1,group2"  (--token-auth-file format)
    # The operator's user gets only the operator's ClusterRole (bound at start, below).
    {
      echo "$(openssl rand -hex 24),admin,admin,\"system:masters\""
      echo "$(openssl rand -hex 24),ticketplatform-operator,ticketplatform-operator,\"system:authenticated\""
    } > "$PKI/tokens.csv"
    chmod 600 "$PKI/tokens.csv"
  fi
}

write_kubeconfig() { # write_kubeconfig <file> <user>
  local file=$1 user=$2 token ca
  token=$(awk -F, -v u="$user" '$2==u{print $1}' "$PKI/tokens.csv")
  ca=$(base64 -w0 < "$PKI/ca.crt")
  local tmp="$file.tmp.$$"
  cat > "$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ticketplatform-local
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@ticketplatform-local
  context:
    cluster: ticketplatform-local
    user: $user
current-context: $user@ticketplatform-local
EOF
  chmod 600 "$tmp"; mv "$tmp" "$file"
}

write_configs() {
  write_kubeconfig "$ADMIN_KUBECONFIG" admin
  write_kubeconfig "$OPERATOR_KUBECONFIG" ticketplatform-operator
  # The controller-manager and the scheduler use the admin token too (system:masters).
  cp "$ADMIN_KUBECONFIG" "$CP_DIR/controller-manager.kubeconfig"
  cp "$ADMIN_KUBECONFIG" "$CP_DIR/scheduler.kubeconfig"
  # Metadata for every request, without the RequestReceived stage: one ResponseComplete line per
  # request (tests count the operator's write calls from it by user name).
  cat > "$CP_DIR/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
- RequestReceived
rules:
- level: Metadata
EOF
  cat > "$CP_DIR/scheduler-config.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $CP_DIR/scheduler.kubeconfig
  qps: 100
  burst: 200
leaderElection:
  leaderElect: false
EOF
}

# ------------------------------------------------------------------------------------ process ----
launch() { # launch <name> <command...>: start in the background, log and record its pid
  local name=$1; shift
  if alive "$name"; then return 0; fi
  say "starting $name"
  # setsid: own process group, so a Ctrl-C in the calling shell (or pytest) does not stop it.
  # 9>&-: the start lock's fd must not be inherited, or the component would hold the lock forever.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$PIDS/$name.pid"
}

check_port_free() { # check_port_free <name> <port> [<address>]
  if ! alive "$1" && port_open "$2" "${3:-127.0.0.1}"; then
    say "port ${3:-127.0.0.1}:$2 (for $1) is in use by a process this script did not start; stop it or set the port variable"
    exit 1
  fi
}

died() { # fail with the tail of a component's log when it exits during start
  # kill -0 only: right after launch, /proc/<pid>/cmdline may still be the forking shell's.
  local pid; pid=$(cat "$PIDS/$1.pid" 2>/dev/null || true)
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    say "$1 exited; last lines of $LOGS/$1.log:"
    tail -n 25 "$LOGS/$1.log" >&2
    return 0
  fi
  return 1
}

start_etcd() {
  check_port_free etcd "$ETCD_CLIENT_PORT"
  check_port_free etcd "$ETCD_PEER_PORT"
  launch etcd "$CP_BIN_DIR/etcd" \
    --name tp-local \
    --data-dir "$CP_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "tp-local=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state new \
    --quota-backend-bytes $((2 * 1024 * 1024 * 1024)) \
    --auto-compaction-mode periodic --auto-compaction-retention 1h \
    --log-level warn
  etcd_ok() { died etcd && exit 1; curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
  wait_for "etcd health" "$CP_START_TIMEOUT" etcd_ok
}

start_apiserver() {
  check_port_free kube-apiserver "$KUBE_APISERVER_PORT" "$HOST_ADDR"
  # Binds and advertises HOST_ADDR: the `kubernetes` Service's endpoint, reachable from pods.
  # Node,RBAC + NodeRestriction: the real node's kubelet (system:node:tp-node) may touch only its
  # own Node and its pods. Aggregated APIs (metrics-server) and webhooks are reached at their
  # endpoints (pod IPs), not through a ClusterIP.
  launch kube-apiserver "$CP_BIN_DIR/kube-apiserver" \
    --bind-address="$HOST_ADDR" \
    --advertise-address="$HOST_ADDR" \
    --secure-port="$KUBE_APISERVER_PORT" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --cert-dir="$CP_DIR/apiserver-certs" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --token-auth-file="$PKI/tokens.csv" \
    --anonymous-auth=true \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction,PodNodeSelector,PodTolerationRestriction \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --enable-aggregator-routing=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.96.0.0/16 \
    --service-node-port-range=30000-32767 \
    --allow-privileged=true \
    --audit-policy-file="$CP_DIR/audit-policy.yaml" \
    --audit-log-path="$AUDIT_LOG" \
    --audit-log-format=json \
    --audit-log-maxsize=100 \
    --audit-log-maxbackup=1 \
    --max-requests-inflight=800 \
    --max-mutating-requests-inflight=400 \
    --v=1
  api_ok() { died kube-apiserver && exit 1; apiserver_ready; }
  wait_for "kube-apiserver /readyz" "$CP_START_TIMEOUT" api_ok
}

start_controller_manager() {
  check_port_free kube-controller-manager "$KUBE_CONTROLLER_MANAGER_PORT"
  # Default controllers ("*": deployments, replicasets, garbage collector, HPA, namespace,
  # serviceaccount-token, node lifecycle, ...). No cloud provider, so the cloud controllers
  # (service LB, routes, cloud node lifecycle) stay off.
  launch kube-controller-manager "$CP_BIN_DIR/kube-controller-manager" \
    --kubeconfig="$CP_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$CP_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$CP_DIR/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$KUBE_CONTROLLER_MANAGER_PORT" \
    --cert-dir="$CP_DIR/controller-manager-certs" \
    --controllers='*' \
    --leader-elect=false \
    --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" \
    --cluster-signing-key-file="$PKI/ca.key" \
    --use-service-account-credentials=false \
    --service-cluster-ip-range=10.96.0.0/16 \
    --allocate-node-cidrs=true \
    --cluster-cidr="$CLUSTER_CIDR" \
    --node-cidr-mask-size=24 \
    --horizontal-pod-autoscaler-sync-period=5s \
    --kube-api-qps=100 \
    --kube-api-burst=200 \
    --v=1
}

start_scheduler() {
  check_port_free kube-scheduler "$KUBE_SCHEDULER_PORT"
  launch kube-scheduler "$CP_BIN_DIR/kube-scheduler" \
    --config="$CP_DIR/scheduler-config.yaml" \
    --authentication-kubeconfig="$CP_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$CP_DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$KUBE_SCHEDULER_PORT" \
    --cert-dir="$CP_DIR/scheduler-certs" \
    --v=1
}

NODES=(kwok-node-0 kwok-node-1 kwok-node-2)

# The fake nodes carry the hash of stack/kwok/nodes.yaml; nodes made from an older file are
# recreated (podCIDR is immutable, and status such as addresses is set only on create). Pods bound
# to a recreated node are removed by the pod garbage collector.
apply_kwok_nodes() {
  local hash stale
  hash=$(sha256sum "$KWOK_CONF_DIR/nodes.yaml" | cut -c1-16)
  stale=$(kubectl_admin get nodes "${NODES[@]}" --ignore-not-found \
    -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.annotations.ticketplatform\.local/nodes-hash}{"\n"}{end}' \
    | awk -F= -v h="$hash" '$2 != h {print $1}')
  if [[ -n "$stale" ]]; then
    say "recreating fake nodes made from an older stack/kwok/nodes.yaml: $(echo $stale)"
    kubectl_admin delete node $stale --wait=true >/dev/null
  fi
  say "creating the fake nodes"
  kubectl_admin apply -f "$KWOK_CONF_DIR/nodes.yaml" >/dev/null
  kubectl_admin annotate --overwrite node "${NODES[@]}" "ticketplatform.local/nodes-hash=$hash" >/dev/null
}

# kwok only acts on a node while it holds the node's Lease (kube-node-lease), and each kwok process
# has a new identity (hostname_uuid). A restarted kwok would wait for the old holder's Lease to
# expire (40s) before touching pods; the old holder is gone, so its Leases are deleted instead.
start_kwok() {
  if alive kwok; then
    [[ -f "$PIDS/kwok.id" ]] && return 0
    stop_components kwok # its identity was not recorded (started by an older version of this script)
  fi
  kubectl_admin -n kube-node-lease delete lease "${NODES[@]}" --ignore-not-found >/dev/null
  rm -f "$PIDS/kwok.id"
  local log_start=0
  [[ -f "$LOGS/kwok.log" ]] && log_start=$(stat -c %s "$LOGS/kwok.log")
  # No --server-address/--node-port: the fake kubelet API (logs/exec) is not needed.
  launch kwok "$CP_BIN_DIR/kwok" \
    --kubeconfig="$ADMIN_KUBECONFIG" \
    --config="$KWOK_CONF_DIR/kwok.yaml" \
    --config="$KWOK_CONF_DIR/stages.yaml" \
    --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake
  kwok_id() {
    died kwok && exit 1
    local id
    id=$(tail -c +$((log_start + 1)) "$LOGS/kwok.log" | grep -o -m1 '"id":"[^"]*"' | cut -d'"' -f4)
    [[ -n "$id" ]] && echo "$id" > "$PIDS/kwok.id"
  }
  wait_for "kwok to log its identity" "$CP_START_TIMEOUT" kwok_id
}

nodes_held_by_kwok() { # every fake node's Lease is held by the running kwok
  [[ -f "$PIDS/kwok.id" ]] || return 1
  local id holders
  id=$(cat "$PIDS/kwok.id")
  holders=$(kubectl_admin -n kube-node-lease get lease "${NODES[@]}" \
    -o jsonpath='{range .items[*]}{.spec.holderIdentity}{"\n"}{end}' 2>/dev/null) || return 1
  [[ "$(grep -cxF "$id" <<<"$holders")" -eq ${#NODES[@]} ]]
}

component_healthy() { # the secure port's /healthz of the controller-manager or the scheduler
  curl -sk --max-time 2 "https://127.0.0.1:$1/healthz" 2>/dev/null | grep -qx ok
}

all_up() {
  local c
  for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
  apiserver_ready || return 1
  [[ "$(ready_nodes)" -ge 3 ]] && nodes_held_by_kwok
}

cmd_start() {
  if all_up; then
    say "control plane already up ($APISERVER_URL, 3 nodes Ready)"
    return 0
  fi
  local t0=$SECONDS
  mkdir -p "$CP_DIR" "$LOGS" "$PIDS" "$CP_DIR/etcd"
  # One start at a time (parallel pytest workers, two shells): the second waits, then finds it up.
  exec 9>"$CP_DIR/start.lock"
  flock 9
  if all_up; then
    say "control plane already up ($APISERVER_URL, 3 nodes Ready)"
    return 0
  fi
  "$STACK_DIR/build-controlplane.sh"
  bash "$STACK_DIR/hostnet.sh" up
  chmod 700 "$CP_DIR/etcd"
  gen_pki
  write_configs
  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  apply_kwok_nodes
  start_kwok
  kcm_ok() { died kube-controller-manager && exit 1; component_healthy "$KUBE_CONTROLLER_MANAGER_PORT"; }
  sched_ok() { died kube-scheduler && exit 1; component_healthy "$KUBE_SCHEDULER_PORT"; }
  nodes_ok() { died kwok && exit 1; [[ "$(ready_nodes)" -ge 3 ]] && nodes_held_by_kwok; }
  wait_for "kube-controller-manager /healthz" "$CP_START_TIMEOUT" kcm_ok
  wait_for "kube-scheduler /healthz" "$CP_START_TIMEOUT" sched_ok
  wait_for "3 Ready nodes managed by kwok" "$CP_START_TIMEOUT" nodes_ok
  # The default ServiceAccount is what lets pods be created in a namespace; wait for its controller.
  sa_ok() { kubectl_admin -n default get serviceaccount default >/dev/null 2>&1; }
  wait_for "the default ServiceAccount" "$CP_START_TIMEOUT" sa_ok
  say "RBAC: the ticketplatform-operator user gets the operator's ClusterRole (operator/deploy/rbac.yaml)"
  kubectl_admin apply --server-side --force-conflicts -f "$REPO_DIR/operator/deploy/namespace.yaml" -f "$REPO_DIR/operator/deploy/rbac.yaml" \
    -f "$STACK_DIR/operator-user-rbac.yaml" >/dev/null
  # An aggregated API whose server is not running blocks every namespace deletion (the namespace
  # controller must discover all groups). metrics-server runs only with the node, and
  # `stack/addons.sh apply` registers its APIService again, so a fresh start drops the stale one.
  kubectl_admin delete apiservice v1beta1.metrics.k8s.io --ignore-not-found >/dev/null
  say "control plane up in $((SECONDS - t0))s: $APISERVER_URL"
  say "  eval \"\$($0 env)\"   # KUBECONFIG=$ADMIN_KUBECONFIG"
}

stop_components() { # stop_components <name>...: TERM them together, wait, KILL after 20s
  local c pid n pids=()
  for c in "$@"; do
    pid=$(pid_of "$c")
    if [[ -n "$pid" ]] && alive "$c"; then
      say "stopping $c (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      STOPPED=1
    fi
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    for ((n = 0; n < 200; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid did not stop in 20s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  done
  for c in "$@"; do rm -f "$PIDS/$c.pid"; done
}

cmd_stop() {
  STOPPED=0
  # kwok and the controllers first, then the apiserver, etcd last.
  stop_components kwok kube-scheduler kube-controller-manager
  stop_components kube-apiserver
  stop_components etcd
  ((STOPPED)) && say "control plane stopped" || say "control plane was not running"
}

cmd_status() {
  local c ok=0
  for c in "${COMPONENTS[@]}"; do
    if alive "$c"; then
      printf '%-24s up (pid %s)\n' "$c" "$(pid_of "$c")"
    else
      printf '%-24s down\n' "$c"; ok=1
    fi
  done
  if apiserver_ready; then
    printf '%-24s ready at %s\n' "apiserver /readyz" "$APISERVER_URL"
    printf '%-24s %s of 3 Ready\n' "kwok nodes" "$(ready_nodes)"
    [[ "$(ready_nodes)" -ge 3 ]] || ok=1
    if nodes_held_by_kwok; then
      printf '%-24s held by the running kwok\n' "node leases"
    else
      printf '%-24s not (yet) held by the running kwok\n' "node leases"; ok=1
    fi
  else
    printf '%-24s not ready\n' "apiserver /readyz"; ok=1
  fi
  return $ok
}

cmd_env() {
  printf 'export KUBECONFIG=%q\n' "$ADMIN_KUBECONFIG"
  printf 'export PATH=%q:"$PATH"\n' "$CP_BIN_DIR"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
