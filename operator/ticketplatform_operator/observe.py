"""Observe: read the live children and turn them into facts for the status (no writes).

Pods come from the operator's pod watch (its pod store, a snapshot handed in by the reconcile loop);
without one (the CLI, tests driving reconcile directly) they are listed once per observe."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .kube import Kube
from .model import SERVICE_NAMES, ServiceStatus
from .pods import component_problem, summarize
from .render import RELAY, Platform, SERVICE_PORT, platform_labels
from .status import CondResult


@dataclass
class Observation:
    services: dict[str, ServiceStatus] = field(default_factory=dict)
    not_ready: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)  # rollouts past their progress deadline
    url: str | None = None
    # Per not-ready service, what its pods say: "CrashLoopBackOff (back-off 10s ...)"; failing
    # (cannot start, keeps crashing) or only waiting (cannot be scheduled).
    failing: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)

    @property
    def ready_count(self) -> int:
        # The N of "N/M": the services only (the outbox relay counts toward DeploymentsReady).
        return len([n for n in SERVICE_NAMES if n not in self.not_ready])


def _deployment_status(dep: dict[str, Any] | None, floor: int) -> tuple[ServiceStatus, bool, bool]:
    """`floor` is the autoscaler's minReplicas: until the HPA has scaled up to it, not ready."""
    if dep is None:
        return ServiceStatus(ready=0, desired=floor), False, False
    spec, st = dep.get("spec", {}), dep.get("status", {})
    desired = max(spec.get("replicas", 1), floor)
    ready = st.get("readyReplicas", 0)
    current = st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
    updated = st.get("updatedReplicas", 0) >= desired
    # No pod of an older template left: a rollout whose new pods crash keeps the old ones serving,
    # and the service must not look ready (its pods' reasons then reach status).
    rolled_out = st.get("replicas", 0) <= st.get("updatedReplicas", 0)
    is_ready = current and updated and rolled_out and ready >= desired
    stalled = any(c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
                  for c in st.get("conditions", []))
    return ServiceStatus(ready=ready, desired=desired), is_ready, stalled


def frontend_url(platform: Platform, frontend_service: dict[str, Any] | None) -> str | None:
    if platform.spec.url:
        return platform.spec.url
    if frontend_service is None:
        return None
    for ingress in frontend_service.get("status", {}).get("loadBalancer", {}).get("ingress", []) or []:
        host = ingress.get("hostname") or ingress.get("ip")
        if host:
            return f"http://{host}"
    return f"http://{platform.child_name('frontend')}.{platform.namespace}.svc:{SERVICE_PORT}"


def pod_problems(obs: Observation, pods: Sequence[dict[str, Any]]) -> None:
    """Fill obs.failing / obs.waiting for the services that are not ready, from pod summaries."""
    for name in obs.not_ready:
        found = component_problem(pods, name)
        if found is None:
            continue
        problem, count = found
        text = problem.describe() + (f" [{count} pods]" if count > 1 else "")
        (obs.failing if problem.failing else obs.waiting)[name] = text


def deployments_condition(obs: Observation) -> CondResult:
    """DeploymentsReady from what was observed. A service whose pods cannot start or keep failing
    makes it False with reason ServiceFailing (the platform is Degraded, never Ready) and a message
    naming the service and the kubelet's reason and message."""
    if obs.failing:
        return CondResult("DeploymentsReady", "False", "ServiceFailing",
                          "; ".join(f"{n}: {text}" for n, text in obs.failing.items()))
    if obs.stalled:
        return CondResult("DeploymentsReady", "False", "RolloutStalled", f"rollout past its deadline: {', '.join(obs.stalled)}")
    if obs.not_ready:
        detail = ", ".join(f"{n} {obs.services[n].ready}/{obs.services[n].desired}"
                           + (f" ({obs.waiting[n]})" if n in obs.waiting else "") for n in obs.not_ready)
        return CondResult("DeploymentsReady", "False", "ServicesNotReady", f"waiting for {detail}")
    return CondResult("DeploymentsReady", "True", "AllServicesReady", "All services and the outbox relay have their replicas ready.")


def list_pods(kube: Kube, platform: Platform) -> list[dict[str, Any]]:
    """The platform's pods as summaries, straight from the apiserver (when no watch feeds a store)."""
    selector = ",".join(f"{k}={v}" for k, v in platform_labels(platform).items())
    return [summarize(p) for p in kube.list("Pod", platform.namespace, selector)]


def observe(kube: Kube, platform: Platform, pods: Sequence[dict[str, Any]] | None = None) -> Observation:
    """`pods`: the platform's pod summaries from the pod watch; None lists them (only when needed)."""
    obs = Observation()
    for name, svc in platform.spec.services.by_name().items():
        floor = svc.autoscaling.minReplicas if svc.autoscaling.enabled else 0
        status, ready, stalled = _deployment_status(kube.get("Deployment", platform.namespace, platform.child_name(name)), floor)
        obs.services[name] = status
        if not ready:
            obs.not_ready.append(name)
        if stalled:
            obs.stalled.append(name)
    # The outbox relay (replicas 1, or 0 without Kafka) is part of DeploymentsReady as "outbox-relay".
    status, ready, stalled = _deployment_status(kube.get("Deployment", platform.namespace, platform.child_name(RELAY)), 0)
    obs.services[RELAY] = status
    if not ready:
        obs.not_ready.append(RELAY)
    if stalled:
        obs.stalled.append(RELAY)
    obs.url = frontend_url(platform, kube.get("Service", platform.namespace, platform.child_name("frontend")))
    if obs.not_ready:
        pod_problems(obs, list_pods(kube, platform) if pods is None else pods)
    return obs
