"""The real node tp-node (stack/node.sh): kubelet + containerd + CNI bridge + kube-proxy.

Real containers from a locally built image; every request goes to loopback, to HOST_ADDR or to a
pod of this machine, and every check reads a response body.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import yaml

from tests.fixtures.controlplane import ControlPlane, wait_until
from tests.fixtures.node import HOST_ADDR, NODE_NAME, Node

REPO_DIR = Path(__file__).resolve().parents[1]
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


def pinned(name: str) -> str:
    for line in (REPO_DIR / "stack" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned")


def apply(cp: ControlPlane, namespace: str, *objects: dict) -> None:
    cp.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def restricted_web_pod(name: str, image: str, labels: dict | None = None) -> dict:
    """busybox httpd serving "hello from <pod name>", under the restricted pod security profile."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "web",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "/bin/sh", "-c",
                        'echo "hello from $(hostname)" > /srv/index.html; echo "serving $(hostname)"; '
                        "exec httpd -f -vv -p 8080 -h /srv",
                    ],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "readinessProbe": {
                        "httpGet": {"path": "/index.html", "port": "http"},
                        "periodSeconds": 1,
                    },
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"memory": "32Mi"},
                    },
                    "volumeMounts": [{"name": "srv", "mountPath": "/srv"}],
                }
            ],
            "volumes": [{"name": "srv", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
        },
    }


def pod_ready(cp: ControlPlane, namespace: str, name: str) -> dict | None:
    pod = cp.kubectl_json("get", "pod", name, "-n", namespace)
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )
    return pod if ready else None


def wait_ready(cp: ControlPlane, namespace: str, name: str) -> dict:
    return wait_until(
        lambda: pod_ready(cp, namespace, name),
        120,
        message=lambda: f"pod {name} Ready:\n"
        + cp.kubectl("describe", "pod", name, "-n", namespace, check=False).stdout[-3000:],
    )


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (local addresses only)
        return resp.read().decode()


def test_node_is_registered_and_ready(node: Node) -> None:
    cp = node.controlplane
    obj = cp.kubectl_json("get", "node", NODE_NAME)
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Ready"] == "True", obj["status"]["conditions"]
    info = obj["status"]["nodeInfo"]
    assert info["kubeletVersion"] == pinned("K8S_VERSION")
    assert info["kubeProxyVersion"] in ("", pinned("K8S_VERSION"))
    assert info["containerRuntimeVersion"].startswith("containerd://1.6.")
    addresses = {a["type"]: a["address"] for a in obj["status"]["addresses"]}
    assert addresses["InternalIP"] == HOST_ADDR
    assert obj["spec"]["podCIDR"] == "10.244.0.0/24"
    assert not obj["spec"].get("taints"), obj["spec"].get("taints")
    # apiserver -> kubelet over TLS, the kubelet's serving certificate verified against the CA.
    assert cp.kubectl("get", "--raw", f"/api/v1/nodes/{NODE_NAME}/proxy/healthz").stdout == "ok"
    # The sandbox image is the locally built one.
    assert "localhost/pause:3.10" in node.image_names()


