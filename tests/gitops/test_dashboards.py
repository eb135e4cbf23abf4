"""The Grafana dashboards (gitops/dashboards/*.json) query only what the code really exports.

Every panel's PromQL is parsed with a real PromQL parser; each metric it reads must appear in the
/metrics output of the running services (the four apps served in-process on the real data plane,
after a registration, a booking and a sold-out booking) or of the real operator process (after it
brought a TicketPlatform to Ready), or be a kube-state-metrics series from the allow-list below.
Label matchers and groupings must name labels those series carry, and the booking panel's exact
label values (route, method, status) must have been seen.
"""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
import requests
import yaml

from tests.fixtures.controlplane import FAKE_NODES_ONLY, REPO_DIR, ControlPlane
from tests.fixtures.operator import apply_tp, tp_manifest, wait_phase
from tests.gitops.promql import TARGET_LABELS, Exposition, panel_queries, panels, parse_query, variable_queries
# The services' fixtures (four apps on the real data plane), shared with tests/services.
from tests.services.conftest import (  # noqa: F401  (fixtures)
    analytics_topic, bookings_topic, db, kafka_admin, make_event, migrated, moto, new_user, service_env,
    services, test_database_url, users_table)

DASHBOARDS = REPO_DIR / "gitops" / "dashboards"
SERVICES_DASHBOARD = DASHBOARDS / "ticketplatform-services.json"
OPERATOR_DASHBOARD = DASHBOARDS / "ticketplatform-operator.json"

# kube-state-metrics (deployed by kube-prometheus-stack), not by this project: name -> labels.
KUBE_STATE_METRICS = {
    "kube_horizontalpodautoscaler_status_current_replicas": {"namespace", "horizontalpodautoscaler"},
    "kube_horizontalpodautoscaler_status_desired_replicas": {"namespace", "horizontalpodautoscaler"},
    "kube_horizontalpodautoscaler_spec_max_replicas": {"namespace", "horizontalpodautoscaler"},
    "kube_horizontalpodautoscaler_spec_min_replicas": {"namespace", "horizontalpodautoscaler"},
}
_LEGEND = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


@pytest.fixture
def service_metrics(services, make_event, new_user) -> dict[str, Exposition]:  # noqa: F811
    """Each service's /metrics after real traffic through the gateway."""
    gateway = services.gateway
    user = new_user()
    event_id = make_event(tickets=1)
    assert requests.get(gateway + "/api/events", timeout=10).status_code == 200
    ok = requests.post(gateway + "/api/bookings/book",
                       json={"user_id": user["user_id"], "event_id": event_id, "ticket_count": 1}, timeout=10)
    assert ok.status_code == 200, ok.text
    sold_out = requests.post(gateway + "/api/bookings/book",
                             json={"user_id": user["user_id"], "event_id": event_id, "ticket_count": 1}, timeout=10)
    assert sold_out.status_code == 409, sold_out.text
    assert requests.get(gateway + "/api/no-such-route", timeout=10).status_code == 404
    return {live.name: Exposition().add_text(_scrape(live.url))
            for live in (services.frontend, services.user, services.catalog, services.booking)}


@pytest.fixture(scope="module")
def operator_metrics(controlplane: ControlPlane, operator) -> Exposition:
    """The real operator process's /metrics after it reconciled a TicketPlatform to Ready."""
    import uuid

    ns = f"t-dashboards-{uuid.uuid4().hex[:6]}"
    controlplane.kubectl("create", "namespace", ns)
    controlplane.kubectl("label", "namespace", ns, "ticketplatform.test/ephemeral=true")
    controlplane.kubectl("annotate", "namespace", ns, *FAKE_NODES_ONLY)
    try:
        apply_tp(controlplane, ns, tp_manifest("tickets"))
        wait_phase(controlplane, ns, "tickets", "Ready", timeout=120)
        text = _scrape(f"http://127.0.0.1:{operator.metrics_port}")
    finally:
        controlplane.kubectl("-n", ns, "delete", "tp", "--all", "--timeout=60s", check=False)
        controlplane.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    return Exposition().add_text(text)


