"""One reconcile of one TicketPlatform: spec -> render -> apply -> observe -> status.

Kopf-free, so tests and the CLI can drive it; handlers.py only schedules it."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import pydantic
from kubernetes.client.rest import ApiException

from . import metrics, render
from .apply import apply_children
from .kube import Kube
from .model import describe_validation_error
from .observe import deployments_condition, observe
from .status import CondResult, build_status, same_status
from .subsystems import Subsystems

log = logging.getLogger(__name__)
SERVICEMONITOR_CRD = "servicemonitors.monitoring.coreos.com"


@dataclass
class Outcome:
    status: dict[str, Any]
    written: bool
    phase: str


def reconcile(kube: Kube, body: dict[str, Any], subsystems: Subsystems,
              emit: Callable[[str, str, str], None] | None = None,
              pods: list[dict[str, Any]] | None = None) -> Outcome:
    """Bring one TicketPlatform's children in line and record its status. Writes only on change.

    `pods`: summaries of the platform's pods from the operator's pod watch (pods.STORE); None
    makes observe and the kubernetes analytics engine list them from the apiserver."""
    started = time.monotonic()
    meta = body["metadata"]
    generation = meta.get("generation")
    previous = body.get("status") or {}
    try:
        platform = render.platform_from_object(body)
    except pydantic.ValidationError as exc:
        # The last good spec stays in force: children are left as they are.
        message = describe_validation_error(exc)
        results = [CondResult("DeploymentsReady", "Unknown", "InvalidSpec", message)]
        return _record(kube, body, previous, generation, results, emit, started)

    results: list[CondResult] = []
    monitoring_on = platform.spec.monitoring.enabled
    monitors_installed = kube.has_crd(SERVICEMONITOR_CRD)
    monitoring_available = monitoring_on and monitors_installed
    desired = render.render(platform, include_monitoring=monitoring_available)
    prunable = ("HorizontalPodAutoscaler", "PodDisruptionBudget") + (("ServiceMonitor",) if monitors_installed else ())
    try:
        report = apply_children(kube, platform, desired, prunable=prunable)
    except ApiException as exc:
        metrics.RECONCILE_ERRORS.labels(reason="ApplyFailed").inc()
        results.append(CondResult("DeploymentsReady", "False", "ApplyFailed", f"{exc.status} {exc.reason}: {_api_message(exc)}"))
        report = None
    if report and report.changed:
        log.info("children applied", extra={"platform": f"{platform.namespace}/{platform.name}",
                                            "children_created": report.created, "children_updated": report.updated,
                                            "children_deleted": report.deleted})

    obs = observe(kube, platform, pods)
    if report is not None:
        results.append(deployments_condition(obs))

    if not monitoring_on:
        results.append(CondResult("MonitoringReady", "True", "Disabled", "spec.monitoring.enabled is false."))
    elif monitoring_available:
        results.append(CondResult("MonitoringReady", "True", "ServiceMonitorApplied", "ServiceMonitor selects the four services' /metrics."))
    else:
        results.append(CondResult("MonitoringReady", "False", "ServiceMonitorCRDNotInstalled",
                                  f"CRD {SERVICEMONITOR_CRD} is not installed (Prometheus Operator); ServiceMonitor skipped."))
    topics_cond, topics = subsystems.topics(platform.spec)
    analytics_cond, analytics = subsystems.analytics(platform.namespace, platform.name, platform.spec,
                                                     previous.get("analytics"), uid=platform.uid, pods=pods)
    results += [topics_cond, analytics_cond]
    return _record(kube, body, previous, generation, results, emit, started,
                   services={k: v.model_dump() for k, v in obs.services.items()}, ready_services=obs.ready_count,
                   url=obs.url, topics=topics, analytics=analytics)


def _api_message(exc: ApiException) -> str:
    import json

    try:
        return json.loads(exc.body).get("message", "")
    except (TypeError, ValueError):
        return str(exc.body)[:300]


def _record(kube: Kube, body: dict[str, Any], previous: dict[str, Any], generation: int | None,
            results: list[CondResult], emit: Callable[[str, str, str], None] | None, started: float,
            **parts: Any) -> Outcome:
    status = build_status(previous, generation, results, **parts)
    written = False
    if not same_status(previous, status):
        meta = body["metadata"]
        kube.patch_status("TicketPlatform", meta["namespace"], meta["name"], status)
        written = True
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    before = previous.get("phase")
    if emit and before != status["phase"]:
        emit("Warning" if status["phase"] in ("Failed", "Degraded") else "Normal", "PhaseChanged",
             f"{before or 'New'} -> {status['phase']}: {ready['message']}")
    metrics.RECONCILES.labels(result=status["phase"]).inc()
    metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
    return Outcome(status=status, written=written, phase=status["phase"])
