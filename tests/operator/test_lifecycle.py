"""The operator against the real control plane: create, update, drift repair, deletion."""
from __future__ import annotations

import json

from ticketplatform_operator.services import NAMES as SERVICES, SERVICES as DECLARED
from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import apply_tp, get_tp, tp_manifest, wait_phase

ALL_READY = f"{len(SERVICES)}/{len(SERVICES)}"


def _children(cp, ns, kind):
    items = cp.kubectl_json("-n", ns, "get", kind, "-l", "app.kubernetes.io/instance=tickets")["items"]
    return {i["metadata"]["name"]: i for i in items}


def test_minimal_example_becomes_ready(controlplane, operator, namespace):
    cp = controlplane
    cp.kubectl("-n", namespace, "apply", "-f", "examples/minimal.yaml")
    deployments = wait_until(lambda: (d := _children(cp, namespace, "deployments")) and len(d) == len(SERVICES) + 1 and d,
                             timeout=30, message="a deployment per service and the relay's")
    assert set(deployments) == {f"tickets-{s}" for s in SERVICES} | {"tickets-outbox-relay"}
    assert deployments["tickets-outbox-relay"]["spec"]["replicas"] == 0  # no Kafka configured: nothing to relay
    services = _children(cp, namespace, "services")
    assert set(services) == {f"tickets-{s}" for s in SERVICES}
    assert services["tickets-frontend"]["spec"]["type"] == "LoadBalancer"
    assert all(services[f"tickets-{s.name}"]["spec"]["type"] == s.service_type for s in DECLARED)
    hpas = _children(cp, namespace, "hpa")
    assert set(hpas) == {f"tickets-{s.name}" for s in DECLARED if s.autoscaling}
    for hpa in hpas.values():
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
        assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70

    frontend = deployments["tickets-frontend"]
    pod = frontend["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert frontend["spec"]["replicas"] == 2
    booking = cp.kubectl_json("-n", namespace, "get", "deployment", "tickets-booking-service", "--show-managed-fields")
    assert "replicas" not in _applied_fields(booking), "with an HPA, the operator must not own spec.replicas"
    assert "replicas" in _applied_fields(cp.kubectl_json("-n", namespace, "get", "deployment", "tickets-frontend", "--show-managed-fields"))
    assert container["image"] == "ghcr.io/ticketplatform/frontend:0.1.0"
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "ticketing.io/config-hash" in frontend["spec"]["template"]["metadata"]["annotations"]
    owner = frontend["metadata"]["ownerReferences"][0]
    tp = get_tp(cp, namespace, "tickets")
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("TicketPlatform", tp["metadata"]["uid"], True)
    assert frontend["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ticketplatform-operator"

    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    status = tp["status"]
    assert status["readyServices"] == ALL_READY
    assert status["observedGeneration"] == tp["metadata"]["generation"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["DeploymentsReady"]["status"] == "True"
    assert conditions["MonitoringReady"]["reason"] == "ServiceMonitorCRDNotInstalled"
    assert conditions["TopicsReady"]["reason"] == "KafkaNotConfigured"
    assert conditions["AnalyticsReady"]["reason"] == "KafkaNotConfigured"
    assert status["services"]["booking-service"] == {"ready": 2, "desired": 2}
    pods = cp.kubectl_json("-n", namespace, "get", "pods")["items"]
    assert len(pods) == 2 * len(SERVICES) and all(_pod_ready(p) for p in pods)  # 2 replicas each, no relay

    table = cp.kubectl("-n", namespace, "get", "tp").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "SERVICES", "ANALYTICS", "URL", "AGE"]
    assert table[1].split()[:5] == ["tickets", "Ready", ALL_READY, "NotConfigured", f"http://tickets-frontend.{namespace}.svc:80"]
    described = cp.kubectl("-n", namespace, "describe", "tp", "tickets").stdout
    assert "PhaseChanged" in described and "-> Ready" in described
    # The operator-wide error counter also moves for other tests' namespaces being torn down;
    # this platform's own log lines must hold no error.
    assert operator.errors_for(namespace) == [], "a reconcile raised; see test-artifacts/operator.log"


def _applied_fields(obj):
    """The fields the operator's field manager owns, flattened to their names."""
    for entry in obj["metadata"].get("managedFields", []):
        if entry["manager"] == "ticketplatform-operator" and entry["operation"] == "Apply":
            return json.dumps(entry["fieldsV1"]["f:spec"]).replace('"f:', '"').replace('"', "")
    raise AssertionError("no managedFields entry of the operator")


def _pod_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _rs_hashes(cp, ns):
    return {name: {rs["metadata"]["labels"]["pod-template-hash"]
                   for rs in cp.kubectl_json("-n", ns, "get", "rs", "-l", f"app.kubernetes.io/name={name}")["items"]}
            for name in SERVICES}


def test_change_updates_only_affected_children(controlplane, operator, namespace):
    cp = controlplane
    apply_tp(cp, namespace, tp_manifest("tickets"))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    before = {k: v["metadata"]["resourceVersion"] for kind in ("deployments", "services", "hpa")
              for k, v in ((f"{kind}/{n}", o) for n, o in _children(cp, namespace, kind).items())}
    hashes_before = _rs_hashes(cp, namespace)

    apply_tp(cp, namespace, tp_manifest("tickets", json.dumps({"services": {
        "frontend": {"image": "ghcr.io/ticketplatform/frontend:0.2.0"},
        "event-catalog": {"replicas": 3},
        "booking-service": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 6}},
        "user-service": {"env": {"FEATURE_FLAG": "on"}},
    }})))

    def settled():
        d = _children(cp, namespace, "deployments")
        h = _children(cp, namespace, "hpa")
        return (d["tickets-frontend"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
                and d["tickets-event-catalog"]["spec"]["replicas"] == 3
                and h["tickets-booking-service"]["spec"]["maxReplicas"] == 6
                and any(e["name"] == "FEATURE_FLAG" for e in d["tickets-user-service"]["spec"]["template"]["spec"]["containers"][0]["env"]))

    wait_until(settled, timeout=30, message="children to follow the new spec")
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    assert tp["status"]["observedGeneration"] == tp["metadata"]["generation"] == 2
    hpa = _children(cp, namespace, "hpa")["tickets-booking-service"]
    assert hpa["spec"]["minReplicas"] == 3

    after = {k: v["metadata"]["resourceVersion"] for kind in ("deployments", "services", "hpa")
             for k, v in ((f"{kind}/{n}", o) for n, o in _children(cp, namespace, kind).items())}
    changed = {k for k in before if before[k] != after[k]}
    # Deployments' resourceVersions also move with their own status; judge them by pod template.
    assert not {k for k in changed if k.startswith("services/")}, "no Service should have been touched"
    assert {k for k in changed if k.startswith("hpa/")} <= {"hpa/tickets-booking-service", "hpa/tickets-user-service"}
    assert after["hpa/tickets-booking-service"] != before["hpa/tickets-booking-service"]

    hashes_after = _rs_hashes(cp, namespace)
    rolled = {name for name in SERVICES if hashes_after[name] != hashes_before[name]}
    assert rolled == {"frontend", "user-service"}, f"pods rolled for {rolled}"


def test_drift_is_repaired(controlplane, operator, namespace):
    cp = controlplane
    apply_tp(cp, namespace, tp_manifest("tickets"))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    old_uid = _children(cp, namespace, "deployments")["tickets-frontend"]["metadata"]["uid"]

    cp.kubectl("-n", namespace, "delete", "deployment", "tickets-frontend", "--wait=false")
    recreated = wait_until(lambda: (d := _children(cp, namespace, "deployments").get("tickets-frontend"))
                           and d["metadata"]["uid"] != old_uid and d, timeout=15, message="frontend recreated")
    assert recreated["spec"]["replicas"] == 2

    cp.kubectl("-n", namespace, "scale", "deployment", "tickets-event-catalog", "--replicas=7")
    wait_until(lambda: _children(cp, namespace, "deployments")["tickets-event-catalog"]["spec"]["replicas"] == 2,
               timeout=15, message="hand scaling undone")
    cp.kubectl("-n", namespace, "patch", "deployment", "tickets-user-service", "--type=json", "-p",
               '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"evil/image:1"}]')
    wait_until(lambda: _children(cp, namespace, "deployments")["tickets-user-service"]["spec"]["template"]["spec"]["containers"][0]["image"]
               == "ghcr.io/ticketplatform/user-service:0.1.0", timeout=15, message="hand-edited image restored")
    cp.kubectl("-n", namespace, "delete", "hpa", "tickets-booking-service", "--wait=false")
    wait_until(lambda: "tickets-booking-service" in _children(cp, namespace, "hpa"), timeout=15, message="HPA recreated")
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)


def test_deleting_the_platform_removes_every_child(controlplane, operator, namespace):
    cp = controlplane
    apply_tp(cp, namespace, tp_manifest("tickets"))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    cp.kubectl("-n", namespace, "delete", "tp", "tickets", "--timeout=60s")

    def all_gone():
        return not [k for k in ("deployments", "services", "hpa", "rs", "pods") if _children(cp, namespace, k)]

    wait_until(all_gone, timeout=90, message="garbage collection of every child")


def test_disabling_autoscaling_prunes_the_hpa_and_sets_replicas(controlplane, operator, namespace):
    cp = controlplane
    apply_tp(cp, namespace, tp_manifest("tickets"))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    apply_tp(cp, namespace, tp_manifest("tickets", '{"services": {"user-service": {"autoscaling": {"enabled": false}, "replicas": 4}}}'))
    wait_until(lambda: set(_children(cp, namespace, "hpa")) == {"tickets-booking-service"}, timeout=20, message="user-service HPA pruned")
    wait_until(lambda: _children(cp, namespace, "deployments")["tickets-user-service"]["spec"]["replicas"] == 4,
               timeout=20, message="replicas taken over from the HPA")
