"""The kubernetes analytics engine without a cluster: what it renders, how it reads the job's state
from its Deployment and pods, and the engine contract (apply only on change, resubmit on a spec
change, cancel by scaling to 0) against an in-memory apiserver."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from ticketplatform_operator.analytics import (CANCELLED, CANCELLING, FAILED, PENDING, RESTARTING, RUNNING, UNKNOWN,
                                               JobStatus, make_engine, request_from_spec)
from ticketplatform_operator.analytics.kubernetes import (SPEC_HASH_ANNOTATION, KubernetesEngine, job_state,
                                                          render_deployment)
from ticketplatform_operator.model import parse_spec
from ticketplatform_operator.pods import summarize

SPEC = {"kafka": {"bootstrapServers": "10.213.0.1:19093",
                  "topics": {"bookings": {"name": "bookings-x"}, "results": {"name": "results-x"}}},
        "analytics": {"engine": "kubernetes", "windowSeconds": 30, "parallelism": 2}}


def request(spec: dict | None = None, uid: str | None = "uid-1"):
    return request_from_spec("shop", "tickets", parse_spec(spec or SPEC), owner_uid=uid)


def test_renders_a_hardened_single_replica_deployment_owned_by_the_platform():
    dep = render_deployment(request())
    assert dep["metadata"]["name"] == "tickets-analytics" and dep["metadata"]["namespace"] == "shop"
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("TicketPlatform", "tickets", "uid-1", True)
    spec = dep["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    assert c["image"] == "ghcr.io/ticketplatform/analytics-job:0.1.0" and c["imagePullPolicy"] == "IfNotPresent"
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert "command" not in c and "args" not in c, "the image's entrypoint runs the job"
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1536Mi"}}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts == {"/tmp": "tmp", "/checkpoints": "checkpoints"}
    assert "emptyDir" in volumes["tmp"] and "emptyDir" in volumes["checkpoints"]
    env = {e["name"]: e["value"] for e in c["env"]}
    req = request()
    assert env["TP_ANALYTICS_BOOTSTRAP_SERVERS"] == "10.213.0.1:19093"
    assert (env["TP_ANALYTICS_SOURCE_TOPIC"], env["TP_ANALYTICS_RESULTS_TOPIC"]) == ("bookings-x", "results-x")
    assert env["TP_ANALYTICS_WINDOW"] == "30s" and env["TP_ANALYTICS_PARALLELISM"] == "2"
    assert env["TP_ANALYTICS_GROUP_ID"] == "tp-analytics-shop-tickets"
    assert env["TP_ANALYTICS_CHECKPOINT_DIR"] == f"/checkpoints/{req.spec_hash}"
    assert env["TP_ANALYTICS_STATUS_FILE"].startswith("/tmp/") and env["FLINK_LOG_DIR"].startswith("/tmp/")
    assert spec["template"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == req.spec_hash
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["exec"]["command"][0] == "python3" and env["TP_ANALYTICS_STATUS_FILE"] in c[probe]["exec"]["command"][2]
    assert "nodeSelector" not in pod and "tolerations" not in pod


def test_env_names_are_the_jobs_own_fallbacks():
    """Every TP_ANALYTICS_* variable the pod gets is one flink/analytics_job.py reads, with the
    value the local engine would pass as a flag."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "flink" / "analytics_job.py"
    spec = importlib.util.spec_from_file_location("analytics_job_under_test", path)
    job = importlib.util.module_from_spec(spec)
    import sys
    sys.modules[spec.name] = job  # its dataclasses look their module up
    try:
        spec.loader.exec_module(job)
    finally:
        sys.modules.pop(spec.name, None)
    req = request()
    env = {e["name"]: e["value"] for e in render_deployment(req)["spec"]["template"]["spec"]["containers"][0]["env"]}
    from_env, _ = job.parse_args([], environ=env)
    from_flags, _ = job.parse_args(req.job_args(f"/checkpoints/{req.spec_hash}") + ["--status-file", env["TP_ANALYTICS_STATUS_FILE"]],
                                   environ={})
    assert from_env == from_flags
    assert from_env.bootstrap_servers == "10.213.0.1:19093" and from_env.window_seconds == 30


