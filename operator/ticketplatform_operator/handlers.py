"""Thin Kopf handlers. Each TicketPlatform gets one reconcile loop (an async Kopf daemon), so one
writer acts per object. The loop re-checks every resync interval (level-based repair of drift) and
at once when the object or one of its children changes (a watch on the children kicks its owner).

The reconcile itself blocks (Kubernetes, Kafka, Flink clients), so it runs in a bounded thread pool
of its own; the daemons only wait on the event loop, so any number of objects can be watched
without starving Kopf's own executor."""
from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf
import prometheus_client

from . import metrics, model, pods
from .kube import Kube
from .reconcile import reconcile
from .render import MANAGED_BY
from .subsystems import Subsystems

log = logging.getLogger(__name__)

RESYNC_SECONDS = float(os.environ.get("TP_RESYNC_SECONDS", "30"))
RECONCILE_WORKERS = int(os.environ.get("TP_RECONCILE_WORKERS", "8"))
KICK_DEBOUNCE_SECONDS = 0.2
FINALIZER = "ticketing.io/finalizer"
CHILD_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY}


@dataclass
class LoopState:
    last_tick: float
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    written_rv: str | None = None  # resourceVersion our last status write was based on
    written_status: dict[str, Any] | None = None


# Touched only from the event loop's thread.
_loops: dict[tuple[str, str], LoopState] = {}
# Objects whose clean-up has begun: no reconcile may start for them any more.
_deleting: set[tuple[str, str]] = set()
# The reconcile running in the pool for an object, if any. Kopf runs deletion handlers while it is
# still stopping the daemons, and a cancelled daemon does not stop its worker thread: clean-up waits
# for this, or a reconcile in flight could re-create what the clean-up just deleted.
_inflight: dict[tuple[str, str], Future[Any]] = {}
INFLIGHT_WAIT_SECONDS = 120
_phases: dict[tuple[str, str], str] = {}


def _record_phase(key: tuple[str, str], phase: str | None) -> None:
    """Keep the ticketplatform_platforms{phase} gauge equal to the objects this operator runs."""
    if phase is None:
        _phases.pop(key, None)
    else:
        _phases[key] = phase
    for name in ("Pending", "Progressing", "Ready", "Degraded", "Failed"):
        metrics.PLATFORMS.labels(phase=name).set(sum(1 for p in _phases.values() if p == name))
_pool = ThreadPoolExecutor(max_workers=RECONCILE_WORKERS, thread_name_prefix="reconcile")
_kube: Kube | None = None
_subsystems = Subsystems()


def _kube_client() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube()
    return _kube


def _kick(namespace: str | None, name: str | None) -> None:
    state = _loops.get((namespace or "", name or ""))
    if state:
        state.kick.set()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.standalone = True
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="ticketing.io")
    # Kopf records the last handled spec to tell updates apart; leaving labels and annotations out
    # means that metadata edits (Argo CD tracking labels, kubectl label) cost no write.
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="ticketing.io", ignored_fields=["metadata.labels", "metadata.annotations"])
    # Re-open watches regularly: a watch that silently stops is a known failure mode.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.posting.level = logging.INFO
    port = int(os.environ.get("OPERATOR_METRICS_PORT", "0"))
    if port:
        prometheus_client.start_http_server(port, addr=os.environ.get("OPERATOR_METRICS_ADDR", "0.0.0.0"))


