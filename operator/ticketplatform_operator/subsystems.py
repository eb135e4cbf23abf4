"""The parts of a TicketPlatform outside Kubernetes: Kafka topics and the analytics job.

Each step turns the spec into one condition and its slice of status. Clients are cached per
endpoint and shared by all reconcile loops; every call is idempotent, so a retry after a crash or a
restart adopts what is already there instead of creating it twice."""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable

from . import metrics
from .analytics import (CANCELLING, DONE, FAILED, PENDING, RESTARTING, RUNNING, TERMINAL_STATES, UNKNOWN, CANCELLED,
                        JobStatus, make_engine, request_from_spec)
from .model import AnalyticsStatus, TicketPlatformSpec, TopicState
from .status import CondResult
from .topics import REPLICATION_CHANGE_REFUSED, SHRINK_REFUSED, KafkaUnavailable, TopicManager
from .topics import TopicSpec as KafkaTopicSpec

NOT_CONFIGURED = "KafkaNotConfigured"


def desired_topics(spec: TicketPlatformSpec) -> list[KafkaTopicSpec]:
    topics = spec.kafka.topics
    return [
        KafkaTopicSpec(name=t.name, partitions=t.partitions, replication_factor=t.replicationFactor,
                       config=dict(t.config), field_path=f"spec.kafka.topics.{key}")
        for key, t in (("bookings", topics.bookings), ("results", topics.results))
    ]


