# Names and paths of the real node, shared by stack/node.sh and stack/build-node.sh. Source it after
# stack/lib.sh; it defines variables and pure helpers only.

NODE_NAME=tp-node
# kubelet and kube-proxy of the pinned Kubernetes version (built by stack/build-node.sh).
NODE_BIN_DIR="$TP_CACHE_DIR/node/k8s-$K8S_VERSION/bin"
# The sandbox image every pod starts with (containerd's sandbox_image), built locally.
PAUSE_IMAGE=localhost/pause:3.10
# Keyed by the hash of its inputs: the C source and the compiler.
_pause_key=$( { cat "$STACK_DIR/node/pause.c"; gcc --version 2>/dev/null | head -n1; echo "$PAUSE_IMAGE"; } | sha256sum | cut -c1-16)
NODE_PAUSE_ARCHIVE="$TP_CACHE_DIR/images/pause-3.10-$_pause_key.oci.tar"
unset _pause_key

# Addresses (shared constants, see the team brief): pods 10.244.0.0/16 with this node's /24 on the
# bridge, Services 10.96.0.0/16, CoreDNS at 10.96.0.10.
CLUSTER_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
POD_GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
CLUSTER_DNS=10.96.0.10
CNI_BRIDGE=tp-cni0

# containerd: Debian's binary, our config and state; the socket path everyone uses.
CONTAINERD_SOCK=/run/containerd/containerd.sock
CONTAINERD_NAMESPACE=k8s.io
CNI_BIN_DIR=/usr/lib/cni

# Local ports of the node components (loopback unless HOST_ADDR is needed from the apiserver).
: "${KUBELET_PORT:=10250}" "${KUBELET_HEALTHZ_PORT:=10248}"
: "${KUBE_PROXY_HEALTHZ_PORT:=10256}" "${KUBE_PROXY_METRICS_PORT:=10249}"
: "${CONTAINERD_STREAM_PORT:=10010}"

NODE_DIR="$TP_RUN_DIR/node"

# A busybox image (Debian's busybox-static) for tests that need a shell and an HTTP server in a pod.
BUSYBOX_IMAGE=localhost/tp-busybox:1
busybox_version() { dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo none; }
NODE_BUSYBOX_ARCHIVE="$TP_CACHE_DIR/images/tp-busybox-$(busybox_version | tr -c 'A-Za-z0-9.\n' '_').oci.tar"
