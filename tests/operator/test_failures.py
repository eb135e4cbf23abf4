"""Every failure ends in status within one reconcile, with one Warning Event per new reason, and a
failing step is retried with capped exponential back-off rather than at every resync.

The failure: a dataproc platform while the operator has no Google credentials (the real
google-auth raises DefaultCredentialsError). GOOGLE_APPLICATION_CREDENTIALS names a file that does
not exist, so google-auth fails at once, and the metadata server is pointed at a closed loopback
port: nothing leaves the machine."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import OperatorProcess, apply_tp, get_tp, pause_test_operators, tp_manifest, wait_phase

RETRY_BASE, RETRY_CAP, RESYNC = 2, 8, 1
REASON = "DefaultCredentialsError"


@pytest.fixture
def operator_without_google(controlplane, crd):
    """The session's operator replaced by one with no Google credentials, a 1 s resync and a short
    back-off (2 s doubling up to 8 s)."""
    with pause_test_operators():
        op = OperatorProcess(controlplane, extra_env={
            "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/tp-test-google-key.json",
            "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
            "TP_RESYNC_SECONDS": str(RESYNC), "TP_RETRY_BASE_SECONDS": str(RETRY_BASE),
            "TP_RETRY_CAP_SECONDS": str(RETRY_CAP),
        })
        op.start()
        try:
            yield op
        finally:
            op.stop()


def _spec(kafka, suffix, analytics=None):
    return json.dumps({
        "kafka": {"bootstrapServers": kafka.bootstrap_servers, "topics": {
            "bookings": {"name": f"bookings-{suffix}"}, "results": {"name": f"results-{suffix}"}}},
        "analytics": analytics or {"engine": "dataproc", "dataproc": {
            "projectId": "tp-test-project", "region": "europe-west1", "cluster": "flink-cluster",
            "jobFileUri": "gs://tp-jobs/analytics_job.py", "connectorJarUri": "gs://tp-jobs/connector.jar"}},
    })


def _conditions(tp):
    return {c["type"]: c for c in tp.get("status", {}).get("conditions", [])}


def _warning_events(cp, namespace, reason):
    events = cp.kubectl_json("-n", namespace, "get", "events", "--field-selector",
                             f"involvedObject.name=tickets,reason={reason}")["items"]
    return sum(e.get("count") or 1 for e in events if e["type"] == "Warning")


def test_an_unexpected_error_ends_in_status_and_backs_off(controlplane, operator_without_google, namespace, kafka):
    cp, op, suffix = controlplane, operator_without_google, uuid.uuid4().hex[:8]
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix)))

    # In status within one reconcile: the analytics condition says what failed, the other steps
    # went on, and the platform is Degraded.
    def failed_with_reason():
        tp = get_tp(cp, namespace, "tickets")
        return tp if _conditions(tp).get("AnalyticsReady", {}).get("reason") == REASON else None

    tp = wait_until(failed_with_reason, timeout=60, message="AnalyticsReady names the credentials error")
    analytics = _conditions(tp)["AnalyticsReady"]
    assert analytics["status"] == "False"
    assert analytics["message"].startswith("analytics engine dataproc:") and "tp-test-google-key.json" in analytics["message"], analytics
    assert "Retrying in" in analytics["message"]
    assert _conditions(tp)["TopicsReady"]["status"] == "True", "the topics step ran despite the analytics failure"
    tp = wait_phase(cp, namespace, "tickets", "Degraded", timeout=60)
    assert tp["status"]["conditions"][0]["type"] == "Ready" and tp["status"]["conditions"][0]["reason"] == REASON

    # Retried with back-off: over 20 s of 1 s resyncs, the failing step ran only a few times.
    attempts_before = op.metric("ticketplatform_reconcile_errors_total", reason=REASON)
    reconciles_before = op.metric("ticketplatform_reconcile_total")
    time.sleep(20)
    attempts = op.metric("ticketplatform_reconcile_errors_total", reason=REASON) - attempts_before
    reconciles = op.metric("ticketplatform_reconcile_total") - reconciles_before
    assert reconciles >= 10, f"the loop should resync every {RESYNC}s: {reconciles} reconciles in 20s"
    assert 1 <= attempts <= 20 / RETRY_CAP + 3, f"{attempts} attempts of the failing step in 20s ({reconciles} reconciles)"
    # One Warning Event for the new reason, not one per attempt.
    assert _warning_events(cp, namespace, REASON) == 1

    # A new spec is tried at once (the back-off starts over) and recovers.
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix, analytics={"enabled": False})))
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=60)
    assert _conditions(tp)["AnalyticsReady"]["reason"] == "Disabled"


def test_a_bad_operator_setting_stops_the_operator_naming_it(controlplane):
    """No cluster call at all: the configuration is checked before Kopf starts."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TP_RESYNC_SECONDS": "soon", "OPERATOR_METRICS_ADDR": "localhost"}
    proc = subprocess.run([sys.executable, "-m", "ticketplatform_operator", "run"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "TP_RESYNC_SECONDS='soon'" in proc.stderr and "OPERATOR_METRICS_ADDR='localhost'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
