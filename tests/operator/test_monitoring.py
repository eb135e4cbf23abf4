"""ServiceMonitors: skipped with a condition while their CRD is absent, created once it appears."""
from __future__ import annotations

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import apply_tp, get_tp, tp_manifest, wait_phase

# The Prometheus Operator's CRD, cut down to what the apiserver needs to serve the kind.
SERVICEMONITOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def _condition(tp, kind):
    return next(c for c in tp["status"]["conditions"] if c["type"] == kind)


def test_servicemonitor_follows_its_crd(controlplane, operator, namespace):
    cp = controlplane
    apply_tp(cp, namespace, tp_manifest("tickets"))
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    assert _condition(tp, "MonitoringReady")["reason"] == "ServiceMonitorCRDNotInstalled"
    assert "servicemonitors.monitoring.coreos.com" in _condition(tp, "MonitoringReady")["message"]
    cp.kubectl("apply", "-f", "-", input=SERVICEMONITOR_CRD)
    try:
        cp.kubectl("wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com", "--timeout=30s")
        monitor = wait_until(lambda: (items := cp.kubectl_json("-n", namespace, "get", "servicemonitors")["items"]) and items[0],
                             timeout=3 * 5 + 10, message="ServiceMonitor created at the next resync")
        assert monitor["metadata"]["name"] == "tickets"
        assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
        assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == "tickets"
        wait_until(lambda: _condition(get_tp(cp, namespace, "tickets"), "MonitoringReady")["reason"] == "ServiceMonitorApplied",
                   timeout=20, message="MonitoringReady=ServiceMonitorApplied")
        apply_tp(cp, namespace, tp_manifest("tickets", '{"monitoring": {"enabled": false}}'))
        wait_until(lambda: not cp.kubectl_json("-n", namespace, "get", "servicemonitors")["items"], timeout=20,
                   message="ServiceMonitor pruned when monitoring is disabled")
    finally:
        cp.kubectl("delete", "crd", "servicemonitors.monitoring.coreos.com", "--wait=true", check=False)
