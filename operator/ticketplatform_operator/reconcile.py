"""One reconcile of one TicketPlatform: spec -> render -> apply -> observe -> status.

Three steps, each owning its conditions and its fields of status:

    children   render, apply, observe  -> DeploymentsReady, MonitoringReady; services, url
    topics     Kafka topics            -> TopicsReady; topics, kafka
    analytics  the Flink job           -> AnalyticsReady; analytics

Whatever a step raises becomes a failing condition of that step (a CamelCase reason, a message
naming the external system) while the others go on, and status is always recorded; the step is
then retried with back-off (retry.py), not at every resync. An invalid spec changes nothing: the
last good spec stays in force and status keeps what it knew about the outside world (the job, the
topics), so that deletion can still clean them up.

Kopf-free, so tests and the CLI can drive it; handlers.py only schedules it."""
from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import pydantic
from kubernetes.client.rest import ApiException

from . import metrics, render
from .apply import apply_children
from .kube import Kube
from .model import SERVICE_NAMES, KafkaStatus, TicketPlatformStatus, describe_validation_error
from .observe import deployments_condition, observe
from .retry import StepRetry
from .status import CondResult, Outcome, StatusRecorder
from .subsystems import Subsystems

log = logging.getLogger(__name__)
SERVICEMONITOR_CRD = "servicemonitors.monitoring.coreos.com"
MESSAGE_LIMIT = 1000
_CAMEL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class Step:
    name: str
    conditions: tuple[str, ...]   # the first one reports the step's failure
    fields: tuple[str, ...]       # the status fields the step fills
    system: str                   # what the step talks to, for failure messages
    run: Callable[[], tuple[list[CondResult], dict[str, Any]]]


def reconcile(kube: Kube, body: dict[str, Any], subsystems: Subsystems,
              recorder: StatusRecorder | None = None, pods: list[dict[str, Any]] | None = None,
              retry: StepRetry | None = None) -> Outcome:
    """Bring one TicketPlatform's children in line and record its status. Writes only on change.

    `pods`: summaries of the platform's pods from the operator's pod watch; None makes observe and
    the kubernetes analytics engine list them. `retry`: the platform's back-off memory (None: every
    step runs)."""
    started = time.monotonic()
    recorder = recorder or StatusRecorder(kube)
    previous = recorder.current(body)
    if retry is not None:  # a new spec is tried at once, whatever failed before
        retry.new_generation(body["metadata"].get("generation"))
    try:
        platform = render.platform_from_object(body)
    except pydantic.ValidationError as exc:
        # The last good spec stays in force: children, topics and the job are left as they are.
        results = [CondResult("DeploymentsReady", "Unknown", "InvalidSpec", describe_validation_error(exc))]
        return recorder.record(body, results, _carried(previous, tuple(TicketPlatformStatus.model_fields)), started)
    spec = platform.spec
    steps = (
        Step("children", ("DeploymentsReady", "MonitoringReady"), ("services", "readyServices", "url"),
             "Kubernetes API", lambda: _children(kube, platform, pods)),
        Step("topics", ("TopicsReady",), ("topics", "kafka"), "Kafka", lambda: _topics(subsystems, platform)),
        Step("analytics", ("AnalyticsReady",), ("analytics",), f"analytics engine {spec.analytics.engine}",
             lambda: _analytics(subsystems, kube, platform, previous, pods)),
    )
    results: list[CondResult] = []
    fields: dict[str, Any] = {}
    for step in steps:
        conditions, step_fields = _run(step, platform, previous, retry)
        results += conditions
        fields.update(step_fields)
    return recorder.record(body, results, fields, started)


def _run(step: Step, platform: render.Platform, previous: dict[str, Any],
         retry: StepRetry | None) -> tuple[list[CondResult], dict[str, Any]]:
    waiting = retry.waiting(step.name) if retry else None
    if waiting is not None:
        return waiting.carried
    try:
        outcome = step.run()
    except Exception as exc:  # noqa: BLE001 - every failure must end in status
        reason, message = describe_failure(exc, step.system)
        metrics.RECONCILE_ERRORS.labels(reason=reason).inc()
        delay = retry.failed(step.name) if retry else None
        log.warning(f"{step.name} failed: {message}", exc_info=not (retry and retry.failures[step.name].count > 1),
                    extra={"platform": f"{platform.namespace}/{platform.name}", "step": step.name, "reason": reason})
        if delay is not None:
            message += f" Retrying in {delay:.0f}s."
        failed = CondResult(step.conditions[0], "False", reason, message, error=True)
        others = [_carried_condition(previous, t) for t in step.conditions[1:]]
        carried = ([failed, *others], _carried(previous, step.fields))
        if retry:
            retry.carry(step.name, *carried)
        return carried
    if retry:
        retry.succeeded(step.name)
    return outcome