def test_spec_settings_resources_checkpoint_claim_and_placement():
    spec = copy.deepcopy(SPEC)
    spec["analytics"]["kubernetes"] = {"image": "registry.example.com/tp/analytics-job:1.2.3",
                                       "resources": {"requests": {"cpu": "500m", "memory": "2Gi"},
                                                     "limits": {"cpu": "2", "memory": "3Gi"}},
                                       "checkpointClaimName": "analytics-checkpoints"}
    req = request(spec)
    pod = render_deployment(req)["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com/tp/analytics-job:1.2.3"
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "2Gi"}
    assert {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "analytics-checkpoints"}} in pod["volumes"]
    assert req.spec_hash != request().spec_hash, "image, resources and volume are part of the job's spec"

    from dataclasses import replace
    placed = replace(req, placement=json.dumps({"nodeSelector": {"kubernetes.io/hostname": "tp-node"},
                                                "tolerations": [{"key": "dedicated", "operator": "Exists"}]}))
    pod = render_deployment(placed)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "tp-node"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]


def test_spec_placement_reaches_the_pod_when_the_model_has_it():
    spec = copy.deepcopy(SPEC)
    spec["placement"] = {"nodeSelector": {"kubernetes.io/hostname": "tp-node"},
                         "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}
    try:
        req = request(spec)
    except Exception as exc:  # noqa: BLE001 - spec.placement is another change of issue 8
        pytest.skip(f"spec.placement not in the model yet: {exc}")
    pod = render_deployment(req)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "tp-node"}
    assert pod["tolerations"][0]["key"] == "dedicated" and pod["tolerations"][0]["effect"] == "NoSchedule"


def test_other_engines_keep_their_spec_hash():
    """The kubernetes fields stay out of other engines' hashes, so an upgrade restarts no job."""
    spec = copy.deepcopy(SPEC)
    spec["analytics"]["engine"] = "local"
    req = request_from_spec("shop", "tickets", parse_spec(spec))
    assert req.image is None and req.resources == () and req.placement is None
    from ticketplatform_operator.analytics.base import JobRequest
    assert req.spec_hash == JobRequest.build("shop", "tickets", window_seconds=30, parallelism=2,
                                             bootstrap_servers="10.213.0.1:19093", source_topic="bookings-x",
                                             results_topic="results-x").spec_hash
    assert request(uid="other").spec_hash == request().spec_hash, "the owner's uid is not the job's spec"


# ---- job state from the Deployment and pods --------------------------------------------------

def dep(replicas: int = 1, conditions: list | None = None) -> dict:
    return {"metadata": {"name": "tickets-analytics", "generation": 1},
            "spec": {"replicas": replicas}, "status": {"conditions": conditions or []}}


def apod(name: str, spec_hash: str, containers: list, *, phase="Running", ready=False, deleting=False,
         created="2030-01-01T00:00:00Z", conditions=None) -> dict:
    meta = {"name": name, "namespace": "shop", "uid": f"uid-{name}", "creationTimestamp": created,
            "labels": {"app.kubernetes.io/name": "analytics", "app.kubernetes.io/instance": "tickets",
                       "app.kubernetes.io/component": "analytics", "app.kubernetes.io/managed-by": "ticketplatform-operator"},
            "annotations": {SPEC_HASH_ANNOTATION: spec_hash}}
    if deleting:
        meta["deletionTimestamp"] = "2030-01-01T00:05:00Z"
    conds = conditions if conditions is not None else [{"type": "PodScheduled", "status": "True"},
                                                       {"type": "Ready", "status": "True" if ready else "False"}]
    return summarize({"metadata": meta, "status": {"phase": phase, "conditions": conds, "containerStatuses": containers}})


def cs(state: dict, ready=False, restarts=0, last=None) -> dict:
    out = {"name": "analytics-job", "ready": ready, "restartCount": restarts, "state": state}
    if last:
        out["lastState"] = {"terminated": last}
    return out


