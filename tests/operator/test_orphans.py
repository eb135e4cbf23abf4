"""Nothing outside the cluster is orphaned when a spec that was valid becomes invalid: status keeps
the last known job and topics, and deletion cancels that job and applies the recorded topics'
deletion policy, also when the operator was killed in between.

A spec becomes invalid after the fact the way it does in real life: an object stored while the
schema allowed it (here: a CRD briefly loosened, as an older release would have had it), which the
operator's model refuses."""
from __future__ import annotations

import copy
import json
import subprocess
import time
import uuid
from contextlib import contextmanager

import pytest
import yaml
from kafka.admin import KafkaAdminClient

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import CRD_FILE, apply_tp, tp_manifest, wait_phase

DATAPROC = {"engine": "dataproc", "dataproc": {
    "projectId": "tp-test-project", "region": "europe-west1", "cluster": "flink-cluster",
    "jobFileUri": "gs://tp-jobs/analytics_job.py", "connectorJarUri": "gs://tp-jobs/connector.jar"}}
LOCAL = {"engine": "local", "windowSeconds": 3, "outOfOrdernessSeconds": 1}
TOO_MANY_REPLICAS = 5000  # the model allows at most 1000


def _spec(kafka, suffix, analytics):
    return json.dumps({
        "kafka": {"bootstrapServers": kafka.bootstrap_servers, "deletionPolicy": "Delete", "topics": {
            "bookings": {"name": f"bookings-{suffix}", "partitions": 1}, "results": {"name": f"results-{suffix}", "partitions": 1}}},
        "analytics": analytics,
    })


def _apply_crd(cp, crd):
    cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(crd))


@contextmanager
def _crd_without_replica_limit(cp):
    """The TicketPlatform CRD without the upper bound of spec.services.frontend.replicas."""
    strict = yaml.safe_load(CRD_FILE.read_text())
    loose = copy.deepcopy(strict)
    spec = loose["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec["properties"]["services"]["properties"]["frontend"]["properties"]["replicas"]["maximum"]
    _apply_crd(cp, loose)
    try:
        yield
    finally:
        _apply_crd(cp, strict)


def _make_invalid(cp, namespace):
    patch = json.dumps({"spec": {"services": {"frontend": {"replicas": TOO_MANY_REPLICAS}}}})
    with _crd_without_replica_limit(cp):
        # The apiserver takes a moment to validate with the new schema.
        wait_until(lambda: cp.kubectl("-n", namespace, "patch", "tp", "tickets", "--type=merge", "-p", patch,
                                      check=False).returncode == 0, timeout=30, message="the loosened schema accepts the patch")
    tp = wait_phase(cp, namespace, "tickets", "Failed", timeout=60)
    assert "spec.services.frontend.replicas" in tp["status"]["conditions"][0]["message"]
    return tp


def _topics(kafka):
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="test-orphans")
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _gone(cp, namespace):
    return cp.kubectl("-n", namespace, "get", "tp", "tickets", check=False).returncode != 0


def _delete(cp, namespace, operator, kill):
    """Delete the platform; with `kill`, the operator is dead when the deletion is asked for and
    starts again later (the finalizer holds the object meanwhile)."""
    if kill:
        operator.kill()
    try:
        cp.kubectl("-n", namespace, "delete", "tp", "tickets", "--wait=false")
        if kill:
            time.sleep(3)
            assert not _gone(cp, namespace), "the finalizer must hold the object until the operator cleans up"
    finally:
        if kill:
            operator.start()
    wait_until(lambda: _gone(cp, namespace), timeout=90, message="the platform deleted after its clean-up")


@pytest.mark.parametrize("kill", [False, True], ids=["operator-running", "operator-killed"])
def test_dataproc_job_and_topics_cleaned_up_after_the_spec_became_invalid(controlplane, operator, namespace, kafka,
                                                                           dataproc_api, kill):
    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    topics = {f"bookings-{suffix}", f"results-{suffix}"}
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix, DATAPROC)))
    job_id = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)["status"]["analytics"]["jobId"]

    status = _make_invalid(cp, namespace)["status"]
    # Status still knows the job, where it runs, and the topics with their deletion policy.
    assert status["analytics"]["jobId"] == job_id and status["analytics"]["state"] == "RUNNING"
    assert status["analytics"]["location"] == "projects/tp-test-project/regions/europe-west1/clusters/flink-cluster"
    assert {t["name"] for t in status["topics"]} == topics
    assert status["kafka"] == {"bootstrapServers": kafka.bootstrap_servers, "deletionPolicy": "Delete"}
    assert job_id not in [c.job_id for c in dataproc_api.calls("CancelJob")], "the last good spec stays in force"

    _delete(cp, namespace, operator, kill)
    cancels = [c for c in dataproc_api.calls("CancelJob") if c.job_id == job_id]
    assert cancels and (cancels[0].project_id, cancels[0].region) == ("tp-test-project", "europe-west1")
    wait_until(lambda: not (topics & _topics(kafka)), timeout=30, message="the recorded topics deleted (policy Delete)")


def _local_job_running(namespace):
    return subprocess.run(["pgrep", "-f", f"analytics/{namespace}-tickets"], capture_output=True).returncode == 0


def test_local_job_and_topics_cleaned_up_after_the_spec_became_invalid_and_the_operator_was_killed(
        controlplane, operator, namespace, kafka):
    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    topics = {f"bookings-{suffix}", f"results-{suffix}"}
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix, LOCAL)))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=240)
    assert _local_job_running(namespace)

    status = _make_invalid(cp, namespace)["status"]
    assert status["analytics"]["engine"] == "local" and status["analytics"]["state"] == "RUNNING"
    assert _local_job_running(namespace), "the last good spec stays in force"

    _delete(cp, namespace, operator, kill=True)
    wait_until(lambda: not _local_job_running(namespace), timeout=60, message="the local Flink job stopped")
    wait_until(lambda: not (topics & _topics(kafka)), timeout=30, message="the recorded topics deleted (policy Delete)")
