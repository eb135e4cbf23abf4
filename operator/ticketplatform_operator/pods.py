"""Pods of the platforms, as the kubelet reports them: a small summary per pod, a thread-safe store
the pod watch fills (handlers.Runtime.pods), and the pure rule that says why a pod is not running.

The store keeps summaries, not whole pods: a few hundred bytes each, so a benchmark with thousands
of (kwok) pods costs little memory. Reconciles read a snapshot of their platform's pods from it
instead of asking the apiserver on every reconcile.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
NAME_LABEL = "app.kubernetes.io/name"

# Waiting reasons the kubelet gives when a container cannot start or keeps failing. Others
# (ContainerCreating, PodInitializing) are ordinary steps of a start.
FAILING_WAIT_REASONS = frozenset({
    "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "ImageInspectError",
    "RegistryUnavailable", "SignatureValidationFailed", "CrashLoopBackOff", "CreateContainerConfigError",
    "CreateContainerError", "RunContainerError", "PreStartHookError", "PostStartHookError",
    "PreCreateHookError", "ContainerCannotRun",
})
MESSAGE_LIMIT = 300


def _one_line(text: str | None, limit: int = MESSAGE_LIMIT) -> str:
    """A kubelet message on one line (a FallbackToLogsOnError message is the log's tail: keep its end)."""
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    text = lines[-1] if len(lines) > 1 else lines[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a pod that status needs, as plain data (JSON-able, cheap to copy)."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    status = pod.get("status") or {}
    containers = []
    for kind, key in (("init", "initContainerStatuses"), ("main", "containerStatuses")):
        for cs in status.get(key) or []:
            state, last = cs.get("state") or {}, cs.get("lastState") or {}
            entry: dict[str, Any] = {"name": cs.get("name", ""), "kind": kind, "ready": bool(cs.get("ready")),
                                     "restarts": int(cs.get("restartCount") or 0)}
            if "waiting" in state:
                entry["waiting"] = {"reason": state["waiting"].get("reason", ""),
                                    "message": _one_line(state["waiting"].get("message"))}
            elif "terminated" in state:
                entry["terminated"] = _terminated(state["terminated"])
            elif "running" in state:
                entry["running"] = True
            if "terminated" in last:
                entry["last"] = _terminated(last["terminated"])
            containers.append(entry)
    scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    return {
        "uid": meta.get("uid", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "instance": labels.get(INSTANCE_LABEL, ""),
        "component": labels.get(COMPONENT_LABEL) or labels.get(NAME_LABEL, ""),
        "annotations": {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("ticketing.io/")},
        "created": meta.get("creationTimestamp", ""),
        "deleting": bool(meta.get("deletionTimestamp")),
        "phase": status.get("phase", ""),
        "reason": status.get("reason", ""),
        "message": _one_line(status.get("message")),
        "unschedulable": (_one_line(scheduled.get("message")) or "Unschedulable")
        if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable" else "",
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []),
        "containers": containers,
    }


def _terminated(t: Mapping[str, Any]) -> dict[str, Any]:
    return {"reason": t.get("reason", ""), "exitCode": t.get("exitCode"), "message": _one_line(t.get("message"))}


@dataclass(frozen=True)
class PodProblem:
    """Why one pod is not running: the kubelet's reason (CamelCase) and its message."""

    pod: str
    container: str
    reason: str
    message: str
    failing: bool   # True: the container cannot start or keeps failing; False: only waiting (unschedulable)

    def describe(self) -> str:
        return f"{self.reason} ({self.message})" if self.message else self.reason


def _exit_text(t: Mapping[str, Any]) -> str:
    parts = [f"exit code {t.get('exitCode')}"]
    if t.get("message"):
        parts.append(t["message"])
    return ", ".join(parts)


def pod_problem(pod: Mapping[str, Any]) -> PodProblem | None:
    """The first reason this pod (a summary) is not running, or None when nothing is wrong yet.

    A container that is Waiting with a failing reason (image not there, crash loop, bad config) or
    has Terminated with an error is failing; so is one that runs, not ready, after exiting with an
    error (between two crash-loop back-offs), so the platform does not flap between Degraded and
    Progressing while the kubelet restarts it. A pod the scheduler cannot place is waiting."""
    # A pod on its way out, or one that has ended (an evicted pod lingers as Failed while its
    # replacement runs), is not what keeps the service from being ready.
    if pod.get("deleting") or pod.get("phase") in ("Succeeded", "Failed"):
        return None
    name = pod.get("name", "")
    for c in pod.get("containers") or []:
        waiting, terminated, last = c.get("waiting"), c.get("terminated"), c.get("last")
        if waiting and waiting.get("reason") in FAILING_WAIT_REASONS:
            message = waiting.get("message", "")
            if waiting["reason"] == "CrashLoopBackOff" and last:
                message = "; ".join(p for p in (message, f"last {last.get('reason') or 'exit'}: {_exit_text(last)}") if p)
            return PodProblem(name, c["name"], waiting["reason"], message, True)
        if terminated and terminated.get("exitCode") not in (0, None):
            return PodProblem(name, c["name"], terminated.get("reason") or "Error", _exit_text(terminated), True)
        if c.get("running") and not c.get("ready") and c.get("restarts") and last and last.get("exitCode") not in (0, None):
            return PodProblem(name, c["name"], last.get("reason") or "Error",
                              f"restarted {c['restarts']} times, last {_exit_text(last)}", True)
    if pod.get("unschedulable"):
        return PodProblem(name, "", "Unschedulable", pod["unschedulable"], False)
    return None


def component_problem(pods: Iterable[Mapping[str, Any]], component: str) -> tuple[PodProblem, int] | None:
    """The problem to report for one component (a service): failing pods first, the oldest first
    (stable while the kubelet retries), and how many of its pods have a problem of that kind."""
    problems = [(p.get("created", ""), p.get("name", ""), prob) for p in pods
                if p.get("component") == component and (prob := pod_problem(p)) is not None]
    if not problems:
        return None
    failing = [x for x in problems if x[2].failing]
    chosen = sorted(failing or problems, key=lambda x: (x[0], x[1]))
    return chosen[0][2], len(chosen)


class PodStore:
    """Pod summaries by (namespace, platform name), filled from the pod watch; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_owner: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._owner_of: dict[str, tuple[str, str]] = {}

    def update(self, pod: Mapping[str, Any]) -> tuple[str, str] | None:
        """Record a pod (ADDED/MODIFIED/listed); returns its platform when what status needs changed."""
        summary = summarize(pod)
        uid, owner = summary["uid"], (summary["namespace"], summary["instance"])
        if not uid or not summary["instance"]:
            return None
        with self._lock:
            old_owner = self._owner_of.get(uid)
            if old_owner and old_owner != owner:
                self._by_owner.get(old_owner, {}).pop(uid, None)
            pods = self._by_owner.setdefault(owner, {})
            if pods.get(uid) == summary:
                return None
            pods[uid] = summary
            self._owner_of[uid] = owner
        return owner

    def remove(self, pod: Mapping[str, Any]) -> tuple[str, str] | None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        with self._lock:
            owner = self._owner_of.pop(uid, None)
            if owner is None:
                return None
            pods = self._by_owner.get(owner, {})
            pods.pop(uid, None)
            if not pods:
                self._by_owner.pop(owner, None)
        return owner

    def snapshot(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The platform's pods, as summaries the caller may keep (the store replaces, never mutates, them)."""
        with self._lock:
            return list(self._by_owner.get((namespace, name), {}).values())