def test_job_state_follows_the_pod():
    req = request()
    h = req.spec_hash
    assert job_state(req, None, [])[0] == PENDING
    assert job_state(req, dep(), [])[:2] == (PENDING, "waiting for the pod of Deployment tickets-analytics")
    assert job_state(req, dep(0), [])[0] == CANCELLED

    creating = apod("a-1", h, [cs({"waiting": {"reason": "ContainerCreating"}})], phase="Pending")
    assert job_state(req, dep(), [creating])[:2] == (PENDING, "pod a-1: ContainerCreating")
    starting = apod("a-1", h, [cs({"running": {}})])
    assert job_state(req, dep(), [starting])[:2] == (PENDING, "pod a-1: starting the Flink job")
    ready = apod("a-1", h, [cs({"running": {}}, ready=True, restarts=2)], ready=True)
    assert job_state(req, dep(), [ready]) == (RUNNING, "pod a-1 running", 2)

    never = apod("a-1", h, [cs({"waiting": {"reason": "ErrImageNeverPull",
                                            "message": 'Container image "ghcr.io/ticketplatform/analytics-job:0.1.0" '
                                                       'is not present with pull policy of Never'}})], phase="Pending")
    state, message, _ = job_state(req, dep(), [never])
    assert state == FAILED and message.startswith("pod a-1: ErrImageNeverPull (Container image")

    crashing = apod("a-1", h, [cs({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container=analytics-job"}},
                                  restarts=2, last={"exitCode": 1, "reason": "Error",
                                                    "message": "py4j.protocol.Py4JJavaError: NoResourceAvailableException"})])
    state, message, restarts = job_state(req, dep(), [crashing])
    assert state == FAILED and restarts == 2
    assert message == ("pod a-1: CrashLoopBackOff (back-off 20s restarting failed container=analytics-job; "
                       "last Error: exit code 1, py4j.protocol.Py4JJavaError: NoResourceAvailableException)")
    oom = apod("a-1", h, [cs({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}, restarts=1)])
    assert job_state(req, dep(), [oom])[:2] == (FAILED, "pod a-1: OOMKilled (exit code 137)")
    # Back up after a clean restart (the liveness probe restarted a hung JVM, say): not ready yet.
    again = apod("a-1", h, [cs({"running": {}}, restarts=1, last={"exitCode": 0, "reason": "Completed"})])
    assert job_state(req, dep(), [again])[0] == RESTARTING

    unschedulable = apod("a-1", h, [], phase="Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/4 nodes are available: 1 Insufficient memory."}])
    assert job_state(req, dep(), [unschedulable])[:2] == (PENDING, "pod a-1: Unschedulable (0/4 nodes are available: 1 Insufficient memory.)")


def test_job_state_on_a_spec_change_and_a_refused_pod():
    req = request()
    old = apod("a-old", "0123456789abcdef", [cs({"running": {}}, ready=True)], ready=True, deleting=True)
    state, message, _ = job_state(req, dep(), [old])
    assert state == CANCELLING and "a-old" in message
    new = apod("a-new", req.spec_hash, [cs({"running": {}}, ready=True)], ready=True, created="2030-01-01T00:01:00Z")
    assert job_state(req, dep(), [old, new])[0] == RUNNING
    refused = dep(conditions=[{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                               "message": 'pods "tickets-analytics-5f" is forbidden: exceeded quota: mem'}])
    assert job_state(req, refused, [])[:2] == (FAILED, 'FailedCreate: pods "tickets-analytics-5f" is forbidden: exceeded quota: mem')


# ---- the engine against an in-memory apiserver -----------------------------------------------