def test_restricted_pod_runs_and_serves(node: Node, busybox_image: str, real_node_namespace: str) -> None:
    cp = node.controlplane
    apply(cp, real_node_namespace, restricted_web_pod("web", busybox_image))
    pod = wait_ready(cp, real_node_namespace, "web")
    assert pod["spec"]["nodeName"] == NODE_NAME
    ip = pod["status"]["podIP"]
    assert ip.startswith("10.244.0."), ip
    # The readiness probe is real: the kubelet got the page that the host now gets too.
    assert http_get(f"http://{ip}:8080/index.html") == "hello from web\n"

    # kubectl exec: the container's identity and confinement, as the kernel reports them.
    def exec_(*cmd: str) -> subprocess.CompletedProcess[str]:
        return cp.kubectl("exec", "-n", real_node_namespace, "web", "--", *cmd, check=False)

    ident = exec_("id")
    assert ident.returncode == 0, ident.stderr
    assert ident.stdout.startswith("uid=10001 gid=10001"), ident.stdout
    status = exec_("cat", "/proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapEff"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"  # filter mode: RuntimeDefault
    readonly = exec_("touch", "/probe")
    assert readonly.returncode != 0 and "Read-only file system" in readonly.stderr + readonly.stdout

    # kubectl logs: the container's own output, through the kubelet.
    logs = cp.kubectl("logs", "-n", real_node_namespace, "web").stdout
    assert "serving web" in logs


def test_services_answer_on_cluster_ip_and_loopback_node_port(
    node: Node, busybox_image: str, real_node_namespace: str
) -> None:
    cp = node.controlplane
    apply(cp, real_node_namespace, restricted_web_pod("svc-backend", busybox_image, labels={"app": "svc-test"}))
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc-test"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "svc-test"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }
    apply(cp, real_node_namespace, svc)
    wait_ready(cp, real_node_namespace, "svc-backend")
    got = cp.kubectl_json("get", "service", "svc-test", "-n", real_node_namespace)
    cluster_ip, node_port = got["spec"]["clusterIP"], got["spec"]["ports"][0]["nodePort"]
    assert cluster_ip.startswith("10.96.")

    def answers(url: str) -> str | None:
        try:
            return http_get(url)
        except OSError:
            return None

    # kube-proxy programs the rules a moment after the endpoint is Ready; until then the request
    # fails on this machine (the Service range routes to the pod bridge).
    expected = "hello from svc-backend\n"
    assert wait_until(lambda: answers(f"http://{cluster_ip}/index.html"), 60,
                      message=f"ClusterIP {cluster_ip}") == expected
    assert wait_until(lambda: answers(f"http://127.0.0.1:{node_port}/index.html"), 60,
                      message=f"NodePort 127.0.0.1:{node_port}") == expected


def test_pod_reaches_the_apiserver_through_the_kubernetes_service(
    node: Node, busybox_image: str, real_node_namespace: str
) -> None:
    cp = node.controlplane
    apply(cp, real_node_namespace, restricted_web_pod("client", busybox_image))
    wait_ready(cp, real_node_namespace, "client")
    # Plain HTTP to the apiserver's TLS port: Go's server answers with a recognisable 400 body.
    # 10.96.0.1:443 -> (kube-proxy) HOST_ADDR:16443.
    out = cp.kubectl(
        "exec", "-n", real_node_namespace, "client", "--", "sh", "-c",
        r"printf 'GET /healthz HTTP/1.0\r\n\r\n' | nc -w 5 10.96.0.1 443",
        check=False,
    )
    assert "Client sent an HTTP request to an HTTPS server" in out.stdout, out.stdout + out.stderr


def test_pods_land_on_kwok_nodes_only_with_the_toleration(
    node: Node, busybox_image: str, real_node_namespace: str
) -> None:
    cp = node.controlplane

    def pause_pod(name: str, kwok: bool, tolerate: bool) -> dict:
        spec: dict = {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": busybox_image, "command": ["sleep", "3600"],
                            "securityContext": {"runAsUser": 10001}}],
        }
        if kwok:
            spec["nodeSelector"] = {"type": "kwok"}
        if tolerate:
            spec["tolerations"] = [KWOK_TOLERATION]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}

    apply(cp, real_node_namespace, pause_pod("plain", False, False), pause_pod("kwok-untolerated", True, False),
          pause_pod("kwok-tolerated", True, True))

    def node_of(name: str) -> str | None:
        return cp.kubectl_json("get", "pod", name, "-n", real_node_namespace)["spec"].get("nodeName")

    assert wait_until(lambda: node_of("plain"), 60, message="pod plain scheduled") == NODE_NAME
    assert wait_until(lambda: node_of("kwok-tolerated"), 60, message="pod kwok-tolerated scheduled").startswith("kwok-node-")

    def unschedulable_reason() -> str | None:
        pod = cp.kubectl_json("get", "pod", "kwok-untolerated", "-n", real_node_namespace)
        for c in pod["status"].get("conditions", []):
            if c["type"] == "PodScheduled" and c["status"] == "False":
                return c.get("message", "")
        return None

    message = wait_until(unschedulable_reason, 60, message="kwok-untolerated reported unschedulable")
    # The three kwok nodes refuse it for their taint, the real node for the selector.
    assert "3 node(s) had untolerated taint(s)" in message, message
    assert node_of("kwok-untolerated") is None


def test_a_missing_image_is_never_fetched_from_outside(node: Node, real_node_namespace: str) -> None:
    """containerd's registry traffic goes to a closed loopback proxy: a pull fails on this machine."""
    cp = node.controlplane
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "absent"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/ticketplatform/absent:0",
                                 "imagePullPolicy": "IfNotPresent"}]},
    }
    apply(cp, real_node_namespace, pod)

    def pull_failure() -> str | None:
        events = cp.kubectl_json("get", "events", "-n", real_node_namespace,
                                 "--field-selector", "involvedObject.name=absent")["items"]
        for e in events:
            if e["reason"] == "Failed" and "pull" in e["message"].lower():
                return e["message"]
        return None

    message = wait_until(pull_failure, 60, message="the pull failure event")
    assert "proxyconnect tcp: dial tcp 127.0.0.1:9" in message, message


def test_pod_traffic_leaving_the_machine_is_dropped(node: Node) -> None:
    """The egress guard (mangle FORWARD, before kube-proxy's filter rules): pod <-> pod passes,
    everything else forwarded from or to the pod bridge is dropped."""
    def rules(chain: str) -> list[str]:
        out = subprocess.run(["iptables", "-w", "-t", "mangle", "-S", chain], capture_output=True,
                             text=True, check=True).stdout.splitlines()
        return [r for r in out if r.startswith("-A ")]

    assert rules("FORWARD")[0] == "-A FORWARD -j TP-NODE-FORWARD"
    assert rules("TP-NODE-FORWARD") == [
        "-A TP-NODE-FORWARD -i tp-cni0 -o tp-cni0 -j RETURN",
        "-A TP-NODE-FORWARD -i tp-cni0 -j DROP",
        "-A TP-NODE-FORWARD -o tp-cni0 -j DROP",
    ]
    # Nothing for the pod or Service ranges falls through to the default route.
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
    assert "blackhole 10.244.0.0/16" in routes
    assert "10.96.0.0/16 dev tp-cni0" in routes
    assert "10.244.0.0/24 dev tp-cni0" in routes
