"""Thin Kopf handlers. Each TicketPlatform gets one reconcile loop (a Kopf daemon), so one writer
acts per object. The loop re-checks every resync interval (level-based repair of drift) and at
once when the object or one of its children changes (a watch on the children kicks its owner)."""
from __future__ import annotations

import copy
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import kopf
import prometheus_client

from . import metrics, model
from .kube import Kube
from .reconcile import reconcile
from .render import MANAGED_BY

log = logging.getLogger(__name__)

RESYNC_SECONDS = float(os.environ.get("TP_RESYNC_SECONDS", "30"))
KICK_DEBOUNCE_SECONDS = 0.2
FINALIZER = "ticketing.io/finalizer"
CHILD_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY}


@dataclass
class LoopState:
    kick: threading.Event
    last_tick: float
    written_rv: str | None = None  # resourceVersion our last status write was based on
    written_status: dict[str, Any] | None = None


_loops: dict[tuple[str, str], LoopState] = {}
_loops_lock = threading.Lock()
_kube: Kube | None = None


def _kube_client() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube()
    return _kube


def _loop(namespace: str, name: str) -> LoopState:
    with _loops_lock:
        return _loops.setdefault((namespace, name), LoopState(threading.Event(), time.monotonic()))


def _kick(namespace: str | None, name: str | None) -> None:
    if namespace and name:
        with _loops_lock:
            state = _loops.get((namespace, name))
        if state:
            state.kick.set()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ticketing.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="ticketing.io")
    # Re-open watches regularly: a watch that silently stops is a known failure mode.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.posting.level = logging.INFO
    port = int(os.environ.get("OPERATOR_METRICS_PORT", "0"))
    if port:
        prometheus_client.start_http_server(port, addr=os.environ.get("OPERATOR_METRICS_ADDR", "0.0.0.0"))


@kopf.daemon(model.GROUP, model.VERSION, model.PLURAL, cancellation_timeout=10)
def reconcile_loop(stopped: kopf.DaemonStopped, body: kopf.Body, namespace: str, name: str,
                   logger: logging.Logger, **_: Any) -> None:
    state = _loop(namespace, name)
    kube = _kube_client()

    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message)

    while not stopped:
        state.kick.clear()
        snapshot = copy.deepcopy(dict(body))
        # Until the watch delivers our own status write, trust what we wrote over the stale view.
        if state.written_rv and snapshot["metadata"].get("resourceVersion") == state.written_rv:
            snapshot["status"] = state.written_status
        try:
            outcome = reconcile(kube, snapshot, emit=emit)
            if outcome.written:
                state.written_rv = snapshot["metadata"].get("resourceVersion")
                state.written_status = outcome.status
        except Exception as exc:  # noqa: BLE001 - the loop must survive anything and retry
            metrics.RECONCILE_ERRORS.labels(reason=type(exc).__name__).inc()
            logger.exception("reconcile failed; retrying at next kick or resync")
        state.last_tick = time.monotonic()
        deadline = time.monotonic() + RESYNC_SECONDS
        while not stopped and time.monotonic() < deadline:
            if state.kick.wait(0.5):
                time.sleep(KICK_DEBOUNCE_SECONDS)
                break
    with _loops_lock:
        _loops.pop((namespace, name), None)


@kopf.on.event(model.GROUP, model.VERSION, model.PLURAL)
def platform_changed(namespace: str, name: str, **_: Any) -> None:
    _kick(namespace, name)


def _owner_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
    _kick(namespace, labels.get("app.kubernetes.io/instance"))


for _group, _version, _plural in (("apps", "v1", "deployments"), ("", "v1", "services"),
                                  ("autoscaling", "v2", "horizontalpodautoscalers")):
    kopf.on.event(_group, _version, _plural, labels=CHILD_LABELS, id=f"child-{_plural}")(_owner_changed)


@kopf.on.probe(id="reconcile_loops")
def loops_alive(**_: Any) -> int:
    """Liveness: fails when a reconcile loop has gone quiet for several resync intervals."""
    limit = 3 * RESYNC_SECONDS + 60
    with _loops_lock:
        stale = [f"{ns}/{n}" for (ns, n), s in _loops.items() if time.monotonic() - s.last_tick > limit]
    if stale:
        raise kopf.PermanentError(f"reconcile loops quiet for over {limit:.0f}s: {', '.join(stale)}")
    return len(_loops)
