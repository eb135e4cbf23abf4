"""The operator reads its platforms' pods from a watch and puts the kubelet's reasons in status;
the kubernetes analytics engine runs the job as a Deployment owned by the platform.

No kubelet is needed here: the pods are kept off every node (a node selector nothing matches), so
nothing but this test writes their container statuses, which it patches the way a kubelet does.
The real-node version (a missing image, a crashing container) runs in tests/platform."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import RESYNC_SECONDS, apply_tp, get_tp, tp_manifest, wait_phase

NOWHERE = {"ticketplatform.test/node": "none"}


def _spec(kafka, suffix: str, **analytics) -> dict:
    return {
        "placement": {"nodeSelector": NOWHERE},
        "kafka": {"bootstrapServers": kafka.bootstrap_servers,
                  "topics": {"bookings": {"name": f"bookings-{suffix}"}, "results": {"name": f"results-{suffix}"}}},
        "analytics": {"engine": "kubernetes", "windowSeconds": 30, **analytics},
    }


def _apply(cp, ns, spec: dict) -> None:
    apply_tp(cp, ns, tp_manifest("tickets", json.dumps(spec)))


def _pods(cp, ns, component: str) -> list[dict]:
    return cp.kubectl_json("-n", ns, "get", "pods", "-l",
                           f"app.kubernetes.io/instance=tickets,app.kubernetes.io/component={component}")["items"]


def _kubelet_says(cp, ns, pod: dict, container: str, waiting: dict) -> None:
    status = {"phase": "Pending", "containerStatuses": [{
        "name": container, "ready": False, "restartCount": 0, "image": "x", "imageID": "",
        "state": {"waiting": waiting}}]}
    cp.kubectl("-n", ns, "patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
               "-p", json.dumps({"status": status}))


def _condition(tp: dict, ctype: str) -> dict:
    return next((c for c in tp.get("status", {}).get("conditions", []) if c["type"] == ctype), {})


@pytest.fixture
def placement_supported(controlplane, crd):
    from ticketplatform_operator import model

    if "placement" not in model.TicketPlatformSpec.model_fields:
        pytest.skip("spec.placement is not in the model yet")


def test_failing_pods_degrade_the_platform_with_the_kubelets_reason(controlplane, operator, namespace, kafka,
                                                                     placement_supported):
    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    _apply(cp, namespace, _spec(kafka, suffix))

    # Unschedulable pods only wait: Progressing, and the scheduler's reason is in the message.
    def waiting():
        tp = get_tp(cp, namespace, "tickets")
        return "Unschedulable" in _condition(tp, "DeploymentsReady").get("message", "") and tp
    tp = wait_until(waiting, timeout=90, message="DeploymentsReady naming the unschedulable pods")
    assert tp["status"]["phase"] == "Progressing"
    assert _condition(tp, "DeploymentsReady")["reason"] == "ServicesNotReady"

    # The analytics job: a Deployment owned by the platform, its state in status.
    dep = cp.kubectl_json("-n", namespace, "get", "deployment", "tickets-analytics")
    assert dep["metadata"]["ownerReferences"][0]["uid"] == tp["metadata"]["uid"]
    assert dep["spec"]["strategy"]["type"] == "Recreate" and dep["spec"]["replicas"] == 1
    pod_spec = dep["spec"]["template"]["spec"]
    assert pod_spec["nodeSelector"] == NOWHERE, "spec.placement applies to the analytics pod too"
    env = {e["name"]: e.get("value") for e in pod_spec["containers"][0]["env"]}
    assert env["TP_ANALYTICS_BOOTSTRAP_SERVERS"] == kafka.bootstrap_servers
    assert env["TP_ANALYTICS_SOURCE_TOPIC"] == f"bookings-{suffix}"
    analytics = wait_until(lambda: (a := get_tp(cp, namespace, "tickets")["status"]["analytics"]).get("jobId") and
                           "Unschedulable" in a.get("message", "") and a,
                           timeout=60, message="the analytics job PENDING on an unschedulable pod")
    assert analytics["engine"] == "kubernetes" and analytics["state"] == "PENDING"

    # The kubelet cannot find booking-service's image: Degraded, naming the service and the reason.
    (bad, *_) = wait_until(lambda: _pods(cp, namespace, "booking-service"), timeout=60, message="booking-service pods")
    message = 'Container image "ghcr.io/ticketplatform/booking-service:0.1.0" is not present with pull policy of Never'
    _kubelet_says(cp, namespace, bad, "booking-service", {"reason": "ErrImageNeverPull", "message": message})
    tp = wait_phase(cp, namespace, "tickets", "Degraded", timeout=60)
    cond = _condition(tp, "DeploymentsReady")
    assert (cond["status"], cond["reason"]) == ("False", "ServiceFailing")
    assert cond["message"] == f"booking-service: ErrImageNeverPull ({message})"
    assert _condition(tp, "Ready")["reason"] == "ServiceFailing"

    # The analytics pod crash-loops: its state is FAILED with the kubelet's reason.
    (job_pod,) = wait_until(lambda: _pods(cp, namespace, "analytics"), timeout=60, message="the analytics pod")
    _kubelet_says(cp, namespace, job_pod, "analytics-job",
                  {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container=analytics-job"})
    analytics = wait_until(lambda: (a := get_tp(cp, namespace, "tickets")["status"]["analytics"])["state"] == "FAILED" and a,
                           timeout=60, message="analytics FAILED")
    assert "CrashLoopBackOff (back-off 10s restarting failed container=analytics-job)" in analytics["message"]
    assert _condition(get_tp(cp, namespace, "tickets"), "AnalyticsReady")["reason"] == "JobFailed"

    # The failing pod goes (as after a fixed spec rolls it away): back to Progressing.
    cp.kubectl("-n", namespace, "delete", "pod", bad["metadata"]["name"], "--wait=true")
    cp.kubectl("-n", namespace, "delete", "pod", job_pod["metadata"]["name"], "--wait=true")
    tp = wait_phase(cp, namespace, "tickets", "Progressing", timeout=60)
    assert _condition(tp, "DeploymentsReady")["reason"] == "ServicesNotReady"

    # Settled: the job's Deployment is not re-applied, nor status rewritten, on every resync.
    wait_until(lambda: get_tp(cp, namespace, "tickets")["status"]["analytics"]["state"] == "PENDING",
               timeout=60, message="analytics PENDING again")
    # The HPAs still raise user-service and booking-service to 2 pods, whose own reasons are new
    # facts for status: wait until status has stayed the same over a whole resync (an operator that
    # rewrote it at every resync would never get there), then count the writes of two more.
    seen = {"rv": None, "since": time.monotonic()}

    def status_unchanged_for_a_resync():
        rv = get_tp(cp, namespace, "tickets")["metadata"]["resourceVersion"]
        if rv != seen["rv"]:
            seen.update(rv=rv, since=time.monotonic())
        return time.monotonic() - seen["since"] > RESYNC_SECONDS + 1

    wait_until(status_unchanged_for_a_resync, timeout=90, interval=0.5, message="status unchanged over a resync")
    offset = cp.audit_offset()
    time.sleep(2 * RESYNC_SECONDS + 2)
    writes = [(e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("name"), e["objectRef"].get("subresource"))
              for e in cp.operator_writes_since(offset) if e.get("objectRef", {}).get("namespace") == namespace]
    assert writes == []

    # A spec change of the job rolls its Deployment; switching analytics off scales it to 0.
    old_hash = dep["spec"]["template"]["metadata"]["annotations"]["ticketing.io/analytics-spec-hash"]
    _apply(cp, namespace, _spec(kafka, suffix, windowSeconds=60))
    wait_until(lambda: cp.kubectl_json("-n", namespace, "get", "deployment", "tickets-analytics")
               ["spec"]["template"]["metadata"]["annotations"]["ticketing.io/analytics-spec-hash"] != old_hash,
               timeout=60, message="the job's Deployment rolled for the new spec")
    _apply(cp, namespace, _spec(kafka, suffix, enabled=False))
    wait_until(lambda: cp.kubectl_json("-n", namespace, "get", "deployment", "tickets-analytics")["spec"]["replicas"] == 0,
               timeout=60, message="the job's Deployment scaled to 0")
    assert get_tp(cp, namespace, "tickets")["status"]["analytics"]["state"] == "Disabled"
