"""DataprocEngine against a real gRPC server speaking Dataproc's JobController protocol.

The engine uses google-cloud-dataproc's own JobControllerClient over an insecure channel, so the
requests asserted here are the bytes the client would send to Google, decoded by the server.
"""
from __future__ import annotations

import re
import time

import grpc
import pytest

from ticketplatform_operator.analytics import (CANCELLED, CANCELLING, FAILED, PENDING, RUNNING, UNKNOWN,
                                               JobRequest, JobStatus, make_engine)
from ticketplatform_operator.analytics.dataproc import (PYTHON_DRIVER, DataprocEngine, job_id_for,
                                                        request_id_for)

PROJECT, REGION, CLUSTER = "tp-project-1", "europe-west1", "tp-flink"
JOB_URI = "gs://tp-artifacts/flink/analytics_job.py"
JAR_URI = "gs://tp-artifacts/jars/flink-sql-connector-kafka-5.0.0-2.2.jar"


def make_request(**overrides) -> JobRequest:
    fields = dict(window_seconds=60, out_of_orderness_seconds=5, parallelism=2,
                  bootstrap_servers="b-1.msk.example:9092,b-2.msk.example:9092",
                  source_topic="ticket-bookings", results_topic="analytics-results",
                  project_id=PROJECT, region=REGION, cluster_name=CLUSTER,
                  job_file_uri=JOB_URI, connector_jar_uri=JAR_URI)
    fields.update(overrides)
    return JobRequest.build("shop", "tickets", **fields)


@pytest.fixture
def engine(dataproc_server) -> DataprocEngine:
    return DataprocEngine(client=dataproc_server.client(), timeout=5, cancel_wait=2, backoff_base=0.5,
                          backoff_max=2)


def methods(server) -> list[str]:
    return [r.method for r in server.requests]


def test_make_engine_gives_dataproc_engine(dataproc_server):
    eng = make_engine("dataproc", client=dataproc_server.client())
    assert isinstance(eng, DataprocEngine) and eng.name == "dataproc"


def test_submit_request_field_by_field(engine, dataproc_server):
    req = make_request()
    status = engine.ensure(req, None)

    job_id = f"tp-shop-tickets-{req.spec_hash[:8]}-0"
    assert status.job_id == job_id
    assert status.state == PENDING
    assert status.spec_hash == req.spec_hash
    # One look-up (no job of this spec yet), then exactly one submission.
    assert methods(dataproc_server) == ["GetJob", "SubmitJob"]

    sent = dataproc_server.calls("SubmitJob")[0]
    assert sent.project_id == PROJECT
    assert sent.region == REGION
    assert sent.request_id == request_id_for(req, 0)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", sent.request_id)
    job = sent.job
    assert job.reference.project_id == PROJECT
    assert job.reference.job_id == job_id
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", job.reference.job_id)
    assert job.placement.cluster_name == CLUSTER
    assert job.placement.cluster_labels == {}
    assert dict(job.labels) == {"managed-by": "ticketplatform-operator", "tp-namespace": "shop",
                                "tp-name": "tickets", "tp-spec-hash": req.spec_hash}
    assert job.scheduling.max_failures_per_hour == 5
    assert job.scheduling.max_failures_total == 20
    # Exactly one job type is set, and it is the Flink job.
    assert [f for f in ("hadoop_job", "spark_job", "pyspark_job", "hive_job", "pig_job", "spark_r_job",
                        "spark_sql_job", "presto_job", "trino_job", "flink_job") if f in job] == ["flink_job"]
    flink = job.flink_job
    assert flink.main_class == PYTHON_DRIVER
    assert flink.main_jar_file_uri == ""
    assert list(flink.jar_file_uris) == [JAR_URI]
    assert dict(flink.properties) == {"parallelism.default": "2"}
    assert flink.savepoint_uri == ""
    checkpoints = f"gs://tp-artifacts/flink/checkpoints/shop-tickets/{req.spec_hash}"
    assert list(flink.args) == [
        "-pyfs", JOB_URI, "-pym", "analytics_job",
        "--bootstrap-servers", "b-1.msk.example:9092,b-2.msk.example:9092",
        "--source-topic", "ticket-bookings",
        "--results-topic", "analytics-results",
        "--group-id", "tp-analytics-shop-tickets",
        "--window", "60s",
        "--out-of-orderness", "5000ms",
        "--idle-timeout", "10000ms",
        "--parallelism", "2",
        "--checkpoint-dir", checkpoints,
        "--checkpoint-interval", "5000ms",
        "--job-name", "ticketplatform-analytics-shop-tickets",
        "--restore", "auto",
    ]
    # The client routes by project and region (the header the real frontend uses).
    meta = dataproc_server.requests[-1].metadata
    assert f"project_id={PROJECT}" in meta["x-goog-request-params"]
    assert f"region={REGION}" in meta["x-goog-request-params"]


