"""Status recorder: subsystem results -> conditions -> phase, following the API conventions.

Each subsystem reports one condition (DeploymentsReady, MonitoringReady, TopicsReady,
AnalyticsReady); they roll up into Ready. lastTransitionTime only moves when a status changes."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .model import SERVICE_NAMES, AnalyticsStatus, Condition, TicketPlatformStatus, TopicState

SUBSYSTEMS = ("DeploymentsReady", "MonitoringReady", "TopicsReady", "AnalyticsReady")
# Reasons that describe a subsystem the operator does not (yet) manage or deliberately skipped:
# they are reported but do not hold the platform back from Ready.
NEUTRAL_REASONS = {"Disabled", "ServiceMonitorCRDNotInstalled", "KafkaNotConfigured"}
ERROR_REASONS = {"ApplyFailed", "KafkaUnavailable", "ShrinkRefused", "ReplicationChangeRefused", "TopicError",
                 "JobFailed", "EngineUnavailable", "RolloutStalled", "ServiceFailing"}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class CondResult:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str = ""


def _merge_conditions(previous: list[dict[str, Any]], results: list[CondResult], generation: int | None) -> list[Condition]:
    before = {c.get("type"): c for c in previous or []}
    out = []
    for r in results:
        old = before.get(r.type)
        moved = old is None or old.get("status") != r.status
        out.append(Condition(
            type=r.type, status=r.status, reason=r.reason, message=r.message,
            lastTransitionTime=now() if moved else old.get("lastTransitionTime") or now(),
            observedGeneration=generation,
        ))
    return out


def roll_up(results: list[CondResult]) -> tuple[CondResult, str]:
    """The Ready condition and the phase from the subsystem conditions."""
    if any(r.reason == "InvalidSpec" for r in results):
        bad = next(r for r in results if r.reason == "InvalidSpec")
        return CondResult("Ready", "False", "InvalidSpec", bad.message), "Failed"
    blocking = [r for r in results if r.status != "True" and r.reason not in NEUTRAL_REASONS]
    if not blocking:
        return CondResult("Ready", "True", "AllSubsystemsReady", "All services are ready."), "Ready"
    errors = [r for r in blocking if r.reason in ERROR_REASONS]
    first = (errors or blocking)[0]
    message = "; ".join(f"{r.type}: {r.message or r.reason}" for r in blocking)
    return CondResult("Ready", "False", first.reason, message), ("Degraded" if errors else "Progressing")


def build_status(previous: dict[str, Any] | None, generation: int | None, results: list[CondResult],
                 services: dict[str, Any] | None = None, ready_services: int = 0, url: str | None = None,
                 topics: list[TopicState] | None = None, analytics: AnalyticsStatus | None = None) -> dict[str, Any]:
    previous = previous or {}
    ready, phase = roll_up(results)
    status = TicketPlatformStatus(
        phase=phase,
        observedGeneration=generation,
        conditions=_merge_conditions(previous.get("conditions", []), [ready, *results], generation),
        services=services or {},
        readyServices=f"{ready_services}/{len(SERVICE_NAMES)}",
        topics=topics or [],
        analytics=analytics or AnalyticsStatus(),
        url=url,
    )
    # None stays in: written as a merge patch, null removes a field that no longer applies (a
    # cancelled job's jobId), which leaving the key out would not.
    return status.model_dump()


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def same_status(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal apart from keys the operator does not own (e.g. Kopf's own bookkeeping); a null and
    an absent field are the same (the apiserver drops the nulls of a merge patch)."""
    keys = set(TicketPlatformStatus.model_fields)
    strip = lambda s: _without_none({k: v for k, v in (s or {}).items() if k in keys})  # noqa: E731
    return strip(a) == strip(b)
