"""KubernetesEngine: the analytics job as a pod in the platform's namespace.

The job (flink/analytics_job.py, PyFlink's MiniCluster: JobManager and TaskManager in one JVM)
runs from the analytics-job image as a single-replica Deployment ``<platform>-analytics`` owned by
the TicketPlatform:

* strategy ``Recreate``: two copies of one job (same consumer group, same transactional ids)
  never run side by side; a changed spec stops the old pod before the new one starts, which is the
  engines' cancel-and-resubmit. The pod template carries the request's spec hash, so every change
  of the job's shape rolls the pod, and nothing else does.
* the image's default command runs the job; every setting goes in as a ``TP_ANALYTICS_*``
  environment variable (the job's own fallback for each flag), so the same image serves every
  platform and the command line stays the image's business.
* the restricted pod security the services get (non-root 10001, read-only root, no capabilities,
  seccomp RuntimeDefault, no service-account token), an emptyDir for /tmp (PyFlink's and Flink's
  temp files, Flink's log, the job's status file) and a volume for checkpoints under
  ``/checkpoints/<spec hash>``: an emptyDir (kept across container restarts, so a crashed job
  resumes from its last checkpoint) or the PersistentVolumeClaim ``spec.analytics.kubernetes.
  checkpointClaimName`` (kept across pod replacements too).
* probes read the status file the job writes (state and a heartbeat every 10 s): ready while the
  Flink job is RUNNING, restarted when the heartbeat stops.

Cancelling (deletion, analytics switched off, another engine) scales the Deployment to 0 with a
merge patch: the pod gets SIGTERM, the job cancels its Flink job and keeps its checkpoints. The
operator needs no ``delete`` on Deployments for it; deleting the TicketPlatform removes the
Deployment through its owner reference.

Job state is read from the Deployment and its pods (the summaries of pods.py, from the operator's
pod watch when the caller passes them): PENDING while the pod is scheduled and starts, RUNNING once
ready, RESTARTING when it runs again after a restart but is not ready yet, FAILED with the
kubelet's reason (ErrImageNeverPull, CrashLoopBackOff, OOMKilled, ...), CANCELLED at 0 replicas.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Sequence

from kubernetes.client.rest import ApiException

from .. import model
from ..apply import contains
from ..kube import Kube
from ..pods import COMPONENT_LABEL, pod_problem, summarize
from .base import CANCELLED, CANCELLING, FAILED, PENDING, RESTARTING, RUNNING, UNKNOWN, JobRequest, JobStatus, slug

log = logging.getLogger(__name__)

COMPONENT = "analytics"
CONTAINER = "analytics-job"
SPEC_HASH_ANNOTATION = "ticketing.io/analytics-spec-hash"
RUN_AS_USER = 10001
TMP_DIR = "/tmp"
CHECKPOINT_ROOT = "/checkpoints"
STATUS_FILE = f"{TMP_DIR}/analytics-status.json"
JVM_ARGS = "-Xms128m -Xmx768m"
TMP_SIZE_LIMIT = "1Gi"
CHECKPOINT_SIZE_LIMIT = "2Gi"
# Status-file probes: any python3 in the image will do (they need only the standard library).
_READY_CHECK = (f"import json,sys; sys.exit(json.load(open({STATUS_FILE!r}))['state'] != 'RUNNING')")
_ALIVE_CHECK = (f"import os,sys,time; sys.exit(time.time() - os.path.getmtime({STATUS_FILE!r}) > 60)")
DEFAULT_IMAGE = f"{model.DEFAULT_IMAGE_REPOSITORY}/analytics-job:{model.DEFAULT_IMAGE_TAG}"


def deployment_name(request: JobRequest) -> str:
    return f"{request.name}-analytics"


def kubernetes_job_id(request: JobRequest) -> str:
    return f"{slug(deployment_name(request), 200)}-{request.spec_hash[:8]}"


def _labels(request: JobRequest) -> tuple[dict[str, str], dict[str, str]]:
    """(selector labels, all labels): the same scheme as the services' children (render.py)."""
    selector = {"app.kubernetes.io/name": COMPONENT, "app.kubernetes.io/instance": request.name}
    labels = {**selector, "app.kubernetes.io/part-of": "ticketplatform",
              "app.kubernetes.io/managed-by": "ticketplatform-operator", COMPONENT_LABEL: COMPONENT}
    return selector, labels