class Subsystems:
    def __init__(self, topic_manager_factory: Callable[[str], TopicManager] = TopicManager):
        self._topic_manager_factory = topic_manager_factory
        self._topic_managers: dict[str, TopicManager] = {}
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()

    def topic_manager(self, bootstrap_servers: str) -> TopicManager:
        with self._lock:
            if bootstrap_servers not in self._topic_managers:
                self._topic_managers[bootstrap_servers] = self._topic_manager_factory(bootstrap_servers)
            return self._topic_managers[bootstrap_servers]

    # ---- Kafka topics --------------------------------------------------------------------------
    def topics(self, spec: TicketPlatformSpec) -> tuple[CondResult, list[TopicState]]:
        wanted = desired_topics(spec)
        if not spec.kafka.bootstrapServers:
            return (CondResult("TopicsReady", "Unknown", NOT_CONFIGURED, "spec.kafka.bootstrapServers is not set."),
                    [TopicState(name=t.name, state="NotConfigured") for t in wanted])
        started = time.monotonic()
        try:
            results = self.topic_manager(spec.kafka.bootstrapServers).reconcile(wanted)
        except KafkaUnavailable as exc:
            return (CondResult("TopicsReady", "False", "KafkaUnavailable", str(exc)),
                    [TopicState(name=t.name, state="Unknown", message="broker unreachable") for t in wanted])
        finally:
            metrics.EXTERNAL_SECONDS.labels(target="kafka").observe(time.monotonic() - started)
        states = [TopicState(name=r.name, state=r.state, partitions=r.partitions,
                             replicationFactor=r.replication_factor, message=r.message) for r in results]
        refused = [r for r in results if r.state in (SHRINK_REFUSED, REPLICATION_CHANGE_REFUSED)]
        failed = [r for r in results if not r.ok and r not in refused]
        if refused:
            return CondResult("TopicsReady", "False", refused[0].state, "; ".join(r.message for r in refused)), states
        if failed:
            return CondResult("TopicsReady", "False", "TopicError", "; ".join(f"{r.name}: {r.message}" for r in failed)), states
        return CondResult("TopicsReady", "True", "TopicsReady", ", ".join(f"{r.name} ({r.partitions} partitions)" for r in results)), states

    def delete_topics(self, spec: TicketPlatformSpec) -> list[str]:
        """On TicketPlatform deletion: delete the topics only when deletionPolicy is Delete."""
        if spec.kafka.deletionPolicy != "Delete" or not spec.kafka.bootstrapServers:
            return []
        names = [t.name for t in desired_topics(spec)]
        self.topic_manager(spec.kafka.bootstrapServers).delete(names)
        return names

    # ---- analytics -----------------------------------------------------------------------------
    def engine(self, name: str) -> Any:
        """One engine per kind per operator (the local engine supervises its jobs from a thread)."""
        with self._lock:
            if name not in self._engines:
                kwargs: dict[str, Any] = {}
                endpoint = os.environ.get("TP_DATAPROC_ENDPOINT")
                if name == "dataproc" and endpoint:
                    # A plaintext endpoint speaking the Dataproc API (the tests' local gRPC server).
                    import grpc
                    from google.cloud import dataproc_v1
                    from google.cloud.dataproc_v1.services.job_controller.transports import JobControllerGrpcTransport

                    transport = JobControllerGrpcTransport(channel=grpc.insecure_channel(endpoint))
                    kwargs["client"] = dataproc_v1.JobControllerClient(transport=transport)
                self._engines[name] = make_engine(name, **kwargs)
            return self._engines[name]

    def analytics(self, namespace: str, name: str, spec: TicketPlatformSpec,
                  previous: dict[str, Any] | None, uid: str | None = None,
                  pods: list[dict[str, Any]] | None = None) -> tuple[CondResult, AnalyticsStatus]:
        """`uid` (the TicketPlatform's) owns what an engine creates in the cluster; `pods` (summaries
        from the pod watch) spare the kubernetes engine a pod list."""
        settings = spec.analytics
        previous = previous or {}
        if not settings.enabled or not spec.kafka.bootstrapServers:
            self.cancel_analytics(namespace, name, spec, previous)
            if not settings.enabled:
                return (CondResult("AnalyticsReady", "True", "Disabled", "spec.analytics.enabled is false."),
                        AnalyticsStatus(engine=settings.engine, state="Disabled"))
            return (CondResult("AnalyticsReady", "Unknown", NOT_CONFIGURED, "spec.kafka.bootstrapServers is not set."),
                    AnalyticsStatus(engine=settings.engine, state="NotConfigured"))
        if previous.get("engine") and previous["engine"] != settings.engine:
            # The engine changed: the old engine's job goes before the new one starts.
            self._cancel_with(previous["engine"], namespace, name, spec, previous)
            previous = {}
        started = time.monotonic()
        try:
            request = request_from_spec(namespace, name, spec, owner_uid=uid)
            extra = {"pods": pods} if settings.engine == "kubernetes" and pods is not None else {}
            job = self.engine(settings.engine).ensure(request, JobStatus.from_status(previous), **extra)
        finally:
            metrics.EXTERNAL_SECONDS.labels(target=f"analytics-{settings.engine}").observe(time.monotonic() - started)
        status = AnalyticsStatus(engine=settings.engine, state=job.state, jobId=job.job_id,
                                 lastStateChange=job.last_state_change, message=job.message,
                                 specHash=job.spec_hash, restarts=job.restarts)
        reason, cond_status = JOB_CONDITIONS.get(job.state, ("JobNotRunning", "False"))
        return CondResult("AnalyticsReady", cond_status, reason, f"{settings.engine} job {job.job_id or '-'}: {job.state}. {job.message}".strip()), status

    def cancel_analytics(self, namespace: str, name: str, spec: TicketPlatformSpec, previous: dict[str, Any] | None) -> None:
        """Cancel the job recorded in status (on deletion, or when analytics is switched off)."""
        previous = previous or {}
        if previous.get("jobId") and previous.get("state") not in TERMINAL_STATES:
            self._cancel_with(previous.get("engine") or spec.analytics.engine, namespace, name, spec, previous)

    def _cancel_with(self, engine: str, namespace: str, name: str, spec: TicketPlatformSpec, previous: dict[str, Any]) -> None:
        request = request_from_spec(namespace, name, spec)
        self.engine(engine).cancel(request, JobStatus.from_status(previous))


# Job state -> (AnalyticsReady reason, condition status); reasons in status.ERROR_REASONS degrade the platform.
JOB_CONDITIONS = {
    RUNNING: ("JobRunning", "True"),
    PENDING: ("JobStarting", "False"),
    RESTARTING: ("JobRestarting", "False"),
    CANCELLING: ("JobCancelling", "False"),
    FAILED: ("JobFailed", "False"),
    CANCELLED: ("JobFailed", "False"),
    DONE: ("JobFailed", "False"),
    UNKNOWN: ("EngineUnavailable", "False"),
}