def test_state_polling_into_status(engine, dataproc_server):
    req = make_request()
    status = engine.ensure(req, None)
    assert status.state == PENDING
    submitted_at = status.last_state_change

    status = engine.ensure(req, status)          # the server answers PENDING, then starts the job
    assert status.state == PENDING
    assert status.last_state_change == submitted_at
    time.sleep(1.1)                               # status times have second precision
    status = engine.ensure(req, status)
    assert status.state == RUNNING
    assert status.last_state_change > submitted_at
    assert "RUNNING" in status.message
    assert methods(dataproc_server)[-2:] == ["GetJob", "GetJob"]
    assert dataproc_server.calls("GetJob")[-1].job_id == status.job_id
    assert dataproc_server.calls("GetJob")[-1].project_id == PROJECT
    assert dataproc_server.calls("GetJob")[-1].region == REGION

    # Steady state: one GetJob per reconcile and nothing else.
    before = len(dataproc_server.requests)
    again = engine.ensure(req, status)
    assert again.state == RUNNING and again.last_state_change == status.last_state_change
    assert methods(dataproc_server)[before:] == ["GetJob"]

    # The status round-trips through the CR's camelCase status.
    assert JobStatus.from_status(again.to_status()) == again


def test_failed_job_is_reported_then_resubmitted_after_backoff(dataproc_server):
    # Back-off 2 s (status times have second precision, so shorter would blur "within the back-off").
    engine = DataprocEngine(client=dataproc_server.client(), timeout=5, backoff_base=2, backoff_max=10)
    req = make_request()
    status = engine.ensure(req, None)
    status = engine.ensure(req, engine.ensure(req, status))
    assert status.state == RUNNING
    dataproc_server.set_state(status.job_id, "ERROR", "Flink job failed: broker unreachable")

    failed = engine.ensure(req, status)
    assert failed.state == FAILED
    assert "broker unreachable" in failed.message and "resubmitting in" in failed.message
    assert failed.restarts == 1
    assert len(dataproc_server.calls("SubmitJob")) == 1

    # Within the back-off nothing is submitted; after it, attempt 1 goes in with its own request id.
    assert engine.ensure(req, failed).state == FAILED
    assert len(dataproc_server.calls("SubmitJob")) == 1
    time.sleep(3.1)
    again = engine.ensure(req, failed)
    assert again.job_id == job_id_for(req, 1) and again.state == PENDING
    submits = dataproc_server.calls("SubmitJob")
    assert len(submits) == 2 and submits[1].request_id == request_id_for(req, 1) != submits[0].request_id


def test_cancel_on_delete(engine, dataproc_server):
    req = make_request()
    status = engine.ensure(req, None)
    status = engine.ensure(req, engine.ensure(req, status))
    assert status.state == RUNNING

    engine.cancel(req, status)
    cancels = dataproc_server.calls("CancelJob")
    assert len(cancels) == 1
    assert (cancels[0].project_id, cancels[0].region, cancels[0].job_id) == (PROJECT, REGION, status.job_id)
    assert dataproc_server.controller.state(status.job_id) == "CANCEL_PENDING"
    engine.ensure  # noqa: B018 - (nothing else is called on deletion)
    # Cancelling again (a retried delete handler) is harmless.
    dataproc_server.set_state(status.job_id, "CANCELLED")
    engine.cancel(req, status)
    assert dataproc_server.controller.state(status.job_id) == "CANCELLED"


def test_spec_change_cancels_old_job_then_submits_new(engine, dataproc_server):
    old_req = make_request()
    status = engine.ensure(old_req, None)
    status = engine.ensure(old_req, engine.ensure(old_req, status))
    assert status.state == RUNNING
    old_id = status.job_id

    new_req = make_request(window_seconds=30)
    assert new_req.spec_hash != old_req.spec_hash
    mark = len(dataproc_server.requests)
    new_status = engine.ensure(new_req, status)

    calls = dataproc_server.requests[mark:]
    cancel_at = next(i for i, r in enumerate(calls) if r.method == "CancelJob")
    submit_at = next(i for i, r in enumerate(calls) if r.method == "SubmitJob")
    assert cancel_at < submit_at
    assert calls[cancel_at].request.job_id == old_id
    assert dataproc_server.controller.state(old_id) == "CANCELLED"
    assert new_status.job_id == job_id_for(new_req, 0) != old_id
    assert new_status.spec_hash == new_req.spec_hash
    assert "--window" in calls[submit_at].request.job.flink_job.args
    args = list(calls[submit_at].request.job.flink_job.args)
    assert args[args.index("--window") + 1] == "30s"
    assert len(dataproc_server.jobs) == 2