def job_env(request: JobRequest) -> dict[str, str]:
    """The job's settings as its TP_ANALYTICS_* environment fallbacks (see parse_args in the job)."""
    args = request.job_args(f"{CHECKPOINT_ROOT}/{request.spec_hash}")
    env = {}
    for flag, value in zip(args[0::2], args[1::2]):
        env["TP_ANALYTICS_" + flag.lstrip("-").upper().replace("-", "_")] = value
    env.update({
        "TP_ANALYTICS_STATUS_FILE": STATUS_FILE,
        "TP_ANALYTICS_RESTORE": "auto",
        # A read-only root: everything written goes to the /tmp emptyDir.
        "HOME": TMP_DIR, "TMPDIR": TMP_DIR, "FLINK_LOG_DIR": f"{TMP_DIR}/flink-log",
        "JVM_ARGS": f"{JVM_ARGS} -Djava.io.tmpdir={TMP_DIR}",
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
    })
    return env


def _resources(request: JobRequest) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, value in request.resources:
        kind, _, name = key.partition(".")
        out.setdefault(kind, {})[name] = value
    return out or {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1536Mi"}}


def _exec_probe(check: str, period: int, failures: int) -> dict[str, Any]:
    return {"exec": {"command": ["python3", "-c", check]}, "periodSeconds": period, "timeoutSeconds": 5,
            "failureThreshold": failures}


def render_deployment(request: JobRequest, replicas: int = 1) -> dict[str, Any]:
    """The Deployment that runs ``request``'s job (pure: no cluster needed)."""
    selector, labels = _labels(request)
    env = job_env(request)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": request.image or DEFAULT_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": _resources(request),
        "volumeMounts": [{"name": "tmp", "mountPath": TMP_DIR}, {"name": "checkpoints", "mountPath": CHECKPOINT_ROOT}],
        # The JVM and the Flink job take a while: up to 5 minutes before liveness applies.
        "startupProbe": _exec_probe(_READY_CHECK, 5, 60),
        "readinessProbe": _exec_probe(_READY_CHECK, 10, 3),
        "livenessProbe": _exec_probe(_ALIVE_CHECK, 20, 3),
        # A job that dies says why in `kubectl describe` and in status, not only in its log.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    checkpoints: dict[str, Any] = (
        {"name": "checkpoints", "persistentVolumeClaim": {"claimName": request.checkpoint_claim}}
        if request.checkpoint_claim else {"name": "checkpoints", "emptyDir": {"sizeLimit": CHECKPOINT_SIZE_LIMIT}})
    pod_spec: dict[str, Any] = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,  # the job never talks to the apiserver
        # SIGTERM cancels the Flink job (checkpoints kept); give it time before SIGKILL.
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}, checkpoints],
    }
    if request.placement:
        placement = json.loads(request.placement)
        if placement.get("nodeSelector"):
            pod_spec["nodeSelector"] = placement["nodeSelector"]
        if placement.get("tolerations"):
            pod_spec["tolerations"] = placement["tolerations"]
    metadata: dict[str, Any] = {"name": deployment_name(request), "namespace": request.namespace,
                                "labels": dict(labels), "annotations": {SPEC_HASH_ANNOTATION: request.spec_hash}}
    if request.owner_uid:
        metadata["ownerReferences"] = [{"apiVersion": model.API_VERSION, "kind": model.KIND, "name": request.name,
                                        "uid": request.owner_uid, "controller": True, "blockOwnerDeletion": True}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": {SPEC_HASH_ANNOTATION: request.spec_hash}},
                "spec": pod_spec,
            },
        },
    }


