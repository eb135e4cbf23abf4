# Config files of the real node, rendered from the variables of stack/node.sh (source it there).
# One function per file; each writes atomically so a running component never reads half a file.

_write() { # _write <file> <mode>: stdin to file, atomically
  local tmp="$1.tmp.$$"
  cat > "$tmp"; chmod "$2" "$tmp"; mv "$tmp" "$1"
}

render_containerd_config() {
  _write "$NODE_DIR/containerd/config.toml" 0644 <<EOF
# containerd for the real node (stack/node.sh). Images and snapshots persist under root; all
# runtime state (shims, sockets, task bundles) is under /run/containerd and is removed at stop.
version = 2
root = "$CONTAINERD_ROOT"
state = "/run/containerd"
# The VM's root lacks CAP_SYS_RESOURCE: never try to lower oom_score_adj.
oom_score = 0
[grpc]
  address = "$CONTAINERD_SOCK"
[debug]
  level = "warn"
[plugins."io.containerd.grpc.v1.cri"]
  # Built locally (stack/build-node.sh): no registry is reachable.
  sandbox_image = "$PAUSE_IMAGE"
  # exec/attach/port-forward streams, proxied by the kubelet; loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "$CONTAINERD_STREAM_PORT"
  # Non-root pods may bind ports below 1024 (e.g. :53, :80) and ping.
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # REQUIRED here: without it runc fails "failed to update /proc/self/oom_score_adj: Permission
  # denied" (every sandbox: "can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # kubelet's cgroupDriver is cgroupfs (the VM has cgroup v1 and no systemd).
        SystemdCgroup = false
EOF
}

render_cni_config() {
  # bridge + host-local on this node's /24, portmap for hostPort. No ipMasq: pod traffic never
  # leaves the machine (TP-NODE-FORWARD drops it), so there is nothing to masquerade.
  _write "$NODE_DIR/cni/net.d/10-tp-node.conflist" 0644 <<EOF
{
  "cniVersion": "1.0.0",
  "name": "tp-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$NODE_DIR/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

render_kubeconfig() { # render_kubeconfig <file> <cert> <key>
  _write "$1" 0600 <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ticketplatform-local
  cluster:
    server: $APISERVER_URL
    certificate-authority: $PKI/ca.crt
users:
- name: node-component
  user:
    client-certificate: $2
    client-key: $3
contexts:
- name: default
  context: {cluster: ticketplatform-local, user: node-component}
current-context: default
EOF
}

render_kubelet_config() {
  _write "$NODE_DIR/kubelet/config.yaml" 0644 <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The VM has cgroup v1 (plus a cgroup2 "unified" mount) that cannot be changed from inside;
# 1.35 refuses v1 unless told otherwise (KEP-5573). No systemd, so cgroupfs.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# The kubelet API (logs, exec, metrics) on HOST_ADDR, reachable from the apiserver and from pods
# (metrics-server), never on 0.0.0.0.
address: $HOST_ADDR
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $NODE_PKI/kubelet-serving.crt
tlsPrivateKeyFile: $NODE_PKI/kubelet-serving.key
serverTLSBootstrap: false
rotateCertificates: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$CLUSTER_DNS]
resolvConf: /etc/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
failSwapOn: false
# kubelet sets kernel.panic, kernel.panic_on_oops and vm.overcommit_memory (recorded at start and
# restored at stop); with protectKernelDefaults it would refuse to start instead.
protectKernelDefaults: false
serializeImagePulls: false
maxPods: 110
# Locally built images cannot be pulled again: never garbage-collect images.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "2%"
  imagefs.available: "2%"
  nodefs.inodesFree: "2%"
EOF
}

render_kube_proxy_config() {
  _write "$NODE_DIR/kube-proxy/config.yaml" 0644 <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $NODE_DIR/kube-proxy/kubeconfig
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $CLUSTER_CIDR
detectLocalMode: ClusterCIDR
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
# NodePorts answer on loopback only (the UI URL is http://127.0.0.1:<nodePort>/); kube-proxy sets
# net.ipv4.conf.all.route_localnet=1 for that (recorded at start and restored at stop).
nodePortAddresses: ["127.0.0.0/8"]
iptables:
  localhostNodePorts: true
conntrack:
  # 0: leave the host's conntrack table size and timeouts as they are.
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}
