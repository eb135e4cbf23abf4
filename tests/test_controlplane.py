"""The local control plane (stack/controlplane.sh) does what the operator's tests rely on.

Real etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok; nothing is mocked.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from tests.fixtures.controlplane import OPERATOR_USER, ControlPlane, wait_until

REPO_DIR = Path(__file__).resolve().parents[1]


def pinned(name: str) -> str:
    for line in (REPO_DIR / "stack" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in stack/versions.env")


def apply(cp: ControlPlane, *objects: dict, namespace: str | None = None) -> None:
    args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
    cp.kubectl(*args, input=yaml.safe_dump_all(objects))


# The fake nodes are tainted so that only pods meant for them land there (the real node tp-node
# runs everything else); these Deployments are meant for them.
KWOK_PLACEMENT = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
}


def deployment(name: str, replicas: int = 2) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    **KWOK_PLACEMENT,
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.local/ticketplatform/test:1",
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ]
                },
            },
        },
    }


def test_apiserver_reports_the_pinned_version(controlplane: ControlPlane) -> None:
    version = controlplane.kubectl_json("version")
    assert version["serverVersion"]["gitVersion"] == pinned("K8S_VERSION") == "v1.35.4"
    assert version["clientVersion"]["gitVersion"] == pinned("K8S_VERSION")
    # Served over TLS verified against the generated CA (the kubeconfig has no insecure flag).
    kubeconfig = yaml.safe_load(Path(controlplane.kubeconfig).read_text())
    cluster = kubeconfig["clusters"][0]["cluster"]
    # On HOST_ADDR (10.213.0.1 on lo), the address pods and the real node reach it at too.
    assert cluster["server"] == "https://10.213.0.1:16443"
    assert cluster.get("certificate-authority-data")
    assert not cluster.get("insecure-skip-tls-verify")
    readyz = controlplane.kubectl("get", "--raw", "/readyz")
    assert readyz.stdout.strip() == "ok"


def test_three_kwok_nodes_are_ready(controlplane: ControlPlane) -> None:
    def ready_nodes() -> list[dict]:
        nodes = controlplane.kubectl_json("get", "nodes")["items"]
        return [
            n
            for n in nodes
            if n["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]

    nodes = wait_until(lambda: len(ready_nodes()) >= 3 and ready_nodes(), 60, message="3 Ready nodes")
    assert len(nodes) == 3
    for node in nodes:
        allocatable = node["status"]["allocatable"]
        assert allocatable["cpu"] == "32"
        assert allocatable["memory"] == "256Gi"
        assert allocatable["pods"] in ("1000", "1k")
        # The node lifecycle controller removed the not-ready taint; only the fake-node taint is
        # left, so just pods that tolerate it land here.
        taints = node["spec"].get("taints", [])
        assert taints == [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}], taints
        # Their pod ranges and addresses are inside the blackholed 10.244.0.0/16, away from the
        # real node's 10.244.0.0/24.
        assert node["spec"]["podCIDR"].startswith("10.244.") and node["spec"]["podCIDR"] != "10.244.0.0/24"
        internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal and all(a.startswith("10.244.255.") for a in internal), internal


def test_deployment_gets_ready_pods(controlplane: ControlPlane, namespace: str) -> None:
    apply(controlplane, deployment("web", replicas=2), namespace=namespace)

    def ready_pods() -> list[dict]:
        pods = controlplane.kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
        return [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        ]

    pods = wait_until(
        lambda: len(ready_pods()) == 2 and ready_pods(),
        60,
        message=lambda: "2 Running+Ready pods; pods now:\n"
        + controlplane.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout,
    )
    # Scheduled by kube-scheduler onto kwok's nodes, given pod IPs from the nodes' CIDRs by kwok.
    for pod in pods:
        assert pod["spec"]["nodeName"].startswith("kwok-node-")
        assert pod["status"]["podIP"].startswith("10.244.")
    assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"

    def deployment_available() -> bool:
        status = controlplane.kubectl_json("get", "deployment", "web", "-n", namespace)["status"]
        return status.get("readyReplicas") == 2 and status.get("availableReplicas") == 2

    wait_until(deployment_available, 30, message="Deployment status readyReplicas=2")


def test_owned_configmap_is_garbage_collected(controlplane: ControlPlane, namespace: str) -> None:
    apply(controlplane, deployment("owner", replicas=1), namespace=namespace)
    owner_uid = controlplane.kubectl_json("get", "deployment", "owner", "-n", namespace)[
        "metadata"
    ]["uid"]
    owned = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "owned",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "owner",
                    "uid": owner_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {"k": "v"},
    }
    unowned = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unowned"}}
    apply(controlplane, owned, unowned, namespace=namespace)

    controlplane.kubectl("delete", "deployment", "owner", "-n", namespace)

    def configmap_gone() -> bool:
        proc = controlplane.kubectl("get", "configmap", "owned", "-n", namespace, check=False)
        return proc.returncode != 0 and "NotFound" in proc.stderr

    wait_until(configmap_gone, 60, message="the garbage collector to delete the owned ConfigMap")
    # Only the dependent went: the ConfigMap without an owner is still there.
    controlplane.kubectl("get", "configmap", "unowned", "-n", namespace)


def test_hpa_v2_round_trip(controlplane: ControlPlane, namespace: str) -> None:
    apply(controlplane, deployment("scaled", replicas=2), namespace=namespace)
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "scaled"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    apply(controlplane, hpa, namespace=namespace)
    got = controlplane.kubectl_json(
        "get", "horizontalpodautoscalers.v2.autoscaling", "scaled", "-n", namespace
    )
    assert got["apiVersion"] == "autoscaling/v2"
    assert got["spec"]["scaleTargetRef"]["name"] == "scaled"
    assert got["spec"]["minReplicas"] == 2
    assert got["spec"]["maxReplicas"] == 10
    assert got["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    # The HPA controller runs: with no metrics server it reports that it cannot get metrics.
    def hpa_conditions() -> list[dict]:
        obj = controlplane.kubectl_json("get", "hpa", "scaled", "-n", namespace)
        return obj.get("status", {}).get("conditions", [])

    conditions = wait_until(hpa_conditions, 60, message="the HPA controller to set conditions")
    assert {c["type"] for c in conditions} & {"AbleToScale", "ScalingActive"}


def test_crd_with_cel_validation_and_server_side_apply(controlplane: ControlPlane) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.test.ticketplatform.io"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "min": {"type": "integer"},
                                        "max": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.min <= self.max",
                                            "message": "min must not exceed max",
                                            "fieldPath": ".min",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    apply(controlplane, crd)
    try:
        controlplane.kubectl(
            "wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=60s"
        )

        def widget(lo: int, hi: int) -> str:
            return json.dumps(
                {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": "w", "namespace": "default"},
                    "spec": {"min": lo, "max": hi},
                }
            )

        def server_side_apply(body: str, manager: str, **kw):
            return controlplane.kubectl(
                "apply", "--server-side", f"--field-manager={manager}", "-f", "-", input=body, **kw
            )

        # Rejected by the CEL rule, with the rule's message and field.
        bad = server_side_apply(widget(5, 1), "test-a", check=False)
        assert bad.returncode != 0
        assert "min must not exceed max" in bad.stderr
        assert "spec.min" in bad.stderr

        server_side_apply(widget(1, 5), "test-a")
        # A second manager that sets the same field with a different value conflicts...
        conflict = server_side_apply(widget(1, 7), "test-b", check=False)
        assert conflict.returncode != 0
        assert "conflict" in conflict.stderr.lower()
        # ...and the managed fields name the first manager.
        obj = controlplane.kubectl_json(
            "get", f"widgets.{group}", "w", "-n", "default", "--show-managed-fields"
        )
        assert "test-a" in {m["manager"] for m in obj["metadata"]["managedFields"]}
        assert obj["spec"] == {"min": 1, "max": 5}
    finally:
        controlplane.kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def test_operator_identity_and_audited_writes(controlplane: ControlPlane, namespace: str) -> None:
    op = controlplane.operator_kubeconfig
    whoami = controlplane.kubectl_json("auth", "whoami", kubeconfig=op)
    assert whoami["status"]["userInfo"]["username"] == OPERATOR_USER

    offset = controlplane.audit_offset()
    # A write by the admin is not the operator's. The operator's user holds only the operator's
    # ClusterRole: HPAs it may create, patch and delete; ConfigMaps it may not touch.
    hpa = ("apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: %s}\n"
           "spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, maxReplicas: 2}\n")
    controlplane.kubectl("-n", namespace, "create", "-f", "-", input=hpa % "by-admin")
    controlplane.kubectl("-n", namespace, "create", "-f", "-", input=hpa % "by-operator", kubeconfig=op)
    # The operator's own client, as the operator calls it: server-side apply (a patch), a list
    # (a read, never counted as a write), a delete. Its role has no `get` (it reads through watches),
    # so kubectl patch, which fetches the object first, would be refused.
    import kubernetes

    from ticketplatform_operator.kube import Kube

    kube = Kube(kubernetes.config.new_client_from_config(op))
    kube.apply({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "by-operator", "namespace": namespace},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                         "maxReplicas": 3}})
    listed = {h["metadata"]["name"]: h["spec"]["maxReplicas"] for h in kube.list("HorizontalPodAutoscaler", namespace, "")}
    assert listed == {"by-admin": 2, "by-operator": 3}
    kube.delete("HorizontalPodAutoscaler", namespace, "by-operator")
    denied = controlplane.kubectl("create", "configmap", "nope", "-n", namespace, kubeconfig=op, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr

    writes = controlplane.operator_writes_since(offset)
    calls = [
        (e["verb"], e["objectRef"]["resource"], e["objectRef"].get("name"))
        for e in writes
        if e["objectRef"].get("namespace") == namespace and e["responseStatus"]["code"] < 400
    ]
    assert calls == [
        ("create", "horizontalpodautoscalers", "by-operator"),
        ("patch", "horizontalpodautoscalers", "by-operator"),
        ("delete", "horizontalpodautoscalers", "by-operator"),
    ], writes
    assert all(e["user"]["username"] == OPERATOR_USER for e in writes)
    assert all(e["stage"] == "ResponseComplete" for e in writes)
    # Nothing before the offset is counted.
    later = controlplane.operator_writes_since(controlplane.audit_offset())
    assert [e for e in later if e["objectRef"].get("namespace") == namespace] == []


def test_python_client_authenticates_with_the_operator_kubeconfig(
    controlplane: ControlPlane,
) -> None:
    """The Python client verifies the apiserver with the kubeconfig's CA and sends its token.

    kubernetes==36.0.0 drops bearer tokens from kubeconfigs (requests go out as system:anonymous,
    kubernetes-client/python#2582); 36.0.3 has the fix.
    """
    kubernetes = pytest.importorskip("kubernetes")
    api_client = kubernetes.config.new_client_from_config(config_file=controlplane.operator_kubeconfig)
    with api_client:
        try:
            review = kubernetes.client.AuthenticationV1Api(api_client).create_self_subject_review(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            )
        except kubernetes.client.ApiException as exc:
            pytest.fail(
                f"kubernetes=={kubernetes.__version__} could not authenticate with "
                f"{controlplane.operator_kubeconfig}: {exc.status} {exc.reason}: {exc.body}"
            )
    assert review.status.user_info.username == OPERATOR_USER
