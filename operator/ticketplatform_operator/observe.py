"""Observe: read the live children and turn them into facts for the status (no writes)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .kube import Kube
from .model import SERVICE_NAMES, ServiceStatus
from .render import Platform, SERVICE_PORT


@dataclass
class Observation:
    services: dict[str, ServiceStatus] = field(default_factory=dict)
    not_ready: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)  # rollouts past their progress deadline
    url: str | None = None

    @property
    def ready_count(self) -> int:
        return len(SERVICE_NAMES) - len(self.not_ready)


def _deployment_status(dep: dict[str, Any] | None, floor: int) -> tuple[ServiceStatus, bool, bool]:
    """`floor` is the autoscaler's minReplicas: until the HPA has scaled up to it, not ready."""
    if dep is None:
        return ServiceStatus(ready=0, desired=floor), False, False
    spec, st = dep.get("spec", {}), dep.get("status", {})
    desired = max(spec.get("replicas", 1), floor)
    ready = st.get("readyReplicas", 0)
    current = st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)
    updated = st.get("updatedReplicas", 0) >= desired
    is_ready = current and updated and ready >= desired
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


def observe(kube: Kube, platform: Platform) -> Observation:
    obs = Observation()
    for name, svc in platform.spec.services.by_name().items():
        floor = svc.autoscaling.minReplicas if svc.autoscaling.enabled else 0
        status, ready, stalled = _deployment_status(kube.get("Deployment", platform.namespace, platform.child_name(name)), floor)
        obs.services[name] = status
        if not ready:
            obs.not_ready.append(name)
        if stalled:
            obs.stalled.append(name)
    obs.url = frontend_url(platform, kube.get("Service", platform.namespace, platform.child_name("frontend")))
    return obs