def test_spec_change_waits_for_a_slow_cancel(dataproc_server):
    dataproc_server.controller.auto_advance = False    # a cluster that takes its time
    engine = DataprocEngine(client=dataproc_server.client(), cancel_wait=0.5)
    old_req = make_request()
    status = engine.ensure(old_req, None)
    dataproc_server.set_state(status.job_id, "RUNNING")
    status = engine.ensure(old_req, status)

    new_req = make_request(parallelism=4)
    waiting = engine.ensure(new_req, status)
    assert waiting.state == CANCELLING and waiting.job_id == status.job_id
    assert waiting.spec_hash == old_req.spec_hash        # still describes the old job
    assert len(dataproc_server.calls("SubmitJob")) == 1  # nothing new while the old one runs

    dataproc_server.set_state(status.job_id, "CANCELLED")
    new_status = engine.ensure(new_req, waiting)
    assert new_status.job_id == job_id_for(new_req, 0) and new_status.state == PENDING
    assert len(dataproc_server.calls("SubmitJob")) == 2


def test_retry_with_same_request_id_gives_one_job(engine, dataproc_server):
    req = make_request()
    # The server creates the job but its answer is lost: the engine reports UNKNOWN...
    dataproc_server.lose_next_answer("SubmitJob")
    lost = engine.ensure(req, None)
    assert lost.state == UNKNOWN and "unavailable" in lost.message.lower()
    assert len(dataproc_server.jobs) == 1

    # ...and the next reconcile finds the job instead of starting a second one.
    found = engine.ensure(req, lost)
    assert found.job_id == job_id_for(req, 0)
    assert found.state in (PENDING, RUNNING)
    assert len(dataproc_server.jobs) == 1

    # A plain retry of the same SubmitJobRequest (same request_id) returns the same job.
    first = dataproc_server.calls("SubmitJob")[0]
    again = dataproc_server.client().submit_job(request=first)
    assert again.reference.job_id == found.job_id
    assert again.job_uuid == dataproc_server.jobs[found.job_id].job_uuid
    assert len(dataproc_server.jobs) == 1
    assert len(dataproc_server.calls("SubmitJob")) == 2


def test_status_lost_adopts_running_job(engine, dataproc_server):
    req = make_request()
    status = engine.ensure(req, None)
    engine.ensure(req, status)
    # The operator restarted and lost the recorded status: the live job is adopted, not duplicated.
    adopted = engine.ensure(req, None)
    assert adopted.job_id == status.job_id and adopted.state == RUNNING
    assert len(dataproc_server.calls("SubmitJob")) == 1


def test_spec_reverted_gets_a_fresh_attempt(engine, dataproc_server):
    a, b = make_request(), make_request(window_seconds=120)
    s = engine.ensure(a, None)
    s = engine.ensure(b, s)            # A cancelled, B submitted
    s = engine.ensure(a, s)            # back to A: attempt 0 of A is cancelled, so attempt 1
    assert s.job_id == job_id_for(a, 1)
    assert dataproc_server.controller.state(job_id_for(a, 0)) == "CANCELLED"
    assert dataproc_server.controller.state(job_id_for(b, 0)) in ("CANCEL_PENDING", "CANCELLED")


def test_unreachable_api_is_unknown_then_recovers(engine, dataproc_server):
    req = make_request()
    status = engine.ensure(req, None)
    dataproc_server.fail_next("GetJob", grpc.StatusCode.UNAVAILABLE)
    down = engine.ensure(req, status)
    assert down.state == UNKNOWN and down.job_id == status.job_id
    up = engine.ensure(req, down)
    assert up.state in (PENDING, RUNNING) and up.job_id == status.job_id
    assert len(dataproc_server.calls("SubmitJob")) == 1


def test_refused_submission_is_failed(engine, dataproc_server):
    req = make_request(cluster_name="")
    status = engine.ensure(req, None)
    assert status.state == FAILED
    assert "cluster_name" in status.message
    assert dataproc_server.jobs == {}


def test_unreachable_server_does_not_block(dataproc_server):
    from google.cloud import dataproc_v1
    from google.cloud.dataproc_v1.services.job_controller.transports import JobControllerGrpcTransport

    channel = grpc.insecure_channel("127.0.0.1:9")   # nothing listens there
    engine = DataprocEngine(client=dataproc_v1.JobControllerClient(
        transport=JobControllerGrpcTransport(channel=channel)), timeout=2)
    started = time.monotonic()
    status = engine.ensure(make_request(), None)
    assert status.state == UNKNOWN
    assert time.monotonic() - started < 10
    channel.close()
