"""The status recorder: subsystem results -> conditions -> phase -> one status write, following
the API conventions. It owns everything about status: building it, comparing it with what is
recorded, writing it (only on change), remembering what it wrote until the watch delivers it, and
the Events that go with it (every phase transition, every new error reason).

Each subsystem reports one condition (DeploymentsReady, MonitoringReady, TopicsReady,
AnalyticsReady); they roll up into Ready. lastTransitionTime only moves when a status changes."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any, Callable

from . import metrics
from .model import Condition, TicketPlatformStatus

# Reasons that describe a subsystem the operator does not (yet) manage or deliberately skipped:
# they are reported but do not hold the platform back from Ready.
NEUTRAL_REASONS = {"Disabled", "ServiceMonitorCRDNotInstalled", "KafkaNotConfigured"}
# Failures of a subsystem the operator manages: they degrade the platform. (A step that raised also
# degrades it, whatever its reason: see CondResult.error.)
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
    error: bool = False  # a failure (an exception in its step): degrades the platform

    @property
    def failing(self) -> bool:
        return self.status != "True" and (self.error or self.reason in ERROR_REASONS)


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
    errors = [r for r in blocking if r.failing]
    first = (errors or blocking)[0]
    message = "; ".join(f"{r.type}: {r.message or r.reason}" for r in blocking)
    return CondResult("Ready", "False", first.reason, message), ("Degraded" if errors else "Progressing")


def build_status(previous: dict[str, Any] | None, generation: int | None, results: list[CondResult],
                 fields: dict[str, Any]) -> dict[str, Any]:
    """The whole status: conditions and phase from `results`, the other fields (services, url,
    topics, kafka, analytics, ...) as the steps reported them or carried over from `previous`."""
    previous = previous or {}
    ready, phase = roll_up(results)
    status = TicketPlatformStatus(
        phase=phase,
        observedGeneration=generation,
        conditions=_merge_conditions(previous.get("conditions", []), [ready, *results], generation),
        **fields,
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


@dataclass
class Outcome:
    status: dict[str, Any]
    written: bool
    phase: str


class StatusRecorder:
    """One platform's status writer. `emit(type, reason, message)` posts a Kubernetes Event."""

    def __init__(self, kube: Any, emit: Callable[[str, str, str], None] | None = None):
        self.kube = kube
        self.emit = emit
        self._written_rv: str | None = None  # resourceVersion our last write was based on
        self._written: dict[str, Any] | None = None

    def current(self, body: dict[str, Any]) -> dict[str, Any]:
        """The status to build on. Until the watch delivers our own last write, the object still
        shows the status before it: trust what we wrote over that stale view."""
        if self._written_rv and body["metadata"].get("resourceVersion") == self._written_rv:
            return self._written or {}
        return body.get("status") or {}

    def record(self, body: dict[str, Any], results: list[CondResult], fields: dict[str, Any],
               started: float | None = None) -> Outcome:
        meta = body["metadata"]
        previous = self.current(body)
        status = build_status(previous, meta.get("generation"), results, fields)
        written = False
        if not same_status(previous, status):
            self.kube.patch_status("TicketPlatform", meta["namespace"], meta["name"], status)
            self._written_rv, self._written = meta.get("resourceVersion"), status
            written = True
        self._post_events(previous, status, results)
        metrics.RECONCILES.labels(result=status["phase"]).inc()
        if started is not None:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        return Outcome(status=status, written=written, phase=status["phase"])

    def _post_events(self, previous: dict[str, Any], status: dict[str, Any], results: list[CondResult]) -> None:
        if not self.emit:
            return
        before = {c.get("type"): c for c in previous.get("conditions") or []}
        for r in results:
            old = before.get(r.type) or {}
            if r.failing and (old.get("reason") != r.reason or old.get("status") == "True"):
                self.emit("Warning", r.reason, f"{r.type}: {r.message}"[:1024])
        if previous.get("phase") != status["phase"]:
            ready = next(c for c in status["conditions"] if c["type"] == "Ready")
            self.emit("Warning" if status["phase"] in ("Failed", "Degraded") else "Normal", "PhaseChanged",
                      f"{previous.get('phase') or 'New'} -> {status['phase']}: {ready['message']}"[:1024])
