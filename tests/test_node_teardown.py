"""`stack/node.sh stop` leaves the host as it found it, and the node starts again afterwards.

Runs after every other test module but test_make_up (tests/conftest.py RUN_LAST): it stops the node
with pods running on it.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.fixtures.controlplane import wait_until
from tests.fixtures.node import NODE_NAME, Node, run_node_sh
from tests.test_node import apply, restricted_web_pod, wait_ready

REPO_DIR = Path(__file__).resolve().parents[1]
RUN_DIR = Path(os.environ.get("TP_RUN_DIR", REPO_DIR / ".run"))
NODE_DIR = RUN_DIR / "node"
NODE_CHAINS = re.compile(r"^:(KUBE-|CNI-|TP-NODE-)\S*", re.M)


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def node_processes() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        exe = os.path.basename(argv[0].decode(errors="replace"))
        args = b" ".join(argv).decode(errors="replace")
        if exe in ("kubelet", "kube-proxy", "containerd") and str(NODE_DIR) in args:
            found.append(f"{pid} {args}")
        if exe.startswith("containerd-shim") and "/run/containerd/containerd.sock" in args:
            found.append(f"{pid} {args}")
    return found


def test_stop_leaves_nothing_behind_and_start_works_again(
    node: Node, busybox_image: str, real_node_namespace: str
) -> None:
    cp = node.controlplane
    # Something for the teardown to clean: a running pod behind a NodePort Service.
    apply(cp, real_node_namespace, restricted_web_pod("before", busybox_image, labels={"app": "before"}),
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "before"},
           "spec": {"type": "NodePort", "selector": {"app": "before"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    first = wait_ready(cp, real_node_namespace, "before")
    first_container = first["status"]["containerStatuses"][0]["containerID"]
    recorded = dict(
        line.split("=", 1) for line in (NODE_DIR / "sysctls.orig").read_text().splitlines() if "=" in line
    )
    assert {"kernel.panic", "vm.overcommit_memory", "net.ipv4.ip_forward",
            "net.ipv4.conf.all.route_localnet"} <= recorded.keys()
    # While the node runs, the kubelet and kube-proxy did change some of them.
    assert sh("sysctl", "-n", "net.ipv4.conf.all.route_localnet").strip() == "1"

    stop = run_node_sh("stop")
    assert stop.returncode == 0, stop.stderr

    assert node_processes() == []
    for save in ("iptables-save", "ip6tables-save"):
        chains = NODE_CHAINS.findall(sh(save))
        assert chains == [], f"{save}: {chains}"
        assert "TP-NODE" not in sh(save) and "KUBE-" not in sh(save) and "CNI-" not in sh(save)
    assert "tp-cni0" not in sh("ip", "-o", "link", "show")
    assert "veth" not in sh("ip", "-o", "link", "show")
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith((str(NODE_DIR) + "/", "/run/containerd", "/run/netns/cni-"))
    ]
    assert mounts == []
    assert not Path("/run/containerd").exists()
    leftovers = [str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods")]
    assert leftovers == []
    for key, value in recorded.items():
        assert sh("sysctl", "-n", key).strip() == value, key
    assert not (NODE_DIR / "sysctls.orig").exists()
    # While the control plane runs, the pod and Service ranges still never route off the machine.
    routes = sh("ip", "route", "show")
    assert "blackhole 10.244.0.0/16" in routes and "blackhole 10.96.0.0/16" in routes

    start = run_node_sh("start")
    assert start.returncode == 0, start.stderr
    ready = cp.kubectl(
        "get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"
    ).stdout
    assert ready == "True"
    # The pod from before is started again by the kubelet (same pod object, new sandbox): wait for
    # its new container, since the object still shows the old one as ready for a while.
    def restarted() -> dict | None:
        pod = cp.kubectl_json("get", "pod", "before", "-n", real_node_namespace)
        statuses = pod["status"].get("containerStatuses") or [{}]
        fresh = statuses[0].get("containerID") not in (None, "", first_container)
        return pod if fresh and statuses[0].get("ready") else None

    pod = wait_until(restarted, 120, message="the pod's new container, ready")
    assert pod["spec"]["nodeName"] == NODE_NAME
    out = cp.kubectl("exec", "-n", real_node_namespace, "before", "--", "cat", "/srv/index.html").stdout
    assert out == "hello from before\n"
    wait_until(lambda: "KUBE-SERVICES" in sh("iptables-save", "-t", "nat"), 60,
               message="kube-proxy's rules after the restart")