def describe_failure(exc: BaseException, system: str) -> tuple[str, str]:
    """A CamelCase reason and a one-line message naming the system for an exception of a step."""
    if isinstance(exc, ApiException):
        return "ApplyFailed", f"{system}: {exc.status} {exc.reason}: {_api_message(exc)}"[:MESSAGE_LIMIT]
    name = type(exc).__name__
    reason = name if _CAMEL_CASE.match(name) else "UnexpectedError"
    text = " ".join(str(exc).split()) or name
    if reason != name:  # the reason no longer names the exception: the message does
        text = f"{name}: {text}"
    if not text.startswith(system.split()[0]):
        text = f"{system}: {text}"
    return reason, text[:MESSAGE_LIMIT]


def _api_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body).get("message", "")
    except (TypeError, ValueError):
        return str(exc.body)[:300]


def _carried(previous: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Status fields kept from the last status (those it has), for a step that could not run."""
    keep = set(fields) - {"phase", "observedGeneration", "conditions"}
    return {k: v for k, v in previous.items() if k in keep and v is not None}


def _carried_condition(previous: dict[str, Any], type_: str) -> CondResult:
    old = next((c for c in previous.get("conditions") or [] if c.get("type") == type_), None)
    if old is None:
        return CondResult(type_, "Unknown", "NotObserved", "Not observed yet.")
    return CondResult(type_, old.get("status", "Unknown"), old.get("reason", "NotObserved"), old.get("message", ""))


# ---- the steps ----------------------------------------------------------------------------------

def _children(kube: Kube, platform: render.Platform,
              pods: list[dict[str, Any]] | None) -> tuple[list[CondResult], dict[str, Any]]:
    monitoring_on = platform.spec.monitoring.enabled
    monitors_installed = kube.has_crd(SERVICEMONITOR_CRD)
    desired = render.render(platform, include_monitoring=monitoring_on and monitors_installed)
    prunable = ("HorizontalPodAutoscaler", "PodDisruptionBudget") + (("ServiceMonitor",) if monitors_installed else ())
    report = apply_children(kube, platform, desired, prunable=prunable)
    if report.changed:
        log.info("children applied", extra={"platform": f"{platform.namespace}/{platform.name}",
                                            "children_created": report.created, "children_updated": report.updated,
                                            "children_deleted": report.deleted})
    obs = observe(kube, platform, pods)
    if not monitoring_on:
        monitoring = CondResult("MonitoringReady", "True", "Disabled", "spec.monitoring.enabled is false.")
    elif monitors_installed:
        monitoring = CondResult("MonitoringReady", "True", "ServiceMonitorApplied", "ServiceMonitor selects the services' /metrics.")
    else:
        monitoring = CondResult("MonitoringReady", "False", "ServiceMonitorCRDNotInstalled",
                                f"CRD {SERVICEMONITOR_CRD} is not installed (Prometheus Operator); ServiceMonitor skipped.")
    fields = {"services": {k: v.model_dump() for k, v in obs.services.items()},
              "readyServices": f"{obs.ready_count}/{len(SERVICE_NAMES)}", "url": obs.url}
    return [deployments_condition(obs), monitoring], fields


def _topics(subsystems: Subsystems, platform: render.Platform) -> tuple[list[CondResult], dict[str, Any]]:
    kafka = platform.spec.kafka
    condition, topics = subsystems.topics(platform.spec)
    # Recorded for deletion: it must apply this policy even if the spec later becomes invalid.
    recorded = KafkaStatus(bootstrapServers=kafka.bootstrapServers, deletionPolicy=kafka.deletionPolicy)
    return [condition], {"topics": topics, "kafka": recorded}


def _analytics(subsystems: Subsystems, kube: Kube, platform: render.Platform, previous: dict[str, Any],
               pods: list[dict[str, Any]] | None) -> tuple[list[CondResult], dict[str, Any]]:
    condition, analytics = subsystems.analytics(platform.namespace, platform.name, platform.spec,
                                                previous.get("analytics"), uid=platform.uid, pods=pods, kube=kube)
    return [condition], {"analytics": analytics}
