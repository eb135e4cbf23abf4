"""Invalid TicketPlatforms are refused at `kubectl apply`, with a message naming the field."""
from __future__ import annotations

import pytest

from tests.fixtures.operator import tp_manifest

CASES = {
    "negative replicas": ('{"services": {"frontend": {"replicas": -1}}}', "spec.services.frontend.replicas"),
    "min above max": ('{"services": {"booking-service": {"autoscaling": {"minReplicas": 12, "maxReplicas": 5}}}}',
                      "spec.services.booking-service.autoscaling.minReplicas"),
    "unknown service": ('{"services": {"payment-service": {"replicas": 1}}}', "spec.services.payment-service"),
    "malformed image": ('{"services": {"user-service": {"image": "Not An Image!"}}}', "spec.services.user-service.image"),
    "unknown analytics engine": ('{"analytics": {"engine": "spark"}}', "spec.analytics.engine"),
    "dataproc without settings": ('{"analytics": {"engine": "dataproc"}}', "spec.analytics.dataproc"),
    "request above limit": ('{"services": {"event-catalog": {"resources": {"requests": {"cpu": "2", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}}}}',
                            "spec.services.event-catalog.resources.requests.cpu"),
    "partitions below one": ('{"kafka": {"topics": {"bookings": {"name": "ticket-bookings", "partitions": 0}}}}',
                             "spec.kafka.topics.bookings.partitions"),
    "two disruption budget fields": ('{"placement": {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}}',
                                     "spec.placement.podDisruptionBudget"),
    "disruption budget not a percentage": ('{"services": {"frontend": {"placement": {"podDisruptionBudget": {"minAvailable": "half"}}}}}',
                                           "spec.services.frontend.placement.podDisruptionBudget.minAvailable"),
    "toleration value with Exists": ('{"placement": {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}}',
                                     "spec.placement.tolerations[0].value"),
    "node selector key": ('{"services": {"booking-service": {"placement": {"nodeSelector": {"not a key": "x"}}}}}',
                          "spec.services.booking-service.placement.nodeSelector"),
    "spread policy": ('{"placement": {"spread": {"zones": "Sometimes"}}}', "spec.placement.spread.zones"),
    "two topics with one name": ('{"kafka": {"topics": {"results": {"name": "ticket-bookings"}}}}',
                                 "spec.kafka.topics.results.name"),
    "disruption budget above 100%": ('{"placement": {"podDisruptionBudget": {"maxUnavailable": "150%"}}}',
                                     "spec.placement.podDisruptionBudget.maxUnavailable"),
    "scale-down window": ('{"services": {"user-service": {"autoscaling": {"scaleDownStabilizationSeconds": 4000}}}}',
                          "spec.services.user-service.autoscaling.scaleDownStabilizationSeconds"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_spec_is_refused_naming_the_field(controlplane, crd, namespace, case):
    spec, field = CASES[case]
    proc = controlplane.kubectl("-n", namespace, "apply", "-f", "-", input=tp_manifest("bad", spec), check=False)
    assert proc.returncode != 0, f"{case} was accepted"
    assert field in proc.stderr, proc.stderr
    assert controlplane.kubectl("-n", namespace, "get", "tp", "bad", check=False).returncode != 0


def test_valid_spec_is_accepted_with_defaults(controlplane, crd, namespace):
    controlplane.kubectl("-n", namespace, "apply", "-f", "-", input=tp_manifest("good", '{"services": {"frontend": {"replicas": 1}}}'))
    spec = controlplane.kubectl_json("-n", namespace, "get", "tp", "good")["spec"]
    assert spec["services"]["frontend"]["replicas"] == 1
    assert spec["services"]["frontend"]["serviceType"] == "LoadBalancer"  # defaulted inside a given object
    assert spec["services"]["booking-service"]["autoscaling"] == {"enabled": True, "minReplicas": 2, "maxReplicas": 10, "targetCPUUtilization": 70,
                                                                  "scaleDownStabilizationSeconds": 300}
    assert spec["services"]["event-catalog"]["seedDemoData"] is False
    assert spec["kafka"]["deletionPolicy"] == "Retain" and spec["analytics"]["engine"] == "local"


def test_valid_placement_is_accepted(controlplane, crd, namespace):
    placement = ('{"placement": {"nodeSelector": {"kubernetes.io/hostname": "tp-node"}, '
                 '"tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}], '
                 '"spread": {"nodes": "ScheduleAnyway"}, "podDisruptionBudget": {"maxUnavailable": 1}}, '
                 '"services": {"booking-service": {"placement": {"podDisruptionBudget": {"minAvailable": "50%"}}}}}')
    controlplane.kubectl("-n", namespace, "apply", "-f", "-", input=tp_manifest("placed", placement))
    spec = controlplane.kubectl_json("-n", namespace, "get", "tp", "placed")["spec"]
    assert spec["placement"]["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert spec["services"]["booking-service"]["placement"]["podDisruptionBudget"] == {"minAvailable": "50%"}
    assert spec["placement"]["spread"] == {"nodes": "ScheduleAnyway", "maxSkew": 1}
    assert spec["placement"]["tolerations"][0]["operator"] == "Exists"


def test_the_model_refuses_what_the_schema_cannot_see(controlplane, crd, namespace):
    """The operator parses every object with the model too; what slips past the schema goes to status as Failed."""
    from ticketplatform_operator.model import describe_validation_error, parse_spec

    with pytest.raises(Exception) as err:
        parse_spec({"services": {"booking-service": {"autoscaling": {"minReplicas": 12, "maxReplicas": 5}}}})
    assert "spec.services.booking-service.autoscaling" in describe_validation_error(err.value)