def _declared_operator_labels() -> dict[str, set[str]]:
    """Label names the operator's metrics module declares, for series without samples yet."""
    from prometheus_client import Counter, Histogram

    from ticketplatform_operator import metrics

    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, (Counter, Histogram)) or type(obj).__name__ == "Gauge":
            suffixes = {Counter: ("_total",), Histogram: ("_bucket", "_count", "_sum")}.get(type(obj), ("",))
            for suffix in suffixes:
                out[obj._name + suffix] = set(obj._labelnames) | ({"le"} if suffix == "_bucket" else set())
    return out


def _check_dashboard(dashboard: dict, sources: dict[str, Exposition], declared: dict[str, set[str]]) -> list[str]:
    """Problems of one dashboard against the expositions it may read (source name -> Exposition)."""
    problems: list[str] = []
    known = {"kube-state-metrics"} | set(sources)

    def exporters(name: str) -> list[str]:
        return [src for src, exp in sources.items() if name in exp.names] + (
            ["kube-state-metrics"] if name in KUBE_STATE_METRICS else [])

    def labels_of(name: str) -> set[str]:
        if name in KUBE_STATE_METRICS:
            return KUBE_STATE_METRICS[name]
        seen = set().union(*(exp.label_names(name) for exp in sources.values()))
        return seen | declared.get(name, set()) | ({"le"} if name.endswith("_bucket") else set())

    def check(where: str, query) -> set[str]:
        available: set[str] = set(TARGET_LABELS)
        for sel in query.selectors:
            found = exporters(sel.name)
            if not found:
                problems.append(f"{where}: metric {sel.name} is not exported by any of {sorted(known)}")
                continue
            labels = labels_of(sel.name)
            available |= labels
            for label, op, value in sel.matchers:
                if label in TARGET_LABELS:
                    continue
                if label not in labels:
                    problems.append(f"{where}: {sel.name} has no label {label!r} (has {sorted(labels)})")
                elif op == "=" and not any(exp.has_value(sel.name, label, value) for exp in sources.values()):
                    problems.append(f"{where}: no {sel.name} sample with {label}={value!r} was exported")
        for label in query.grouping - available:
            problems.append(f"{where}: groups by {label!r}, which no series it reads carries")
        return (query.grouping | TARGET_LABELS) if query.grouping else available

    for panel, target, query in panel_queries(dashboard):
        where = f"panel {panel['title']!r} {target['refId']}"
        usable = check(where, query)
        for label in _LEGEND.findall(target.get("legendFormat", "")):
            if label not in usable:
                problems.append(f"{where}: legend uses {{{{{label}}}}}, not a label of the result")
    for name, query, label in variable_queries(dashboard):
        usable = check(f"variable {name}", query)
        if label not in usable:
            problems.append(f"variable {name}: label {label!r} is not on {query.selectors[0].name}")
    return problems


# ----------------------------------------------------------------------------------- tests ----
@pytest.mark.parametrize("path", [SERVICES_DASHBOARD, OPERATOR_DASHBOARD], ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Path):
    dashboard = _load(path)
    assert dashboard["uid"] == path.stem and dashboard["title"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "datasource" in variables
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys(), panel["title"]
        if panel.get("targets"):
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]
        if panel.get("repeat"):
            assert panel["repeat"] in variables, panel["title"]
    # Every expression is valid PromQL (parse_query raises on a syntax error).
    assert list(panel_queries(dashboard))


