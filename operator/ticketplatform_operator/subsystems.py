"""The parts of a TicketPlatform outside Kubernetes: Kafka topics and the analytics job.

Each step turns the spec into one condition and its slice of status. Clients are cached per
endpoint and shared by all reconcile loops; every call is idempotent, so a retry after a crash or a
restart adopts what is already there instead of creating it twice."""
from __future__ import annotations

import dataclasses
import re
import threading
import time
from typing import Any, Callable

from . import metrics
from .analytics import (CANCELLING, DONE, FAILED, PENDING, RESTARTING, RUNNING, TERMINAL_STATES, UNKNOWN, CANCELLED,
                        JobRequest, JobStatus, make_engine, request_from_spec)
from .model import AnalyticsStatus, TicketPlatformSpec, TopicState
from .status import CondResult
from .topics import REPLICATION_CHANGE_REFUSED, SHRINK_REFUSED, TopicManager
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
    """`engine_settings`: keyword arguments per engine kind (from the operator's configuration)."""

    def __init__(self, topic_manager_factory: Callable[[str], TopicManager] = TopicManager,
                 engine_settings: dict[str, dict[str, Any]] | None = None, dataproc_endpoint: str | None = None):
        self._topic_manager_factory = topic_manager_factory
        self._engine_settings = engine_settings or {}
        self._dataproc_endpoint = dataproc_endpoint
        self._topic_managers: dict[str, TopicManager] = {}
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Any) -> "Subsystems":
        return cls(engine_settings={"local": config.local_engine_settings()}, dataproc_endpoint=config.dataproc_endpoint)

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
        try:  # KafkaUnavailable goes up: the reconcile reports it and backs off
            results = self.topic_manager(spec.kafka.bootstrapServers).reconcile(wanted)
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

    def delete_topics(self, spec: TicketPlatformSpec | None, recorded: dict[str, Any]) -> list[str]:
        """On TicketPlatform deletion: delete the topics only when deletionPolicy is Delete. The
        spec decides; when it is invalid, what status recorded from the last valid one does."""
        if spec is not None:
            servers, policy = spec.kafka.bootstrapServers, spec.kafka.deletionPolicy
            names = [t.name for t in desired_topics(spec)]
        else:
            kafka = recorded.get("kafka") or {}
            servers, policy = kafka.get("bootstrapServers"), kafka.get("deletionPolicy")
            names = [t["name"] for t in recorded.get("topics") or [] if t.get("name")]
        if policy != "Delete" or not servers or not names:
            return []
        self.topic_manager(servers).delete(names)
        return names

    # ---- analytics -----------------------------------------------------------------------------
    def engine(self, name: str) -> Any:
        """One engine per kind per operator (the local engine supervises its jobs from a thread)."""
        with self._lock:
            if name not in self._engines:
                kwargs: dict[str, Any] = dict(self._engine_settings.get(name, {}))
                endpoint = self._dataproc_endpoint
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
                  pods: list[dict[str, Any]] | None = None, kube: Any = None) -> tuple[CondResult, AnalyticsStatus]:
        """`uid` (the TicketPlatform's) owns what an engine creates in the cluster; `pods` (summaries
        from the pod watch) and `kube` (the reconcile's cached client) spare the kubernetes engine
        its reads."""
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
            extra: dict[str, Any] = {}
            if settings.engine == "kubernetes":
                extra = {k: v for k, v in (("pods", pods), ("kube", kube)) if v is not None}
            job = self.engine(settings.engine).ensure(request, JobStatus.from_status(previous), **extra)
        finally:
            metrics.EXTERNAL_SECONDS.labels(target=f"analytics-{settings.engine}").observe(time.monotonic() - started)
        status = AnalyticsStatus(engine=settings.engine, location=job_location(request), **job.to_status())
        reason, cond_status = JOB_CONDITIONS.get(job.state, ("JobNotRunning", "False"))
        return CondResult("AnalyticsReady", cond_status, reason, f"{settings.engine} job {job.job_id or '-'}: {job.state}. {job.message}".strip()), status

    def cancel_analytics(self, namespace: str, name: str, spec: TicketPlatformSpec | None,
                         recorded: dict[str, Any] | None) -> None:
        """Cancel the job recorded in status (on deletion, or when analytics is switched off).
        Without a valid spec, status alone says where the job runs."""
        recorded = recorded or {}
        if recorded.get("jobId") and recorded.get("state") not in TERMINAL_STATES:
            engine = recorded.get("engine") or (spec.analytics.engine if spec is not None else None)
            if engine:
                self._cancel_with(engine, namespace, name, spec, recorded)

    def _cancel_with(self, engine: str, namespace: str, name: str, spec: TicketPlatformSpec | None,
                     recorded: dict[str, Any]) -> None:
        # The spec's request (its spec hash also finds jobs submitted but not yet recorded), placed
        # where status says the recorded job runs: the spec may point elsewhere by now, or be invalid.
        request = request_from_spec(namespace, name, spec) if spec is not None else JobRequest.build(namespace, name)
        request = dataclasses.replace(request, **location_fields(recorded.get("location")))
        self.engine(engine).cancel(request, JobStatus.from_status(recorded))


def job_location(request: JobRequest) -> str | None:
    """Where a job runs, recorded in status so that it can be cancelled without the spec."""
    if request.project_id and request.region and request.cluster_name:
        return f"projects/{request.project_id}/regions/{request.region}/clusters/{request.cluster_name}"
    return None


_LOCATION = re.compile(r"^projects/(?P<project>[^/]+)/regions/(?P<region>[^/]+)/clusters/(?P<cluster>[^/]+)$")


def location_fields(location: str | None) -> dict[str, str]:
    """The JobRequest fields a recorded location names (none for a job without one)."""
    found = _LOCATION.match(location or "")
    if not found:
        return {}
    return {"project_id": found["project"], "region": found["region"], "cluster_name": found["cluster"]}


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