@kopf.daemon(model.GROUP, model.VERSION, model.PLURAL, cancellation_timeout=30)
async def reconcile_loop(stopped: kopf.DaemonStopped, body: kopf.Body, namespace: str, name: str,
                         logger: logging.Logger, **_: Any) -> None:
    state = _loops.setdefault((namespace, name), LoopState(last_tick=time.monotonic()))
    kube = _kube_client()

    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message)

    key = (namespace, name)
    try:
        while not stopped:
            state.kick.clear()
            snapshot = copy.deepcopy(dict(body))
            if key in _deleting or snapshot["metadata"].get("deletionTimestamp"):
                break  # never act on an object that is being deleted
            # Until the watch delivers our own status write, trust what we wrote over the stale view.
            if state.written_rv and snapshot["metadata"].get("resourceVersion") == state.written_rv:
                snapshot["status"] = state.written_status
            try:
                # The context carries Kopf's event queue, so emit() works from the worker thread.
                ctx = contextvars.copy_context()
                platform_pods = pods.STORE.snapshot(namespace, name)
                running = _pool.submit(ctx.run, reconcile, kube, snapshot, _subsystems, emit, platform_pods)
                _inflight[key] = running
                outcome = await asyncio.wrap_future(running)
                _inflight.pop(key, None)  # done (a cancelled wait leaves it for the clean-up)
                if outcome.written:
                    state.written_rv = snapshot["metadata"].get("resourceVersion")
                    state.written_status = outcome.status
                _record_phase((namespace, name), outcome.phase)
            except Exception:  # noqa: BLE001 - the loop must survive anything and retry
                metrics.RECONCILE_ERRORS.labels(reason="Exception").inc()
                logger.exception("reconcile failed; retrying at next kick or resync")
            state.last_tick = time.monotonic()
            deadline = time.monotonic() + RESYNC_SECONDS
            while not stopped and time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(state.kick.wait(), timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                await asyncio.sleep(KICK_DEBOUNCE_SECONDS)
                break
    finally:
        _loops.pop((namespace, name), None)
        _record_phase((namespace, name), None)


async def _wait_for_inflight(key: tuple[str, str], logger: logging.Logger) -> None:
    running = _inflight.get(key)
    deadline = time.monotonic() + INFLIGHT_WAIT_SECONDS
    while running is not None and not running.done():
        if time.monotonic() > deadline:
            raise kopf.TemporaryError("a reconcile is still running; clean-up waits for it", delay=5)
        await asyncio.sleep(0.1)
    if running is not None:
        logger.debug("clean-up after the last reconcile finished")
    _inflight.pop(key, None)


@kopf.on.delete(model.GROUP, model.VERSION, model.PLURAL, retries=6, backoff=5)
async def cleanup_outside_world(spec: kopf.Spec, status: kopf.Status, namespace: str, name: str,
                                logger: logging.Logger, **_: Any) -> None:
    """Through the finalizer: cancel the analytics job; delete topics when deletionPolicy is Delete.
    Children inside the cluster go by garbage collection (owner references). Runs only once no
    reconcile of this object is in flight, and none starts after it began."""
    key = (namespace, name)
    _deleting.add(key)
    _kick(namespace, name)  # the loop sees _deleting and ends
    await _wait_for_inflight(key, logger)
    loop = asyncio.get_running_loop()
    # The clean-up blocks (Kafka admin, engines): run it off the event loop.
    await loop.run_in_executor(_pool, _cleanup, dict(spec), dict(status), namespace, name, logger)
    _deleting.discard(key)


def _cleanup(spec: dict[str, Any], status: dict[str, Any], namespace: str, name: str, logger: logging.Logger) -> None:
    try:
        parsed = model.parse_spec(spec)
    except Exception:  # noqa: BLE001 - an invalid spec never created anything outside
        logger.warning("spec invalid at deletion; nothing outside the cluster to clean up")
        return
    _subsystems.cancel_analytics(namespace, name, parsed, status.get("analytics"))
    deleted = _subsystems.delete_topics(parsed)
    logger.info(f"deleted Kafka topics {deleted}" if deleted else "Kafka topics retained (deletionPolicy Retain)")


@kopf.on.event(model.GROUP, model.VERSION, model.PLURAL)
async def platform_changed(namespace: str, name: str, **_: Any) -> None:
    _kick(namespace, name)


async def _owner_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
    _kick(namespace, labels.get("app.kubernetes.io/instance"))


for _group, _version, _plural in (("apps", "v1", "deployments"), ("", "v1", "services"),
                                  ("autoscaling", "v2", "horizontalpodautoscalers"),
                                  ("policy", "v1", "poddisruptionbudgets")):
    kopf.on.event(_group, _version, _plural, labels=CHILD_LABELS, id=f"child-{_plural}")(_owner_changed)


@kopf.on.event("", "v1", "pods", labels={**CHILD_LABELS, "app.kubernetes.io/instance": kopf.PRESENT}, id="child-pods")
async def pod_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
    """The platforms' pods, summarised into pods.STORE (what the kubelet says about each container);
    the owner is kicked only when something status shows has changed."""
    raw = dict(body)
    owner = pods.STORE.remove(raw) if type == "DELETED" else pods.STORE.update(raw)
    if owner:
        _kick(*owner)


@kopf.on.probe(id="reconcile_loops")
async def loops_alive(**_: Any) -> int:
    """Liveness: fails when a reconcile loop has gone quiet for several resync intervals."""
    limit = 3 * RESYNC_SECONDS + 60
    stale = [f"{ns}/{n}" for (ns, n), s in _loops.items() if time.monotonic() - s.last_tick > limit]
    if stale:
        raise kopf.PermanentError(f"reconcile loops quiet for over {limit:.0f}s: {', '.join(stale)}")
    return len(_loops)
