"""The analytics job managed by the operator through the dataproc engine, against a local gRPC
server speaking the Dataproc JobController protocol (no GCP account)."""
from __future__ import annotations

import json
import uuid

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import apply_tp, get_tp, tp_manifest, wait_phase


def _spec(kafka, suffix, window=60):
    return json.dumps({
        "kafka": {"bootstrapServers": kafka.bootstrap_servers, "topics": {
            "bookings": {"name": f"bookings-{suffix}"}, "results": {"name": f"results-{suffix}"}}},
        "analytics": {"engine": "dataproc", "windowSeconds": window, "parallelism": 2, "dataproc": {
            "projectId": "tp-test-project", "region": "europe-west1", "cluster": "flink-cluster",
            "jobFileUri": "gs://tp-jobs/analytics_job.py", "connectorJarUri": "gs://tp-jobs/flink-sql-connector-kafka.jar"}},
    })


def _analytics(cp, ns):
    return get_tp(cp, ns, "tickets").get("status", {}).get("analytics", {})


def test_dataproc_job_submitted_polled_resubmitted_and_cancelled(controlplane, operator, namespace, kafka, dataproc_api):
    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    submits_before = len(dataproc_api.calls("SubmitJob"))
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix)))
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    job_id = tp["status"]["analytics"]["jobId"]
    assert tp["status"]["analytics"]["state"] == "RUNNING" and tp["status"]["analytics"]["engine"] == "dataproc"
    submits = dataproc_api.calls("SubmitJob")[submits_before:]
    assert len(submits) == 1, "one submission, however many reconciles ran"
    request = submits[0]
    assert (request.project_id, request.region) == ("tp-test-project", "europe-west1")
    assert request.job.placement.cluster_name == "flink-cluster"
    assert request.job.reference.job_id == job_id and request.request_id
    assert "gs://tp-jobs/flink-sql-connector-kafka.jar" in request.job.flink_job.jar_file_uris
    args = list(request.job.flink_job.args)
    assert "gs://tp-jobs/analytics_job.py" in args and f"bookings-{suffix}" in " ".join(args)
    assert request.job.labels["ticketplatform-namespace"] == namespace if "ticketplatform-namespace" in request.job.labels else True
    table = cp.kubectl("-n", namespace, "get", "tp", "tickets").stdout
    assert "RUNNING" in table

    # The job fails on the cluster: status follows, the platform degrades.
    dataproc_api.set_state(job_id, "ERROR", "driver exited")
    wait_until(lambda: _analytics(cp, namespace).get("state") == "FAILED", timeout=30, message="FAILED in status")

    # A spec change cancels the old job and submits a new one.
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix, window=30)))
    new = wait_until(lambda: (a := _analytics(cp, namespace)).get("jobId") not in (None, job_id) and a.get("state") == "RUNNING" and a,
                     timeout=90, message="a new job for the new spec")
    assert len(dataproc_api.calls("SubmitJob")) - submits_before == 2
    assert "30" in " ".join(dataproc_api.calls("SubmitJob")[-1].job.flink_job.args)

    # Deletion cancels the running job through the finalizer.
    cp.kubectl("-n", namespace, "delete", "tp", "tickets", "--timeout=60s")
    cancelled = [c.job_id for c in dataproc_api.calls("CancelJob")]
    assert new["jobId"] in cancelled


def test_disabling_analytics_cancels_the_job_and_clears_it_from_status(controlplane, operator, namespace, kafka, dataproc_api):
    import time

    from tests.fixtures.operator import RESYNC_SECONDS

    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix)))
    job_id = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)["status"]["analytics"]["jobId"]

    spec = json.loads(_spec(kafka, suffix))
    spec["analytics"]["enabled"] = False
    apply_tp(cp, namespace, tp_manifest("tickets", json.dumps(spec)))
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=60)
    assert tp["status"]["analytics"]["state"] == "Disabled"
    assert "jobId" not in tp["status"]["analytics"], "the cancelled job's id is removed from status"
    assert job_id in [c.job_id for c in dataproc_api.calls("CancelJob")]

    # And the status settles: nothing more is written while nothing changes.
    time.sleep(2)
    offset = cp.audit_offset()
    time.sleep(2 * RESYNC_SECONDS + 2)
    writes = [e for e in cp.operator_writes_since(offset) if e.get("objectRef", {}).get("namespace") == namespace]
    assert writes == [], [(e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("subresource")) for e in writes]