def test_services_dashboard_has_the_required_panels():
    dashboard = _load(SERVICES_DASHBOARD)
    exprs = {p["title"]: " ".join(t["expr"] for t in p.get("targets", [])) for p in panels(dashboard)}
    assert "rate(http_requests_total" in exprs["Request rate by service"]
    assert "http_request_errors_total" in exprs["Error rate by service"]
    latency = exprs["Latency p50 / p95 / p99: $service"]
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket" in latency
    assert "kube_horizontalpodautoscaler_status_current_replicas" in exprs["HPA replicas"]
    assert 'route="/bookings", method="POST"' in exprs["Bookings per minute"]
    assert "analytics_results_received_total" in exprs["Analytics results per minute"]


def test_operator_dashboard_has_the_required_panels():
    exprs = " ".join(t["expr"] for p in panels(_load(OPERATOR_DASHBOARD)) for t in p.get("targets", []))
    for name in ("ticketplatform_reconcile_total", "ticketplatform_reconcile_errors_total",
                 "ticketplatform_reconcile_duration_seconds_bucket"):
        assert name in exprs


def test_services_dashboard_reads_only_what_the_services_export(service_metrics):
    # The per-service panels select every service: each one must export the HTTP metrics.
    http = {s.name for _, _, q in panel_queries(_load(SERVICES_DASHBOARD)) for s in q.selectors
            if s.name.startswith("http_")}
    for name, exposition in service_metrics.items():
        assert http <= exposition.names, f"{name} does not export {sorted(http - exposition.names)}"
    problems = _check_dashboard(_load(SERVICES_DASHBOARD), service_metrics, {})
    assert not problems, "\n".join(problems)


def test_operator_dashboard_reads_only_what_the_operator_exports(operator_metrics):
    problems = _check_dashboard(_load(OPERATOR_DASHBOARD), {"operator": operator_metrics}, _declared_operator_labels())
    assert not problems, "\n".join(problems)


def test_dashboards_ship_as_configmaps_for_the_grafana_sidecar(controlplane: ControlPlane, namespace: str):
    built = controlplane.kubectl("kustomize", str(REPO_DIR / "gitops" / "monitoring")).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    maps = [d for d in docs if d["kind"] == "ConfigMap"]
    files = sorted(DASHBOARDS.glob("*.json"))
    assert len(maps) == len(files)
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "monitoring"
        ((key, text),) = cm["data"].items()
        assert json.loads(text) == _load(DASHBOARDS / key)
    # The ConfigMaps as the apiserver takes them (server-side dry-run, in a namespace of the test's).
    for cm in maps:
        cm["metadata"]["namespace"] = namespace
    proc = controlplane.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-",
                                input=yaml.safe_dump_all(maps))
    assert proc.stdout.count("(server dry run)") == len(maps), proc.stdout
    podmonitor = next(d for d in docs if d["kind"] == "PodMonitor")
    deployment = next(d for d in yaml.safe_load_all((REPO_DIR / "operator" / "deploy" / "deployment.yaml").read_text()) if d)
    pod = deployment["spec"]["template"]
    assert podmonitor["spec"]["namespaceSelector"]["matchNames"] == [deployment["metadata"]["namespace"]]
    assert podmonitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert podmonitor["spec"]["podMetricsEndpoints"][0]["port"] in ports


def test_promql_checker_catches_a_made_up_metric(service_metrics):
    """The check above is not vacuous: a panel reading an invented metric or label is reported."""
    fake = {"panels": [{"id": 1, "title": "fake", "targets": [
        {"refId": "A", "expr": 'sum by (event_id) (rate(analytics_results_total{namespace="$namespace"}[5m]))'},
        {"refId": "B", "expr": 'sum(rate(http_requests_total{route="/no-such-route"}[5m]))'},
        {"refId": "C", "expr": 'sum by (tenant) (rate(http_requests_total[5m]))'}]}]}
    problems = "\n".join(_check_dashboard(fake, service_metrics, {}))
    assert "analytics_results_total is not exported" in problems
    assert "route='/no-such-route'" in problems
    assert "groups by 'tenant'" in problems
    with pytest.raises(Exception):
        parse_query("sum(rate(http_requests_total[5m])")
