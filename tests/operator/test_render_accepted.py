"""Everything `render` produces is accepted by the apiserver (server-side dry run, with admission):
field names, volume mounts that name existing volumes, probes on declared ports, topology spread,
tolerations and PodDisruptionBudgets, in the namespace's `restricted` Pod Security level."""
from __future__ import annotations

import json

import yaml

from ticketplatform_operator import model, render

FULL_SPEC = {
    "kafka": {"bootstrapServers": "kafka-0.kafka:9092"},
    "placement": {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 30}],
        "spread": {"nodes": "ScheduleAnyway", "zones": "ScheduleAnyway"},
        "podDisruptionBudget": {"maxUnavailable": 1},
    },
    "services": {
        "event-catalog": {"seedDemoData": True, "secretRef": "db-app", "migrationSecretRef": "db-owner"},
        "booking-service": {"secretRef": "db-app",
                            "autoscaling": {"enabled": True, "scaleDownStabilizationSeconds": 30},
                            "placement": {"podDisruptionBudget": {"minAvailable": "50%"}}},
    },
}


def test_everything_rendered_is_accepted_by_the_apiserver(controlplane, namespace):
    cp = controlplane
    # The strictest Pod Security level: a pod spec that breaks it draws a warning even on a dry run.
    cp.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
               "pod-security.kubernetes.io/warn=restricted", "--overwrite")
    platform = render.Platform(name="full", namespace=namespace, uid=None, spec=model.parse_spec(FULL_SPEC))
    manifests = render.render(platform, include_monitoring=False)
    kinds = {m["kind"] for m in manifests}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    proc = cp.kubectl("apply", "--server-side", "--dry-run=server", "--field-manager=ticketplatform-operator",
                      "-f", "-", input=yaml.safe_dump_all(manifests), check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("serverside-applied (server dry run)") == len(manifests), proc.stdout
    assert "Warning" not in proc.stderr and "PodSecurity" not in proc.stderr, proc.stderr
    # What the apiserver would store still holds what was rendered (nothing dropped as unknown).
    relay = next(m for m in manifests if m["metadata"]["name"] == "full-outbox-relay")
    stored = cp.kubectl_json("apply", "--server-side", "--dry-run=server", "--field-manager=ticketplatform-operator",
                             "-o", "json", "-f", "-", input=json.dumps(relay))
    from ticketplatform_operator.apply import contains

    assert contains(relay, stored)
