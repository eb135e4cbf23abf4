"""Thin Kopf handlers. Each TicketPlatform gets one reconcile loop (an async Kopf daemon), so one
writer acts per object. The loop re-checks every resync interval (level-based repair of drift), at
once when the object or one of its children changes (a watch on the children kicks its owner), and
when a failed step's back-off runs out.

Children are read from Kopf indexes fed by those same watches (cache.py), so a steady-state
resync asks the apiserver nothing. The reconcile itself blocks (Kafka, Flink clients, writes), so
it runs in a bounded thread pool; the daemons only wait on the event loop, so any number of
objects can be watched without starving Kopf's own executor.

Everything the handlers share lives in one `Runtime`, built from the operator's configuration at
start and handed to every handler in Kopf's memo."""
from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf
import prometheus_client

from . import cache, metrics, model
from .cache import CachedKube, Snapshot
from .config import OperatorConfig
from .kube import Kube
from .pods import PodStore
from .reconcile import SERVICEMONITOR_CRD, reconcile
from .render import MANAGED_BY
from .retry import StepRetry
from .status import StatusRecorder
from .subsystems import Subsystems

log = logging.getLogger(__name__)

KICK_DEBOUNCE_SECONDS = 0.2
INFLIGHT_WAIT_SECONDS = 120
FINALIZER = "ticketing.io/finalizer"
CHILD_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY, cache.INSTANCE_LABEL: kopf.PRESENT}
PHASES = ("Pending", "Progressing", "Ready", "Degraded", "Failed")


@dataclass
class PlatformLoop:
    recorder: StatusRecorder
    retry: StepRetry
    last_tick: float = field(default_factory=time.monotonic)
    kick: asyncio.Event = field(default_factory=asyncio.Event)


class Runtime:
    """The operator's shared state. Touched only from the event loop's thread, except `kube`,
    `subsystems` and `pods`, which are thread-safe."""

    def __init__(self, config: OperatorConfig, kube: Kube | None = None):
        self.config = config
        self.pool = ThreadPoolExecutor(max_workers=config.reconcile_workers, thread_name_prefix="reconcile")
        self.subsystems = Subsystems.from_config(config)
        self.pods = PodStore()
        self._kube = kube
        self.loops: dict[tuple[str, str], PlatformLoop] = {}
        # Objects whose clean-up has begun: no reconcile may start for them any more.
        self.deleting: set[tuple[str, str]] = set()
        # The reconcile running in the pool for an object, if any. Kopf runs deletion handlers while
        # it is still stopping the daemons, and a cancelled daemon does not stop its worker thread:
        # clean-up waits for this, or a reconcile in flight could re-create what it just deleted.
        self.inflight: dict[tuple[str, str], Future[Any]] = {}
        self.phases: dict[tuple[str, str], str] = {}

    @property
    def kube(self) -> Kube:
        if self._kube is None:  # on first use, inside the running operator
            self._kube = Kube()
        return self._kube

    def kick(self, namespace: str | None, name: str | None) -> None:
        loop = self.loops.get((namespace or "", name or ""))
        if loop:
            loop.kick.set()

    def record_phase(self, key: tuple[str, str], phase: str | None) -> None:
        """Keep the ticketplatform_platforms{phase} gauge equal to the objects this operator runs."""
        if phase is None:
            self.phases.pop(key, None)
        else:
            self.phases[key] = phase
        for name in PHASES:
            metrics.PLATFORMS.labels(phase=name).set(sum(1 for p in self.phases.values() if p == name))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config: OperatorConfig = memo.runtime.config
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
    if config.metrics_port:
        prometheus_client.start_http_server(config.metrics_port, addr=config.metrics_addr)


