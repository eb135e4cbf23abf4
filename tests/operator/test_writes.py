"""Write discipline: a no-change reconcile writes nothing; a killed operator converges cleanly;
`ticketctl render` shows exactly what the operator applies."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import RESYNC_SECONDS, apply_tp, tp_manifest, wait_phase

from ticketplatform_operator.apply import contains


def _calls(events):
    return json.dumps([(e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("name"),
                        e["objectRef"].get("subresource")) for e in events])


def test_steady_state_reconcile_issues_no_reads_and_no_writes(controlplane, operator, namespace):
    """Children come from the operator's watch cache: an unchanged platform costs the apiserver
    nothing per resync (Kopf's own periodic re-list of each watched kind, cluster-wide and every
    few minutes, is not per platform and not counted)."""
    cp = controlplane
    apply_tp(cp, namespace, tp_manifest("tickets"))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    time.sleep(2)  # let the last status write and its watch event settle
    reconciles_before = operator.metric("ticketplatform_reconcile_total")
    offset = cp.audit_offset()
    # Touch the object (a label: no spec change) to force an immediate reconcile, then span resyncs.
    cp.kubectl("-n", namespace, "label", "tp", "tickets", "touched=yes")
    time.sleep(2 * RESYNC_SECONDS + 2)
    reconciles = operator.metric("ticketplatform_reconcile_total") - reconciles_before
    assert reconciles >= 2, "the operator should have reconciled during the window"
    writes = [e for e in cp.operator_writes_since(offset) if e.get("objectRef", {}).get("namespace") == namespace]
    assert writes == [], "writes during steady state: " + _calls(writes)
    reads = [e for e in cp.operator_reads_since(offset)
             if e["objectRef"].get("namespace") == namespace
             or (e["verb"] == "get" and e["objectRef"].get("resource") == "customresourcedefinitions")]
    assert reads == [], "reads during steady state: " + _calls(reads)


def test_operator_killed_mid_reconcile_converges_without_duplicates(controlplane, operator, namespace):
    cp = controlplane
    operator.kill()
    try:
        apply_tp(cp, namespace, tp_manifest("tickets"))
        operator.start()
        # Kill it as soon as it has begun creating children.
        wait_until(lambda: cp.kubectl_json("-n", namespace, "get", "deployments")["items"], timeout=30, interval=0.05,
                   message="first child created")
        operator.kill()
        partial = len(cp.kubectl_json("-n", namespace, "get", "deployments")["items"])
    finally:
        operator.start()
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    kinds = {k: cp.kubectl_json("-n", namespace, "get", k)["items"] for k in ("deployments", "services", "hpa", "rs")}
    # Four services and the outbox relay.
    assert len(kinds["deployments"]) == 5 and len(kinds["services"]) == 4 and len(kinds["hpa"]) == 2, {k: len(v) for k, v in kinds.items()}
    assert len(kinds["rs"]) == 5, "one ReplicaSet per Deployment: nothing rolled twice"
    uid = tp["metadata"]["uid"]
    for items in kinds.values():
        for obj in items:
            refs = obj["metadata"].get("ownerReferences", [])
            assert len(refs) == 1 and refs[0]["uid"] in (uid, *(d["metadata"]["uid"] for d in kinds["deployments"]))
    print(f"killed after {partial} of 5 deployments existed")


def test_render_equals_what_the_operator_applies(controlplane, operator, namespace):
    cp = controlplane
    apply_tp(cp, namespace, tp_manifest("tickets", '{"services": {"frontend": {"env": {"THEME": "dark"}}}}'))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    live_tp = cp.kubectl("-n", namespace, "get", "tp", "tickets", "-o", "yaml").stdout
    rendered = subprocess.run([sys.executable, "-m", "ticketplatform_operator", "render", "-f", "-", "--no-monitoring"],
                              input=live_tp, capture_output=True, text=True, check=True).stdout
    import yaml

    manifests = [m for m in yaml.safe_load_all(rendered) if m]
    assert len(manifests) == 11  # 5 Deployments (4 services, the outbox relay), 4 Services, 2 HPAs
    for manifest in manifests:
        kind = {"Deployment": "deployment", "Service": "service", "HorizontalPodAutoscaler": "hpa"}[manifest["kind"]]
        live = cp.kubectl_json("-n", namespace, "get", kind, manifest["metadata"]["name"], "--show-managed-fields")
        assert contains(manifest, live), f"{manifest['kind']}/{manifest['metadata']['name']} differs from what is live"
        applied = next(e for e in live["metadata"]["managedFields"] if e["manager"] == "ticketplatform-operator")
        assert applied["operation"] == "Apply"
    managed = {(o["kind"], o["metadata"]["name"]) for k in ("deployments", "services", "hpa")
               for o in cp.kubectl_json("-n", namespace, "get", k, "-l", "app.kubernetes.io/managed-by=ticketplatform-operator")["items"]}
    assert managed == {(m["kind"], m["metadata"]["name"]) for m in manifests}
