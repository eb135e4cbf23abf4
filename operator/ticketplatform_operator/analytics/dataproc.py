"""DataprocEngine: the analytics job as a Dataproc Flink job (google-cloud-dataproc JobControllerClient).

The job is a Dataproc ``FlinkJob`` whose driver is PyFlink's ``org.apache.flink.client.python.PythonDriver``
(the class ``flink run -py`` uses): ``-pyfs <job file on GCS> -pym analytics_job`` fetches the job file
through Flink's file systems and runs it as a module; the arguments after it are the job's own.
The Kafka connector jar goes in ``jar_file_uris``.

Identity and idempotency:

* job id ``tp-<namespace>-<name>-<spec hash[:8]>-<attempt>`` (Dataproc job ids: letters, digits,
  ``_``, ``-``, at most 100 characters), so a job is recognisable in the console and findable
  without the recorded status;
* ``request_id`` is derived from the same (namespace, name, spec hash, attempt), at most 40
  characters, so a retried SubmitJob (a timeout, an operator restart between submit and status
  write) returns the job the first call created instead of starting a second one;
* ``attempt`` starts at 0 and grows only when the job for the same spec has ended (failed, or been
  cancelled) and must run again. With no recorded status (first run, or status lost), ``ensure``
  looks up attempts 0, 1, ... and adopts a live one before submitting.

Every call has a short deadline and no client-side retry loop (the default retry policy would block a
reconcile for minutes on an unreachable API): an API that does not answer gives state UNKNOWN and
the next reconcile tries again, safely, thanks to the request id.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
import time
from typing import Any, Callable

from google.api_core import exceptions as gexc
from google.cloud import dataproc_v1

from .base import (CANCELLED, CANCELLING, DONE, FAILED, PENDING, RESTARTING, RUNNING, UNKNOWN, JobRequest,
                   JobStatus, backoff_seconds, slug)

log = logging.getLogger(__name__)

PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"
_STATE = dataproc_v1.JobStatus.State
STATE_MAP = {
    _STATE.STATE_UNSPECIFIED: UNKNOWN,
    _STATE.PENDING: PENDING,
    _STATE.SETUP_DONE: PENDING,
    _STATE.RUNNING: RUNNING,
    _STATE.CANCEL_PENDING: CANCELLING,
    _STATE.CANCEL_STARTED: CANCELLING,
    _STATE.CANCELLED: CANCELLED,
    _STATE.DONE: DONE,
    _STATE.ERROR: FAILED,
    _STATE.ATTEMPT_FAILURE: RESTARTING,  # a restartable job's driver failed; Dataproc restarts it
}
_TERMINAL = {_STATE.CANCELLED, _STATE.DONE, _STATE.ERROR}
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.TooManyRequests,
              gexc.Unknown, gexc.RetryError)
MAX_ATTEMPT_SCAN = 50


def job_id_for(request: JobRequest, attempt: int) -> str:
    base = slug(f"tp-{request.namespace}-{request.name}", 80)
    return f"{base}-{request.spec_hash[:8]}-{attempt}"


def request_id_for(request: JobRequest, attempt: int) -> str:
    """Deterministic, at most 40 characters of [a-zA-Z0-9_-] (the SubmitJobRequest.request_id rule)."""
    digest = hashlib.sha256(f"{request.namespace}/{request.name}/{request.spec_hash}/{attempt}".encode()).hexdigest()
    return f"tp-{digest[:37]}"


def attempt_of(job_id: str | None) -> int:
    try:
        return int((job_id or "").rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _label(value: str) -> str:
    # GCP label values: lower-case letters, digits, '_' and '-', at most 63 characters.
    return slug(value, 63) or "none"


def checkpoint_uri_for(request: JobRequest) -> str:
    if request.checkpoint_uri:
        return request.checkpoint_uri
    base = posixpath.dirname(request.job_file_uri or "gs://missing/x")
    return f"{base}/checkpoints/{slug(request.namespace, 63)}-{slug(request.name, 120)}/{request.spec_hash}"


def build_job(request: JobRequest, attempt: int) -> dataproc_v1.Job:
    module = posixpath.splitext(posixpath.basename(request.job_file_uri or "analytics_job.py"))[0]
    args = ["-pyfs", request.job_file_uri or "", "-pym", module,
            *request.job_args(checkpoint_uri_for(request)), "--restore", "auto"]
    properties = {"parallelism.default": str(request.parallelism), **dict(request.flink_properties)}
    return dataproc_v1.Job(
        reference=dataproc_v1.JobReference(project_id=request.project_id, job_id=job_id_for(request, attempt)),
        placement=dataproc_v1.JobPlacement(cluster_name=request.cluster_name),
        flink_job=dataproc_v1.FlinkJob(
            main_class=PYTHON_DRIVER,
            args=args,
            jar_file_uris=[u for u in (request.connector_jar_uri,) if u],
            properties=properties,
        ),
        labels={
            "managed-by": "ticketplatform-operator",
            "tp-namespace": _label(request.namespace),
            "tp-name": _label(request.name),
            "tp-spec-hash": _label(request.spec_hash),
        },
        # A streaming job: Dataproc restarts a failed driver itself a few times before giving up.
        scheduling=dataproc_v1.JobScheduling(max_failures_per_hour=5, max_failures_total=20),
    )


class DataprocEngine:
    name = "dataproc"

    def __init__(self, client: Any | None = None, *, timeout: float = 10.0,
                 client_factory: Callable[[str], Any] | None = None, cancel_wait: float = 3.0,
                 backoff_base: float = 30.0, backoff_max: float = 600.0,
                 sleep: Callable[[float], None] = time.sleep):
        """``client``: a JobControllerClient to use for every region (tests pass one built on
        ``JobControllerGrpcTransport(channel=grpc.insecure_channel(addr))``). Without it a client per
        region is made on first use, on the regional endpoint, with default credentials."""
        self._client = client
        self._clients: dict[str, Any] = {}
        self._client_factory = client_factory or self._default_client
        self.timeout = timeout
        self.cancel_wait = cancel_wait
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._sleep = sleep

    @staticmethod
    def _default_client(region: str) -> Any:
        return dataproc_v1.JobControllerClient(
            client_options={"api_endpoint": f"{region}-dataproc.googleapis.com:443"})

    def client(self, region: str) -> Any:
        if self._client is not None:
            return self._client
        if region not in self._clients:
            self._clients[region] = self._client_factory(region)
        return self._clients[region]

    # --- API calls (short deadline, no retry loop) ------------------------------------------------------

    def _get(self, request: JobRequest, job_id: str) -> dataproc_v1.Job | None:
        try:
            return self.client(request.region).get_job(
                project_id=request.project_id, region=request.region, job_id=job_id,
                retry=None, timeout=self.timeout)
        except gexc.NotFound:
            return None

    def _submit(self, request: JobRequest, attempt: int) -> dataproc_v1.Job:
        req = dataproc_v1.SubmitJobRequest(project_id=request.project_id, region=request.region,
                                           job=build_job(request, attempt),
                                           request_id=request_id_for(request, attempt))
        log.info("dataproc %s: submitting %s to cluster %s", request.key, req.job.reference.job_id,
                 request.cluster_name)
        return self.client(request.region).submit_job(request=req, retry=None, timeout=self.timeout)

    def _cancel(self, request: JobRequest, job_id: str) -> dataproc_v1.Job | None:
        try:
            return self.client(request.region).cancel_job(
                project_id=request.project_id, region=request.region, job_id=job_id,
                retry=None, timeout=self.timeout)
        except gexc.NotFound:
            return None
        except gexc.FailedPrecondition:  # already in a terminal state
            return self._get(request, job_id)

    # --- status ------------------------------------------------------------------------------------------

    @staticmethod
    def _status_of(job: dataproc_v1.Job, request_hash: str | None, previous: JobStatus | None,
                   restarts: int = 0) -> JobStatus:
        state = STATE_MAP.get(job.status.state, UNKNOWN)
        details = job.status.details or ""
        message = f"Dataproc job {job.reference.job_id}: {job.status.state.name}" + (f" ({details})" if details else "")
        base = previous if previous is not None and previous.job_id == job.reference.job_id else None
        if base is None:
            return JobStatus(job_id=job.reference.job_id, state=state, message=message,
                             spec_hash=request_hash, restarts=restarts)
        return base.evolve(state=state, message=message, spec_hash=request_hash, restarts=restarts)

    # --- the AnalyticsEngine interface -----------------------------------------------------------------

    def ensure(self, request: JobRequest, current: JobStatus | None = None) -> JobStatus:
        try:
            return self._ensure(request, current)
        except _TRANSIENT as exc:
            log.warning("dataproc %s: API unavailable: %s", request.key, exc)
            base = current or JobStatus(job_id=None, state=UNKNOWN, spec_hash=request.spec_hash)
            return base.evolve(state=UNKNOWN, message=f"Dataproc API unavailable: {exc}")
        except gexc.GoogleAPICallError as exc:  # refused: bad argument, no such cluster, no permission
            log.error("dataproc %s: %s", request.key, exc)
            base = current or JobStatus(job_id=None, state=FAILED, spec_hash=request.spec_hash)
            return base.evolve(state=FAILED, message=f"Dataproc refused the job: {exc}")

    def _ensure(self, request: JobRequest, current: JobStatus | None) -> JobStatus:
        if current is not None and current.job_id and current.spec_hash != request.spec_hash:
            # The spec changed: cancel the old job, and submit the new one once the old one has ended.
            old = self._get(request, current.job_id)
            if old is not None and old.status.state not in _TERMINAL:
                log.info("dataproc %s: spec changed, cancelling %s", request.key, current.job_id)
                old = self._cancel(request, current.job_id)
                deadline = time.monotonic() + self.cancel_wait
                while old is not None and old.status.state not in _TERMINAL and time.monotonic() < deadline:
                    self._sleep(0.2)
                    old = self._get(request, current.job_id)
            if old is not None and old.status.state not in _TERMINAL:
                status = self._status_of(old, current.spec_hash, current)
                return status.evolve(state=CANCELLING, message=f"cancelling {current.job_id} before submitting "
                                                               f"the changed spec ({request.spec_hash[:8]})")
            current = None

        if current is None or not current.job_id:
            return self._adopt_or_submit(request, start_attempt=0, restarts=0)

        job = self._get(request, current.job_id)
        if job is None:  # deleted behind our back: submit again (a fresh attempt)
            return self._adopt_or_submit(request, attempt_of(current.job_id) + 1, current.restarts)
        status = self._status_of(job, request.spec_hash, current, current.restarts)
        if job.status.state not in _TERMINAL:
            if status.state == RUNNING and status.restarts and status.seconds_in_state() > self.backoff_max:
                status = status.evolve(restarts=0)
            return status
        # The job ended. A streaming job should not: run it again, after a back-off unless we cancelled it.
        if job.status.state == _STATE.CANCELLED and current.state in (CANCELLED, CANCELLING):
            return self._adopt_or_submit(request, attempt_of(current.job_id) + 1, 0)
        failures = current.restarts if current.terminal else current.restarts + 1
        delay = backoff_seconds(failures, self.backoff_base, self.backoff_max)
        if current.terminal and current.seconds_in_state() >= delay:
            return self._adopt_or_submit(request, attempt_of(current.job_id) + 1, failures)
        wait = delay - (current.seconds_in_state() if current.terminal else 0)
        return status.evolve(restarts=failures, message=f"{status.message}; resubmitting in {wait:.0f}s")

    def _adopt_or_submit(self, request: JobRequest, start_attempt: int, restarts: int) -> JobStatus:
        attempt = start_attempt
        for attempt in range(start_attempt, start_attempt + MAX_ATTEMPT_SCAN):
            job = self._get(request, job_id_for(request, attempt))
            if job is None:
                break
            if job.status.state not in _TERMINAL:
                log.info("dataproc %s: adopting %s", request.key, job.reference.job_id)
                return self._status_of(job, request.spec_hash, None, restarts)
        job = self._submit(request, attempt)
        return self._status_of(job, request.spec_hash, None, restarts)

    def cancel(self, request: JobRequest, current: JobStatus | None = None) -> None:
        """Cancel the recorded job and any live job of this platform's current spec. Not waiting:
        Dataproc finishes the cancellation on its own."""
        ids = []
        if current is not None and current.job_id:
            ids.append(current.job_id)
        for attempt in range(MAX_ATTEMPT_SCAN):
            jid = job_id_for(request, attempt)
            job = self._get(request, jid)
            if job is None:
                break
            if job.status.state not in _TERMINAL and jid not in ids:
                ids.append(jid)
        for jid in ids:
            log.info("dataproc %s: cancelling %s", request.key, jid)
            self._cancel(request, jid)