@kopf.daemon(model.GROUP, model.VERSION, model.PLURAL, cancellation_timeout=30)
async def reconcile_loop(stopped: kopf.DaemonStopped, body: kopf.Body, namespace: str, name: str,
                         memo: kopf.Memo, logger: logging.Logger, **kwargs: Any) -> None:
    rt: Runtime = memo.runtime
    key = (namespace, name)

    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message)

    state = rt.loops.setdefault(key, PlatformLoop(
        recorder=StatusRecorder(rt.kube, emit),
        retry=StepRetry(rt.config.retry_base_seconds, rt.config.retry_cap_seconds)))
    try:
        while not stopped:
            state.kick.clear()
            snapshot = copy.deepcopy(dict(body))
            if key in rt.deleting or snapshot["metadata"].get("deletionTimestamp"):
                break  # never act on an object that is being deleted
            # Copied here, on the event loop, where the indexes change; read in the worker thread.
            kube = CachedKube(rt.kube, Snapshot.take(namespace, name, kwargs))
            try:
                # The context carries Kopf's event queue, so emit() works from the worker thread.
                ctx = contextvars.copy_context()
                running = rt.pool.submit(ctx.run, reconcile, kube, snapshot, rt.subsystems, state.recorder,
                                         rt.pods.snapshot(namespace, name), state.retry)
                rt.inflight[key] = running
                outcome = await asyncio.wrap_future(running)
                rt.inflight.pop(key, None)  # done (a cancelled wait leaves it for the clean-up)
                rt.record_phase(key, outcome.phase)
            except Exception:  # noqa: BLE001 - the loop must survive anything and retry
                metrics.RECONCILE_ERRORS.labels(reason="Exception").inc()
                logger.exception("reconcile failed; retrying at next kick or resync")
            state.last_tick = time.monotonic()
            await _wait_for_next(state, stopped, rt.config.resync_seconds)
    finally:
        rt.loops.pop(key, None)
        rt.record_phase(key, None)


async def _wait_for_next(state: PlatformLoop, stopped: kopf.DaemonStopped, resync_seconds: float) -> None:
    """Until the resync interval passes, a failed step is due again, or something kicks the loop."""
    now = time.monotonic()
    retry_at = state.retry.next_retry()
    deadline = min(now + resync_seconds, max(retry_at, now + KICK_DEBOUNCE_SECONDS) if retry_at is not None else float("inf"))
    while not stopped and time.monotonic() < deadline:
        try:
            await asyncio.wait_for(state.kick.wait(), timeout=min(0.5, max(0.01, deadline - time.monotonic())))
        except asyncio.TimeoutError:
            continue
        await asyncio.sleep(KICK_DEBOUNCE_SECONDS)
        return


async def _wait_for_inflight(rt: Runtime, key: tuple[str, str], logger: logging.Logger) -> None:
    running = rt.inflight.get(key)
    deadline = time.monotonic() + INFLIGHT_WAIT_SECONDS
    while running is not None and not running.done():
        if time.monotonic() > deadline:
            raise kopf.TemporaryError("a reconcile is still running; clean-up waits for it", delay=5)
        await asyncio.sleep(0.1)
    if running is not None:
        logger.debug("clean-up after the last reconcile finished")
    rt.inflight.pop(key, None)


