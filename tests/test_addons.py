"""Cluster add-ons on the real node (stack/addons.sh): CoreDNS answers cluster names and nothing
else, metrics-server feeds real CPU and memory figures to the metrics API and `kubectl top`.

DNS is queried from the host at the kube-dns ClusterIP: the same path a pod's resolver takes
(Service -> kube-proxy DNAT -> CoreDNS pod). The Service range is routed to the node's bridge
(checked first), so a query can only ever reach a pod of this machine, never an outside resolver.
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import subprocess
import uuid

import pytest

from tests.fixtures.addons import CLUSTER_DNS_IP
from tests.fixtures.controlplane import ControlPlane, wait_until

NODE_NAME = "tp-node"
CNI_BRIDGE = "tp-cni0"

RCODE_NOERROR = 0
RCODE_NXDOMAIN = 3
TYPE_A = 1


# ------------------------------------------------------------------------- a tiny DNS client ----
def dns_query(
    name: str, server: str = CLUSTER_DNS_IP, port: int = 53, qtype: int = TYPE_A
) -> tuple[int, list[str]]:
    """One UDP query (no recursion games, stdlib only): returns (rcode, A records as strings)."""
    qid = random.randrange(1 << 16)
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD set, one question
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = header + question + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(packet, (server, port))
        data, _ = sock.recvfrom(4096)
    rid, flags, qdcount, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    assert rid == qid, "reply id does not match the query"
    offset = 12
    for _ in range(qdcount):
        offset = _skip_name(data, offset) + 4
    answers = []
    for _ in range(ancount):
        offset = _skip_name(data, offset)
        rtype, _, _, rdlength = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        if rtype == TYPE_A:
            answers.append(socket.inet_ntoa(data[offset : offset + rdlength]))
        offset += rdlength
    return flags & 0xF, answers


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:  # compression pointer ends the name
            return offset + 2
        offset += 1 + length


def dns_query_retrying(name: str) -> tuple[int, list[str]]:
    """kube-proxy may still be programming the Service right after the add-ons came up; a lost
    UDP packet is retried, a reply is returned as it is."""

    def attempt():
        try:
            return dns_query(name)
        except socket.timeout:
            return None

    return wait_until(attempt, timeout=60, interval=1, message=f"a DNS reply for {name}")


@pytest.fixture(scope="module")
def dns(addons: ControlPlane) -> ControlPlane:
    # Before sending anything to a Service address: the kernel must route it to the node's bridge
    # (or drop it), never through a gateway, so an unprogrammed ClusterIP cannot leave the machine.
    route = subprocess.run(
        ["ip", "route", "get", CLUSTER_DNS_IP], capture_output=True, text=True
    )
    assert route.returncode != 0 or (
        f"dev {CNI_BRIDGE}" in route.stdout and " via " not in route.stdout
    ), f"route to {CLUSTER_DNS_IP} may leave the machine: {route.stdout}{route.stderr}"
    return addons


# --------------------------------------------------------------------------------- CoreDNS ----
def test_addons_run_as_hardened_pods_on_the_real_node(addons: ControlPlane) -> None:
    for label, image_repo in (("kube-dns", "localhost/coredns:"), ("metrics-server", "localhost/metrics-server:")):
        pods = addons.kubectl_json("get", "pods", "-n", "kube-system", "-l", f"k8s-app={label}")["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        assert running, f"no running {label} pod: {[p['status'] for p in pods]}"
        for pod in running:
            assert pod["spec"]["nodeName"] == NODE_NAME
            container = pod["spec"]["containers"][0]
            assert container["image"].startswith(image_repo)
            assert container["imagePullPolicy"] == "Never"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert ready["Ready"] == "True"
            # The kubelet started it from the image imported into containerd.
            status = pod["status"]["containerStatuses"][0]
            assert status["ready"] is True
            assert status["image"].startswith(image_repo), status
            assert "sha256:" in status["imageID"], status


def test_cluster_dns_resolves_service_names(dns: ControlPlane, namespace: str) -> None:
    kubernetes_ip = dns.kubectl_json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    rcode, answers = dns_query_retrying("kubernetes.default.svc.cluster.local")
    assert (rcode, answers) == (RCODE_NOERROR, [kubernetes_ip])

    # A Service created now is answered with its own ClusterIP (CoreDNS watches the API).
    name = f"dns-probe-{uuid.uuid4().hex[:6]}"
    dns.kubectl(
        "create", "service", "clusterip", name, "--tcp=80:8080", "-n", namespace
    )
    ip = dns.kubectl_json("get", "service", name, "-n", namespace)["spec"]["clusterIP"]
    fqdn = f"{name}.{namespace}.svc.cluster.local"
    assert wait_until(
        lambda: dns_query_retrying(fqdn) == (RCODE_NOERROR, [ip]),
        timeout=30,
        message=f"{fqdn} -> {ip}",
    )
    # A Service name that does not exist in the cluster zone: NXDOMAIN from the kubernetes plugin.
    assert dns_query_retrying(f"no-such-{name}.{namespace}.svc.cluster.local") == (RCODE_NXDOMAIN, [])


def test_cluster_dns_does_not_forward_names_outside_the_cluster(dns: ControlPlane) -> None:
    # Names that exist on the internet get NXDOMAIN from CoreDNS itself: nothing is forwarded.
    for name in ("example.com", "pypi.org", "kubernetes.io"):
        assert dns_query_retrying(name) == (RCODE_NXDOMAIN, []), name
    corefile = dns.kubectl_json("get", "configmap", "coredns", "-n", "kube-system")["data"]["Corefile"]
    plugins = {line.split()[0] for line in corefile.splitlines() if line.strip()}
    assert not plugins & {"forward", "proxy", "grpc"}, corefile


def test_a_pod_resolves_service_names_and_nothing_else(
    addons: ControlPlane, busybox_image: str, real_node_namespace: str
) -> None:
    """From inside a pod, with the resolv.conf the kubelet writes (clusterDNS, search path)."""
    script = (
        "cat /etc/resolv.conf; echo '--- service'; nslookup kubernetes.default.svc.cluster.local;"
        " echo '--- external'; nslookup example.com; echo '--- done'"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "dns-client"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534},
            "containers": [
                {
                    "name": "client",
                    "image": busybox_image,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    namespace = real_node_namespace
    addons.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))

    def finished():
        phase = addons.kubectl_json("get", "pod", "dns-client", "-n", namespace)["status"].get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(finished, timeout=120, interval=1, message="the dns-client pod to finish") == "Succeeded"
    out = addons.kubectl("logs", "dns-client", "-n", namespace).stdout
    resolv, rest = out.split("--- service", 1)
    service, rest = rest.split("--- external", 1)
    external = rest.split("--- done", 1)[0]
    assert f"nameserver {CLUSTER_DNS_IP}" in resolv
    assert f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local" in resolv
    kubernetes_ip = addons.kubectl_json("get", "service", "kubernetes", "-n", "default")["spec"]["clusterIP"]
    assert re.search(rf"Address:\s*{re.escape(kubernetes_ip)}\s*$", service, re.M), out
    # No answer for a name outside the cluster: CoreDNS itself said NXDOMAIN.
    assert "can't find example.com: NXDOMAIN" in external, out
    addresses = re.findall(r"^Address:\s*(\S+)", external, re.M)
    assert addresses and all(a == f"{CLUSTER_DNS_IP}:53" for a in addresses), out  # the server's only


# -------------------------------------------------------------------------- metrics-server ----
def _cpu_millicores(quantity: str) -> float:
    """A CPU quantity from the metrics API (n, u, m suffixes or whole cores) in millicores."""
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0, "": 1000.0}
    number, suffix = re.fullmatch(r"([0-9.]+)([num]?)", quantity).groups()
    return float(number) * units[suffix]


def _memory_bytes(quantity: str) -> float:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1e3, "M": 1e6, "G": 1e9, "": 1}
    number, suffix = re.fullmatch(r"([0-9.]+)([KMG]i?|k)?", quantity).groups()
    return float(number) * units[suffix or ""]


def test_kubectl_top_nodes_shows_real_usage_of_the_real_node(addons: ControlPlane) -> None:
    def top_line():
        proc = addons.kubectl("top", "nodes", NODE_NAME, "--no-headers", check=False)
        return proc.stdout.split() if proc.returncode == 0 else None

    # metrics-server reports a node once it has two scrapes (a resolution apart).
    fields = wait_until(top_line, timeout=120, interval=2, message=f"kubectl top nodes {NODE_NAME}")
    # NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)
    assert fields[0] == NODE_NAME
    assert re.fullmatch(r"\d+m", fields[1]) and int(fields[1][:-1]) > 0, fields
    assert re.fullmatch(r"\d+Mi", fields[3]) and int(fields[3][:-2]) > 0, fields

    raw = json.loads(addons.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{NODE_NAME}").stdout)
    assert raw["metadata"]["name"] == NODE_NAME
    assert _cpu_millicores(raw["usage"]["cpu"]) > 0
    # The node runs kubelet-managed pods: its working set is well above a few MiB.
    assert _memory_bytes(raw["usage"]["memory"]) > 16 * 1024**2


def test_metrics_api_lists_pod_metrics(addons: ControlPlane) -> None:
    def coredns_metrics():
        proc = addons.kubectl(
            "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods", check=False
        )
        if proc.returncode != 0:
            return None
        items = json.loads(proc.stdout)["items"]
        return [i for i in items if i["metadata"]["name"].startswith("coredns-")] or None

    items = wait_until(coredns_metrics, timeout=120, interval=2, message="pod metrics for coredns")
    containers = {c["name"]: c["usage"] for c in items[0]["containers"]}
    assert set(containers) == {"coredns"}
    # CoreDNS's working set is a few MiB to tens of MiB; CPU may round to 0 when idle.
    assert 1024**2 < _memory_bytes(containers["coredns"]["memory"]) < 128 * 1024**2
    assert _cpu_millicores(containers["coredns"]["cpu"]) >= 0

    top = addons.kubectl("top", "pods", "-n", "kube-system", "--no-headers").stdout
    names = {line.split()[0] for line in top.splitlines() if line.strip()}
    assert any(n.startswith("coredns-") for n in names), top
    assert any(n.startswith("metrics-server-") for n in names), top
