"""The analytics engine interface the reconcile loop talks to.

The reconcile loop builds a JobRequest from the TicketPlatform (``JobRequest.build`` or
``request_from_spec``), passes it with the JobStatus it recorded last time to
``engine.ensure(request, current)`` on every reconcile, and records the JobStatus it gets back in
``status.analytics`` (``JobStatus.to_status`` gives the camelCase fields). On deletion it calls
``engine.cancel(request, current)``.

``ensure`` is idempotent and cheap when nothing changed (one state look-up); it submits when there
is no job, polls when the job exists for the same ``spec_hash``, and cancels and resubmits when the
``spec_hash`` differs. Engines do not raise for a failing backend: they return a JobStatus whose
state and message say what happened (UNKNOWN for an unreachable API, FAILED for a refused job),
so the caller can always record status.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol, runtime_checkable

# Job states, shared by every engine.
PENDING = "PENDING"          # submitted / process started, not running yet
RUNNING = "RUNNING"
RESTARTING = "RESTARTING"    # restarting after a failure (Flink restart, Dataproc driver retry, local restart)
CANCELLING = "CANCELLING"    # cancel requested, not yet done
CANCELLED = "CANCELLED"
FAILED = "FAILED"            # the job failed; engines that restart jobs say when in the message
DONE = "DONE"                # ended by itself (a streaming job should not)
UNKNOWN = "UNKNOWN"          # the engine could not tell (e.g. API unreachable)

STATES = (PENDING, RUNNING, RESTARTING, CANCELLING, CANCELLED, FAILED, DONE, UNKNOWN)
TERMINAL_STATES = frozenset({CANCELLED, FAILED, DONE})

# Fields of a JobRequest that do not describe the job itself, so they are left out of spec_hash.
_NOT_HASHED = {"namespace", "name", "spec_hash", "owner_uid"}
# Fields added after jobs were already running: left out of spec_hash while unset, so an operator
# upgrade does not restart the jobs of the other engines.
_HASHED_WHEN_SET = {"image", "resources", "checkpoint_claim", "placement"}


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class JobRequest:
    """Everything an engine needs to run one TicketPlatform's analytics job.

    ``spec_hash`` changes whenever a field that shapes the job changes; ``JobRequest.build`` computes
    it from the other fields, so callers need not.
    """

    namespace: str
    name: str
    spec_hash: str
    window_seconds: int = 60
    out_of_orderness_seconds: int = 5
    parallelism: int = 1
    bootstrap_servers: str = "127.0.0.1:19092"
    source_topic: str = "ticket-bookings"
    results_topic: str = "analytics-results"
    job_file: str = "flink/analytics_job.py"
    checkpoint_interval_seconds: float = 5.0
    idle_timeout_seconds: float = 10.0
    # dataproc
    project_id: str | None = None
    region: str | None = None
    cluster_name: str | None = None
    job_file_uri: str | None = None          # gs://bucket/path/analytics_job.py
    connector_jar_uri: str | None = None     # gs://bucket/path/flink-sql-connector-kafka-<v>.jar
    checkpoint_uri: str | None = None        # gs://bucket/checkpoints/...; default: beside the job file
    flink_properties: tuple[tuple[str, str], ...] = ()
    # local
    work_dir: str | None = None              # default: <engine run dir>/<namespace>-<name>
    # kubernetes
    image: str | None = None
    resources: tuple[tuple[str, str], ...] = ()   # (("limits.cpu", "2"), ("requests.memory", "1Gi"), ...)
    checkpoint_claim: str | None = None      # PersistentVolumeClaim for checkpoints; None: emptyDir
    placement: str | None = None             # canonical JSON {nodeSelector, tolerations} of the pod
    owner_uid: str | None = None             # the TicketPlatform's uid, for ownerReferences (not hashed)

    @classmethod
    def build(cls, namespace: str, name: str, **fields: Any) -> "JobRequest":
        """A request whose spec_hash is computed from its job-shaping fields."""
        if isinstance(fields.get("flink_properties"), Mapping):
            fields["flink_properties"] = tuple(sorted((str(k), str(v)) for k, v in fields["flink_properties"].items()))
        if isinstance(fields.get("resources"), Mapping):
            fields["resources"] = tuple(sorted((str(k), str(v)) for k, v in fields["resources"].items()))
        draft = cls(namespace=namespace, name=name, spec_hash="", **fields)
        return dataclasses.replace(draft, spec_hash=draft.compute_spec_hash())

    def compute_spec_hash(self) -> str:
        shaped = {k: v for k, v in dataclasses.asdict(self).items()
                  if k not in _NOT_HASHED and not (k in _HASHED_WHEN_SET and not v)}
        text = json.dumps(shaped, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def group_id(self) -> str:
        """Consumer group (and transactional id prefix root) of this platform's job: stable across
        spec changes, so a resubmitted job goes on from the offsets the previous one committed."""
        return f"tp-analytics-{self.namespace}-{self.name}"

    def job_args(self, checkpoint_dir: str) -> list[str]:
        """Command-line arguments of flink/analytics_job.py for this request (engine independent)."""
        return [
            "--bootstrap-servers", self.bootstrap_servers,
            "--source-topic", self.source_topic,
            "--results-topic", self.results_topic,
            "--group-id", self.group_id,
            "--window", f"{int(self.window_seconds)}s",
            "--out-of-orderness", f"{int(round(self.out_of_orderness_seconds * 1000))}ms",
            "--idle-timeout", f"{int(round(self.idle_timeout_seconds * 1000))}ms",
            "--parallelism", str(self.parallelism),
            "--checkpoint-dir", checkpoint_dir,
            "--checkpoint-interval", f"{int(round(self.checkpoint_interval_seconds * 1000))}ms",
            "--job-name", f"ticketplatform-analytics-{self.namespace}-{self.name}",
        ]


def request_from_spec(namespace: str, name: str, spec: Any, **overrides: Any) -> JobRequest:
    """A JobRequest from a TicketPlatformSpec (model.py): spec.analytics and spec.kafka.

    ``overrides`` set engine-side fields that are not in the spec (work_dir, checkpoint_uri,
    checkpoint_interval_seconds, ...)."""
    analytics, kafka = spec.analytics, spec.kafka
    fields: dict[str, Any] = dict(
        window_seconds=analytics.windowSeconds,
        out_of_orderness_seconds=analytics.outOfOrdernessSeconds,
        parallelism=analytics.parallelism,
        bootstrap_servers=kafka.bootstrapServers,
        source_topic=kafka.topics.bookings.name,
        results_topic=kafka.topics.results.name,
        job_file=analytics.jobFile,
    )
    dp = getattr(analytics, "dataproc", None)
    if analytics.engine == "dataproc" and dp is not None:
        fields.update(project_id=dp.projectId, region=dp.region, cluster_name=dp.cluster,
                      job_file_uri=dp.jobFileUri, connector_jar_uri=dp.connectorJarUri)
    k8s = getattr(analytics, "kubernetes", None)
    if analytics.engine == "kubernetes" and k8s is not None:
        res = k8s.resources
        fields.update(image=k8s.image, checkpoint_claim=k8s.checkpointClaimName,
                      resources={f"{kind}.{name}": getattr(getattr(res, kind), name)
                                 for kind in ("requests", "limits") for name in ("cpu", "memory")})
        # The platform-wide spec.placement's nodeSelector and tolerations (where the services go,
        # the job goes); getattr: specs of models without placement still parse.
        placement = getattr(spec, "placement", None)
        if placement is not None:
            fields["placement"] = placement_json(placement)
    fields.update(overrides)
    return JobRequest.build(namespace, name, **fields)


def placement_json(placement: Any) -> str | None:
    """Canonical JSON of the nodeSelector and tolerations of a placement model (spec.placement),
    whatever its exact class: only those two fields are read."""
    data = placement.model_dump(exclude_none=True) if hasattr(placement, "model_dump") else dict(placement)
    picked = {k: data[k] for k in ("nodeSelector", "tolerations") if data.get(k)}
    return json.dumps(picked, sort_keys=True) if picked else None


@dataclass
class JobStatus:
    """What an engine reports about a platform's job; the caller records it and hands it back."""

    job_id: str | None
    state: str
    message: str = ""
    last_state_change: str = field(default_factory=utc_now)
    spec_hash: str | None = None
    restarts: int = 0   # consecutive failures of this spec's job (drives the restart back-off)

    def evolve(self, **changes: Any) -> "JobStatus":
        """A copy with changes; last_state_change moves only when the state (or job) changes."""
        new = dataclasses.replace(self, **changes)
        if (new.state != self.state or new.job_id != self.job_id) and "last_state_change" not in changes:
            new.last_state_change = utc_now()
        return new

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def seconds_in_state(self, now: datetime | None = None) -> float:
        since = parse_time(self.last_state_change)
        if since is None:
            return 0.0
        return ((now or datetime.now(timezone.utc)) - since).total_seconds()

    # status.analytics in the CRD uses camelCase names.
    def to_status(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "state": self.state, "message": self.message,
                "lastStateChange": self.last_state_change, "specHash": self.spec_hash,
                "restarts": self.restarts}

    @classmethod
    def from_status(cls, data: Mapping[str, Any] | None) -> "JobStatus | None":
        if not data or not data.get("state") or data.get("state") not in STATES:
            return None
        return cls(job_id=data.get("jobId"), state=data["state"], message=data.get("message") or "",
                   last_state_change=data.get("lastStateChange") or utc_now(),
                   spec_hash=data.get("specHash"), restarts=int(data.get("restarts") or 0))


@runtime_checkable
class AnalyticsEngine(Protocol):
    """One way of running the analytics job (``local`` or ``dataproc``)."""

    name: str

    def ensure(self, request: JobRequest, current: JobStatus | None) -> JobStatus:
        """Make the job for ``request`` run; return its status. Idempotent, cheap when nothing changed."""
        ...

    def cancel(self, request: JobRequest, current: JobStatus | None) -> None:
        """Stop the platform's job (on deletion). Idempotent; a job that is already gone is fine."""
        ...


def backoff_seconds(failures: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential back-off before restart number ``failures`` (1, 2, ...): base, 2*base, ... capped."""
    if failures <= 0:
        return 0.0
    return min(cap, base * (2 ** (failures - 1)))


_ID_CHARS = re.compile(r"[^a-z0-9-]+")


def slug(text: str, limit: int) -> str:
    """Lower-case letters, digits and '-' only, at most ``limit`` characters."""
    s = _ID_CHARS.sub("-", text.lower()).strip("-")
    return s[:limit].rstrip("-")