@kopf.on.delete(model.GROUP, model.VERSION, model.PLURAL, retries=6, backoff=5)
async def cleanup_outside_world(spec: kopf.Spec, status: kopf.Status, namespace: str, name: str,
                                memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Through the finalizer: cancel the analytics job; delete topics when deletionPolicy is Delete.
    Children inside the cluster go by garbage collection (owner references). Runs only once no
    reconcile of this object is in flight, and none starts after it began. Idempotent, so an
    operator restart half-way (Kopf runs it again) changes nothing."""
    rt: Runtime = memo.runtime
    key = (namespace, name)
    rt.deleting.add(key)
    rt.kick(namespace, name)  # the loop sees `deleting` and ends
    await _wait_for_inflight(rt, key, logger)
    loop = asyncio.get_running_loop()
    # The clean-up blocks (Kafka admin, engines): run it off the event loop.
    await loop.run_in_executor(rt.pool, _cleanup, rt.subsystems, copy.deepcopy(dict(spec)),
                               copy.deepcopy(dict(status)), namespace, name, logger)
    rt.deleting.discard(key)


def _cleanup(subsystems: Subsystems, spec: dict[str, Any], status: dict[str, Any], namespace: str, name: str,
             logger: logging.Logger) -> None:
    """What the platform made outside the cluster, from its spec, or from what status recorded of
    the last valid spec when the spec has become invalid since."""
    try:
        parsed: model.TicketPlatformSpec | None = model.parse_spec(spec)
    except Exception:  # noqa: BLE001 - pydantic's ValidationError: fall back to status
        parsed = None
        logger.warning("spec invalid at deletion; cleaning up what status recorded")
    subsystems.cancel_analytics(namespace, name, parsed, status.get("analytics"))
    deleted = subsystems.delete_topics(parsed, status)
    logger.info(f"deleted Kafka topics {deleted}" if deleted else "Kafka topics retained (deletionPolicy Retain or none recorded)")


@kopf.on.event(model.GROUP, model.VERSION, model.PLURAL)
async def platform_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.kick(namespace, name)


# ---- children: indexed (the read cache) and kicking their owner -------------------------------

def _child_indexer(kind: str) -> Any:
    async def index_child(body: kopf.Body, **_: Any) -> dict[tuple[str, str], tuple[str, str, str]]:
        return cache.child_entry(kind, body)
    return index_child


async def _owner_changed(labels: dict[str, str], namespace: str, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.kick(namespace, labels.get(cache.INSTANCE_LABEL))


for _kind, (_group, _version, _plural) in cache.CACHED_KINDS.items():
    kopf.index(_group, _version, _plural, labels=CHILD_LABELS, id=cache.index_id(_kind))(_child_indexer(_kind))
    kopf.on.event(_group, _version, _plural, labels=CHILD_LABELS, id=f"child-{_plural}")(_owner_changed)


def _is_servicemonitor_crd(name: str, **_: Any) -> bool:
    return name == SERVICEMONITOR_CRD


@kopf.index("apiextensions.k8s.io", "v1", "customresourcedefinitions", id=cache.CRD_INDEX, when=_is_servicemonitor_crd)
async def crd_names(name: str, **_: Any) -> dict[str, str]:
    return {cache.CRD_KEY: name}


@kopf.on.event("apiextensions.k8s.io", "v1", "customresourcedefinitions", when=_is_servicemonitor_crd)
async def servicemonitor_crd_changed(memo: kopf.Memo, **_: Any) -> None:
    """The Prometheus Operator came or went: every platform renders its ServiceMonitor again."""
    for loop in memo.runtime.loops.values():
        loop.kick.set()


@kopf.on.event("", "v1", "pods", labels=CHILD_LABELS, id="child-pods")
async def pod_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The platforms' pods, summarised into the pod store (what the kubelet says about each
    container); the owner is kicked only when something status shows has changed."""
    rt: Runtime = memo.runtime
    raw = dict(body)
    owner = rt.pods.remove(raw) if type == "DELETED" else rt.pods.update(raw)
    if owner:
        rt.kick(*owner)


@kopf.on.probe(id="reconcile_loops")
async def loops_alive(memo: kopf.Memo, **_: Any) -> int:
    """Liveness: fails when a reconcile loop has gone quiet for several resync intervals."""
    rt: Runtime = memo.runtime
    limit = 3 * rt.config.resync_seconds + 60
    stale = [f"{ns}/{n}" for (ns, n), s in rt.loops.items() if time.monotonic() - s.last_tick > limit]
    if stale:
        raise kopf.PermanentError(f"reconcile loops quiet for over {limit:.0f}s: {', '.join(stale)}")
    return len(rt.loops)
