"""spec.placement decides where every pod runs: the local example's pods are all on the real node
(test_local_platform checks that); a platform that tolerates the kwok taint and selects the fake
nodes has every pod there, spread across them, with a per-service override and a
PodDisruptionBudget; nothing that lacks the toleration lands on a kwok node."""
from __future__ import annotations

import json
from collections import Counter
from typing import Any


from tests.fixtures.controlplane import ControlPlane, wait_until
from tests.fixtures.platform import LocalPlatform

REAL_NODE = "tp-node"
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


def _pods(cp: ControlPlane, namespace: str, instance: str) -> list[dict[str, Any]]:
    return cp.kubectl_json("-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/instance={instance}")["items"]


def test_placement_puts_a_platform_on_the_kwok_nodes(local_platform: LocalPlatform, real_node_namespace: str) -> None:
    cp = local_platform.cp
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"] for n in cp.kubectl_json("get", "nodes")["items"]}
    kwok = {name for name, labels in nodes.items() if labels.get("type") == "kwok"}
    assert len(kwok) >= 2 and REAL_NODE in nodes
    pinned = sorted(kwok)[0]
    spec = {
        "placement": {
            "nodeSelector": {"type": "kwok"},
            "tolerations": [KWOK_TOLERATION],
            "spread": {"nodes": "DoNotSchedule"},
            "podDisruptionBudget": {"maxUnavailable": 1},
        },
        "services": {
            "frontend": {"replicas": 2, "placement": {"nodeSelector": {"kubernetes.io/hostname": pinned}}},
            "event-catalog": {"replicas": 3},
        },
        "monitoring": {"enabled": False},
        "analytics": {"enabled": False},
    }
    manifest = {"apiVersion": "ticketing.io/v1alpha1", "kind": "TicketPlatform",
                "metadata": {"name": "fake", "namespace": real_node_namespace}, "spec": spec}
    cp.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def placed() -> list[dict[str, Any]] | None:
        pods = [p for p in _pods(cp, real_node_namespace, "fake") if p["spec"].get("nodeName")]
        counts = Counter(p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods)
        return pods if counts["frontend"] == 2 and counts["event-catalog"] == 3 else None

    pods = wait_until(placed, timeout=120, message="the fake platform's pods scheduled")
    for pod in pods:
        component = pod["metadata"]["labels"]["app.kubernetes.io/component"]
        node = pod["spec"]["nodeName"]
        assert node in kwok, f"{pod['metadata']['name']} ({component}) on {node}"
        if component == "frontend":
            assert node == pinned, f"frontend override ignored: on {node}"
    catalog_nodes = Counter(p["spec"]["nodeName"] for p in pods
                            if p["metadata"]["labels"]["app.kubernetes.io/component"] == "event-catalog")
    assert len(catalog_nodes) == 3, f"event-catalog not spread across nodes: {catalog_nodes}"

    pdb = cp.kubectl_json("-n", real_node_namespace, "get", "pdb", "fake-event-catalog")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["metadata"]["ownerReferences"][0]["name"] == "fake"

    # Nothing of the local platform (no toleration) is on a kwok node.
    assert all(p["spec"]["nodeName"] == REAL_NODE for p in local_platform.pods())