class FakeKube:
    """Just enough of kube.Kube: get/apply/list/write of Deployments and Pods, with a write log."""

    def __init__(self):
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.writes: list[tuple[str, str, Any]] = []
        self.fail: ApiException | None = None

    def get(self, kind, namespace, name):
        if self.fail:
            raise self.fail
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def apply(self, manifest):
        meta = manifest["metadata"]
        self.writes.append(("apply", meta["name"], copy.deepcopy(manifest)))
        live = copy.deepcopy(manifest)
        live["metadata"].update(uid="dep-uid", generation=len(self.writes))
        live["status"] = {}
        self.objects[(manifest["kind"], meta["namespace"], meta["name"])] = live
        return copy.deepcopy(live)

    def list(self, kind, namespace, selector):
        wanted = dict(kv.split("=") for kv in selector.split(","))
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items()
                if k == kind and ns == namespace and wanted.items() <= o["metadata"].get("labels", {}).items()]

    def write(self, verb, kind, path, body=None, query=None, content_type=None):
        self.writes.append((verb, path, body))
        name = path.rsplit("/", 1)[1]
        obj = self.objects.get((kind, path.split("/")[5], name))
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        obj["spec"]["replicas"] = body["spec"]["replicas"]
        return copy.deepcopy(obj)

    def add_pod(self, req, ready: bool, name="tickets-analytics-7c9-abcde"):
        self.objects[("Pod", "shop", name)] = {
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}",
                         "labels": {"app.kubernetes.io/name": "analytics", "app.kubernetes.io/instance": "tickets",
                                    "app.kubernetes.io/component": "analytics"},
                         "annotations": {SPEC_HASH_ANNOTATION: req.spec_hash}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}],
                       "containerStatuses": [{"name": "analytics-job", "ready": ready, "restartCount": 0,
                                              "state": {"running": {}}}]}}


def test_engine_applies_once_reads_state_resubmits_on_change_and_cancels():
    kube = FakeKube()
    engine = make_engine("kubernetes", kube=kube)
    assert isinstance(engine, KubernetesEngine)
    req = request()
    st = engine.ensure(req, None)
    assert (st.state, st.spec_hash, st.job_id) == (PENDING, req.spec_hash, f"tickets-analytics-{req.spec_hash[:8]}")
    assert [w[0] for w in kube.writes] == ["apply"]

    kube.add_pod(req, ready=True)
    st2 = engine.ensure(req, st)
    assert st2.state == RUNNING and st2.message == "pod tickets-analytics-7c9-abcde running"
    assert len(kube.writes) == 1, "nothing changed: no write"
    # Pods handed in by the caller (the operator's pod watch) are used instead of a list.
    assert engine.ensure(req, st2, pods=[]).state == PENDING

    # A spec change: the Deployment is applied again with the new hash (Recreate stops the old pod first).
    changed = request({**SPEC, "analytics": {**SPEC["analytics"], "windowSeconds": 60}})
    st3 = engine.ensure(changed, st2)
    assert kube.writes[-1][0] == "apply" and len(kube.writes) == 2
    applied = kube.writes[-1][2]["spec"]["template"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert applied == changed.spec_hash != req.spec_hash
    assert st3.job_id != st2.job_id and st3.spec_hash == changed.spec_hash
    assert st3.state == CANCELLING, "the old spec's pod still runs: it goes before the new job starts"

    engine.cancel(changed, st3)
    verb, path, body = kube.writes[-1]
    assert (verb, path, body) == ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/tickets-analytics", {"spec": {"replicas": 0}})
    assert engine.ensure(changed, st3, pods=[]).state == PENDING and kube.writes[-1][0] == "apply", \
        "ensure after a cancel brings the job back"
    assert kube.writes[-1][2]["spec"]["replicas"] == 1


def test_engine_cancel_of_a_missing_deployment_and_api_errors():
    kube = FakeKube()
    engine = KubernetesEngine(kube)
    engine.cancel(request(), None)  # nothing there: fine
    kube.fail = ApiException(status=503, reason="Service Unavailable")
    st = engine.ensure(request(), None)
    assert st.state == UNKNOWN and "503" in st.message
    kube.fail = ApiException(status=403, reason="Forbidden")
    prev = JobStatus(job_id="j", state=RUNNING, spec_hash=request().spec_hash)
    st = engine.ensure(request(), prev)
    assert st.state == FAILED and st.job_id == "j" and "403 Forbidden" in st.message
