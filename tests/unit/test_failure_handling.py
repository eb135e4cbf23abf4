"""Pure checks of the pieces behind "every failure ends in status" (the operator tests run them for
real): back-off, failure descriptions, the roll-up, the operator configuration, the read cache."""
from __future__ import annotations

import json

import pytest

from ticketplatform_operator.cache import CachedKube, Snapshot, child_entry, index_id
from ticketplatform_operator.config import ConfigError, OperatorConfig
from ticketplatform_operator.reconcile import describe_failure
from ticketplatform_operator.retry import StepRetry
from ticketplatform_operator.status import CondResult, roll_up
from ticketplatform_operator.topics import KafkaUnavailable


def test_back_off_doubles_up_to_its_cap_and_a_success_or_new_generation_resets_it():
    retry = StepRetry(base_seconds=2, cap_seconds=10)
    retry.new_generation(1)
    assert [retry.failed("topics", now=0) for _ in range(5)] == [2, 4, 8, 10, 10]
    assert retry.waiting("topics", now=9.9) is not None and retry.waiting("topics", now=10) is None
    assert retry.next_retry() == 10
    retry.succeeded("topics")
    assert retry.waiting("topics", now=0) is None and retry.next_retry() is None
    retry.failed("analytics", now=0)
    retry.new_generation(1)
    assert retry.waiting("analytics", now=1) is not None, "the same generation keeps the back-off"
    retry.new_generation(2)
    assert retry.waiting("analytics", now=1) is None, "a new spec is tried at once"


def test_failures_are_described_with_a_camel_case_reason_naming_the_system():
    class DefaultCredentialsError(Exception):
        pass

    reason, message = describe_failure(DefaultCredentialsError("Your default credentials were not found."), "analytics engine dataproc")
    assert (reason, message) == ("DefaultCredentialsError", "analytics engine dataproc: Your default credentials were not found.")
    reason, message = describe_failure(KafkaUnavailable("k:9092", "timed out"), "Kafka")
    assert reason == "KafkaUnavailable" and message == "Kafka at k:9092 is unreachable: timed out"
    reason, message = describe_failure(ValueError("bad\nthing"), "Kafka")
    assert reason == "ValueError" and message == "Kafka: bad thing"
    reason, message = describe_failure(type("lower_case_error", (Exception,), {})("oops"), "Kubernetes API")
    assert reason == "UnexpectedError" and message == "Kubernetes API: lower_case_error: oops"


def test_a_step_that_raised_degrades_whatever_its_reason():
    ok = CondResult("DeploymentsReady", "True", "AllServicesReady")
    ready, phase = roll_up([ok, CondResult("AnalyticsReady", "False", "SomethingNew", "boom", error=True)])
    assert phase == "Degraded" and ready.reason == "SomethingNew"
    assert roll_up([ok, CondResult("AnalyticsReady", "False", "JobStarting")])[1] == "Progressing"


def test_operator_configuration_is_validated_naming_the_variable():
    config = OperatorConfig.from_env({"TP_RESYNC_SECONDS": "7.5", "TP_DATAPROC_ENDPOINT": "127.0.0.1:5000", "PATH": "/bin"})
    assert config.resync_seconds == 7.5 and config.dataproc_endpoint == "127.0.0.1:5000"
    with pytest.raises(ConfigError) as err:
        OperatorConfig.from_env({"TP_RECONCILE_WORKERS": "0", "TP_DATAPROC_ENDPOINT": "http://x"})
    assert "TP_RECONCILE_WORKERS='0'" in str(err.value) and "TP_DATAPROC_ENDPOINT='http://x'" in str(err.value)


def _deployment(name, instance, rv="1"):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "managedFields": [{"manager": "x"}],
                         "labels": {"app.kubernetes.io/instance": instance, "app.kubernetes.io/name": name}},
            "spec": {"replicas": 2}}


class _Index(dict):
    """What Kopf hands a handler for one index: key -> values."""


def test_cache_answers_the_platforms_reads_and_passes_the_rest_on():
    index = _Index()
    for dep in (_deployment("a-frontend", "a"), _deployment("a-user-service", "a"), _deployment("b-frontend", "b")):
        for key, value in child_entry("Deployment", dep).items():
            index.setdefault(key, []).append(value)
    snapshot = Snapshot.take("ns", "a", {index_id("Deployment"): index})
    assert set(snapshot.children) == {("Deployment", "a-frontend"), ("Deployment", "a-user-service")}
    assert "managedFields" not in json.loads(snapshot.children[("Deployment", "a-frontend")])["metadata"]

    class Real:
        calls: list = []

        def get(self, *args):
            self.calls.append(("get", *args))
            return {"from": "apiserver"}

        def list(self, *args):
            self.calls.append(("list", *args))
            return []

    real = Real()
    kube = CachedKube(real, snapshot)
    assert kube.get("Deployment", "ns", "a-frontend")["spec"] == {"replicas": 2}
    assert kube.get("Deployment", "ns", "a-missing") is None, "absent from the cache is absent"
    assert [o["metadata"]["name"] for o in kube.list("Deployment", "ns", "app.kubernetes.io/instance=a")] == ["a-frontend", "a-user-service"]
    assert real.calls == []
    kube.get("Pod", "ns", "p")  # not a cached kind
    kube.list("Deployment", "ns", "app.kubernetes.io/instance=b")  # another platform's
    assert [c[0] for c in real.calls] == ["get", "list"]
    assert not kube.has_crd("servicemonitors.monitoring.coreos.com")


def test_a_recorded_location_round_trips_to_the_request_fields():
    from ticketplatform_operator.analytics import JobRequest
    from ticketplatform_operator.subsystems import job_location, location_fields

    request = JobRequest.build("ns", "tp", project_id="p", region="r", cluster_name="c")
    assert location_fields(job_location(request)) == {"project_id": "p", "region": "r", "cluster_name": "c"}
    assert location_fields(None) == {} and location_fields("somewhere/else") == {}