def job_state(request: JobRequest, deployment: Mapping[str, Any] | None,
              pods: Sequence[Mapping[str, Any]]) -> tuple[str, str, int]:
    """(state, message, restarts) of the platform's job from its Deployment and pod summaries (pure)."""
    name = deployment_name(request)
    if deployment is None:
        return PENDING, f"creating Deployment {name}", 0
    if (deployment.get("spec") or {}).get("replicas", 1) == 0:
        return CANCELLED, f"Deployment {name} scaled to 0", 0
    mine = [p for p in pods if p.get("component") == COMPONENT and not p.get("deleting")]
    current = [p for p in mine if p.get("annotations", {}).get(SPEC_HASH_ANNOTATION) == request.spec_hash]
    if not current:
        old = [p for p in pods if p.get("component") == COMPONENT]
        if old:
            return CANCELLING, f"stopping pod {old[0]['name']} of the previous job before the new one starts", 0
        for cond in (deployment.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                return FAILED, f"{cond.get('reason', 'ReplicaFailure')}: {cond.get('message', '')}".strip(), 0
            if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
                return FAILED, f"ProgressDeadlineExceeded: {cond.get('message', '')}".strip(), 0
        return PENDING, f"waiting for the pod of Deployment {name}", 0
    pod = sorted(current, key=lambda p: (p.get("created", ""), p.get("name", "")))[-1]
    main = next((c for c in pod.get("containers", []) if c.get("name") == CONTAINER), None)
    restarts = int(main.get("restarts", 0)) if main else 0
    problem = pod_problem(pod)
    if problem is not None and problem.failing:
        return FAILED, f"pod {pod['name']}: {problem.describe()}", restarts
    if problem is not None:
        return PENDING, f"pod {pod['name']}: {problem.describe()}", restarts
    if pod.get("ready"):
        return RUNNING, f"pod {pod['name']} running", restarts
    if main and main.get("running"):
        if restarts:
            return RESTARTING, f"pod {pod['name']}: job restarted ({restarts} restarts), Flink job not running yet", restarts
        return PENDING, f"pod {pod['name']}: starting the Flink job", restarts
    waiting = (main or {}).get("waiting") or {}
    step = waiting.get("reason") or pod.get("phase") or "Pending"
    return PENDING, f"pod {pod['name']}: {step}", restarts


class KubernetesEngine:
    name = "kubernetes"

    def __init__(self, kube: Kube | None = None):
        self._kube = kube

    @property
    def kube(self) -> Kube:
        if self._kube is None:  # the operator's own credentials, on first use
            self._kube = Kube()
        return self._kube

    # --- the AnalyticsEngine interface ---------------------------------------------------------

    def ensure(self, request: JobRequest, current: JobStatus | None = None, *,
               pods: Sequence[Mapping[str, Any]] | None = None, kube: Kube | None = None) -> JobStatus:
        """Apply the job's Deployment when it differs, then read the job's state. ``pods``: the
        platform's pod summaries (pods.py) from the operator's pod watch; None lists them.
        ``kube``: the reconcile's client, whose reads come from the operator's cache."""
        kube = kube or self.kube
        try:
            deployment = self._apply(kube, request)
            if pods is None:
                pods = self._list_pods(kube, request)
        except ApiException as exc:
            message = f"Kubernetes API: {exc.status} {exc.reason}"
            log.warning("analytics %s: %s", request.key, message)
            state = FAILED if exc.status in (400, 403, 422) else UNKNOWN
            base = current or JobStatus(job_id=None, state=state, spec_hash=request.spec_hash)
            return base.evolve(state=state, message=message)
        except Exception as exc:  # noqa: BLE001 - an unreachable apiserver: say so, retry next time
            base = current or JobStatus(job_id=None, state=UNKNOWN, spec_hash=request.spec_hash)
            return base.evolve(state=UNKNOWN, message=f"Kubernetes API unavailable: {exc}")
        state, message, restarts = job_state(request, deployment, pods)
        job_id = kubernetes_job_id(request)
        if current is not None and current.job_id == job_id:
            return current.evolve(state=state, message=message, spec_hash=request.spec_hash, restarts=restarts)
        return JobStatus(job_id=job_id, state=state, message=message, spec_hash=request.spec_hash, restarts=restarts)

    def cancel(self, request: JobRequest, current: JobStatus | None = None) -> None:
        """Scale the job's Deployment to 0 (SIGTERM: the job cancels itself, checkpoints kept)."""
        path = f"/apis/apps/v1/namespaces/{request.namespace}/deployments/{deployment_name(request)}"
        try:
            self.kube.write("PATCH", "Deployment", path, body={"spec": {"replicas": 0}},
                            query=[("fieldManager", "ticketplatform-operator")],
                            content_type="application/merge-patch+json")
            log.info("analytics %s: scaled %s to 0", request.key, deployment_name(request))
        except ApiException as exc:
            if exc.status != 404:
                raise

    # --- internals -----------------------------------------------------------------------------

    def _apply(self, kube: Kube, request: JobRequest) -> dict[str, Any] | None:
        manifest = render_deployment(request)
        live = kube.get("Deployment", request.namespace, manifest["metadata"]["name"])
        if live is not None and contains(manifest, live):
            return live
        log.info("analytics %s: applying Deployment %s (spec %s)", request.key, manifest["metadata"]["name"],
                 request.spec_hash[:8])
        return kube.apply(manifest)

    def _list_pods(self, kube: Kube, request: JobRequest) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in _labels(request)[0].items())
        return [summarize(p) for p in kube.list("Pod", request.namespace, selector)]


__all__ = ["KubernetesEngine", "render_deployment", "job_state", "job_env", "deployment_name", "kubernetes_job_id"]
