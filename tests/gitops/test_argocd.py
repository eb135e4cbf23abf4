"""The Argo CD layout in gitops/: every manifest parses and is accepted by the local apiserver
(server-side dry-run; Argo CD's own kinds through a minimal stand-in CRD that exists only during
the test), the Applications are consistent with the AppProject and the repository, sync waves put
the CRD before any TicketPlatform, and the TicketPlatform health check (Lua, argocd-cm) gives the
right verdict for real statuses, in Lua 5.1 (the dialect of Argo CD's gopher-lua, through lupa)
and in Debian's lua5.4."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.fixtures.controlplane import REPO_DIR, ControlPlane
from tests.fixtures.operator import apply_tp, get_tp, tp_manifest, wait_phase

GITOPS = REPO_DIR / "gitops"
ARGOCD_CM = GITOPS / "argocd" / "argocd-cm.yaml"
TP_HEALTH_KEY = "resource.customizations.health.ticketing.io_TicketPlatform"
APP_HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
IN_CLUSTER = "https://kubernetes.default.svc"
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")

# A stand-in for Argo CD's CRDs (not installed on the local cluster): the apiserver then checks
# the objects' metadata and kinds. Created only for these tests, deleted afterwards.
ARGO_CRDS = {
    "applications.argoproj.io": ("Application", "applications", "Namespaced"),
    "appprojects.argoproj.io": ("AppProject", "appprojects", "Namespaced"),
}


def _crd(name: str, kind: str, plural: str, scope: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name, "labels": {"ticketplatform.test/stand-in": "true"}},
        "spec": {"group": "argoproj.io", "scope": scope,
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def manifests() -> list[tuple[Path, dict]]:
    out = []
    for path in sorted(GITOPS.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        with open(path, encoding="utf-8") as f:
            out += [(path, doc) for doc in yaml.safe_load_all(f) if doc]
    return out


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in manifests() if doc["kind"] == kind}


def _wave(app: dict) -> int:
    return int(app["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


def _sources(app: dict) -> list[dict]:
    return app["spec"].get("sources") or [app["spec"]["source"]]


def _lua_script(key: str) -> str:
    cm = yaml.safe_load(ARGOCD_CM.read_text())
    return cm["data"][key]


# ------------------------------------------------------------------------- parse + shape ----
def test_every_manifest_parses_and_is_known():
    docs = manifests()
    assert len(docs) >= 10
    kinds = {}
    for path, doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path
        assert doc["metadata"].get("name"), path
        kinds.setdefault(doc["kind"], []).append(doc["metadata"]["name"])
    assert set(kinds) == {"Application", "AppProject", "ConfigMap", "TicketPlatform", "ServiceAccount", "PodMonitor"}, kinds
    for path in GITOPS.rglob("*.json"):
        json.loads(path.read_text())
    for path in GITOPS.rglob("kustomization.yaml"):
        yaml.safe_load(path.read_text())


def test_applications_agree_with_the_project_and_the_repository(controlplane: ControlPlane):
    (project,) = by_kind("AppProject").values()
    apps = by_kind("Application")
    assert {"ticketplatform-root", "ticketplatform-crds", "ticketplatform-operator", "ticketplatform-platforms",
            "kube-prometheus-stack", "loki", "promtail", "ticketplatform-monitoring"} <= set(apps)
    repos = set(project["spec"]["sourceRepos"])
    destinations = {(d["server"], d["namespace"]) for d in project["spec"]["destinations"]}
    git_repos = set()
    for name, app in apps.items():
        spec = app["spec"]
        assert app["metadata"]["namespace"] == "argocd", name
        assert spec["project"] == project["metadata"]["name"], name
        dest = spec["destination"]
        assert dest["server"] == IN_CLUSTER, name
        if "namespace" in dest:
            assert (IN_CLUSTER, dest["namespace"]) in destinations, f"{name}: {dest['namespace']} not in the project"
        for source in _sources(app):
            assert source["repoURL"] in repos, f"{name}: {source['repoURL']} not in the project's sourceRepos"
            if "chart" in source:
                # A Helm chart pinned to one version (no ranges, no `*`, no `latest`).
                assert SEMVER.match(str(source["targetRevision"])), f"{name}: chart version {source['targetRevision']!r}"
                assert source["helm"].get("releaseName"), name
            else:
                git_repos.add(source["repoURL"])
                path = REPO_DIR / source["path"]
                assert path.is_dir(), f"{name}: {source['path']} does not exist in this repository"
                if (path / "kustomization.yaml").exists():
                    controlplane.kubectl("kustomize", str(path))  # builds
                else:
                    assert list(path.glob("*.yaml")), f"{name}: no manifests in {source['path']}"
        automated = spec.get("syncPolicy", {}).get("automated")
        assert automated is not None and automated.get("selfHeal") is True, f"{name}: automated sync with selfHeal"
    assert len(git_repos) == 1, f"every git source is the same repository: {git_repos}"
    # The root app of apps points at the folder holding the other Applications, and nothing else.
    root = apps["ticketplatform-root"]
    app_dir = REPO_DIR / root["spec"]["source"]["path"]
    children = {yaml.safe_load(p.read_text())["metadata"]["name"] for p in app_dir.glob("*.yaml")}
    assert children == set(apps) - {"ticketplatform-root"}
    # Cluster-scoped kinds the install needs are whitelisted.
    allowed = {(r["group"], r["kind"]) for r in project["spec"]["clusterResourceWhitelist"]}
    assert {("apiextensions.k8s.io", "CustomResourceDefinition"), ("rbac.authorization.k8s.io", "ClusterRole"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("", "Namespace")} <= allowed


def test_sync_waves_put_the_crd_before_any_ticketplatform():
    apps = by_kind("Application")
    wave = {name: _wave(app) for name, app in apps.items()}
    assert wave["ticketplatform-crds"] < wave["ticketplatform-operator"] < wave["ticketplatform-platforms"]
    # Monitoring CRDs (ServiceMonitor, PodMonitor) before what uses them; Loki before Promtail.
    assert wave["kube-prometheus-stack"] < wave["ticketplatform-monitoring"]
    assert wave["kube-prometheus-stack"] < wave["ticketplatform-platforms"]
    assert wave["loki"] < wave["promtail"]
    # The CRD app syncs exactly the generated CRD, and is never pruned or cascade-deleted.
    crds = apps["ticketplatform-crds"]
    (source,) = _sources(crds)
    crd_files = sorted((REPO_DIR / source["path"]).glob("*.yaml"))
    assert [yaml.safe_load(p.read_text())["kind"] for p in crd_files] == ["CustomResourceDefinition"]
    assert crds["spec"]["syncPolicy"]["automated"]["prune"] is False
    assert "resources-finalizer.argocd.argoproj.io" not in crds["metadata"].get("finalizers", [])
    # The operator app is the operator/deploy kustomization.
    (source,) = _sources(apps["ticketplatform-operator"])
    assert source["path"] == "operator/deploy"
    # Argo CD waits on child Applications' health only with the Application health check.
    assert "obj.status.health" in _lua_script(APP_HEALTH_KEY)


def test_platforms_app_prunes_self_heals_and_ignores_what_the_operator_writes():
    app = by_kind("Application")["ticketplatform-platforms"]
    spec = app["spec"]
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert "RespectIgnoreDifferences=true" in spec["syncPolicy"]["syncOptions"]
    (ignore,) = [d for d in spec["ignoreDifferences"] if d["kind"] == "TicketPlatform"]
    assert ignore["group"] == "ticketing.io"
    assert {"/metadata/finalizers", "/status"} <= set(ignore["jsonPointers"])
    assert "kopf" in ignore["managedFieldsManagers"]
    # The folder holds TicketPlatforms and the ServiceAccounts their pods run as (IRSA), all for
    # the Application's namespace; the ServiceAccounts come in an earlier wave.
    (source,) = _sources(app)
    docs = [d for p in (REPO_DIR / source["path"]).glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    assert {d["kind"] for d in docs} == {"TicketPlatform", "ServiceAccount"}
    assert all(d["metadata"].get("namespace", spec["destination"]["namespace"]) == spec["destination"]["namespace"]
               for d in docs)
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    for tp in (d for d in docs if d["kind"] == "TicketPlatform"):
        for name, svc in tp["spec"]["services"].items():
            if svc.get("serviceAccountName"):
                account = accounts.get(svc["serviceAccountName"])
                assert account is not None, f"{name}: ServiceAccount {svc['serviceAccountName']} is not in git"
                assert _wave(account) < _wave(tp)
                assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_operator_app_kustomize_options_build(controlplane: ControlPlane, tmp_path: Path):
    """The operator Application's kustomize options (image, IRSA annotation) as Argo CD applies
    them: an overlay on operator/deploy, built with kubectl's kustomize."""
    app = by_kind("Application")["ticketplatform-operator"]
    (source,) = _sources(app)
    options = source["kustomize"]
    images = []
    for entry in options["images"]:
        name, _, new = entry.partition("=")
        new_name, _, tag = new.rpartition(":")
        images.append({"name": name, "newName": new_name, "newTag": tag})
    overlay = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": [os.path.relpath(REPO_DIR / source["path"], tmp_path)], "images": images,
               "patches": options["patches"]}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    docs = {d["kind"]: d for d in yaml.safe_load_all(controlplane.kubectl("kustomize", str(tmp_path)).stdout) if d}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{images[0]['newName']}:{images[0]['newTag']}"
    assert docs["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("-operator")


def _jq_paths(expr: str, obj: dict) -> list[list[str]]:
    proc = subprocess.run(["jq", "-c", f"[path({expr})]"], input=json.dumps(obj), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_ignore_differences_jq_expression_selects_kopf_annotations():
    """Argo CD evaluates jqPathExpressions as path expressions (gojq); jq gives the same paths."""
    app = by_kind("Application")["ticketplatform-platforms"]
    (expr,) = [e for d in app["spec"]["ignoreDifferences"] for e in d.get("jqPathExpressions", [])]
    live = {"metadata": {"annotations": {
        "ticketing.io/last-handled-configuration": "{...}", "ticketing.io/cleanup_outside_world": "{}",
        "argocd.argoproj.io/sync-wave": "0", "kubectl.kubernetes.io/last-applied-configuration": "{}"}}}
    assert sorted(_jq_paths(expr, live)) == [["metadata", "annotations", "ticketing.io/cleanup_outside_world"],
                                             ["metadata", "annotations", "ticketing.io/last-handled-configuration"]]
    assert _jq_paths(expr, {"metadata": {}}) == []


# ------------------------------------------------------------------- the local apiserver ----
@pytest.fixture(scope="module")
def argo_crds(controlplane: ControlPlane) -> Iterator[None]:
    """Argo CD's kinds served by stand-in CRDs, only while these tests run (an existing real
    Argo CD CRD is used as it is and left alone)."""
    created = []
    for name, (kind, plural, scope) in ARGO_CRDS.items():
        exists = controlplane.kubectl("get", "crd", name, "--ignore-not-found", "-o", "name").stdout.strip()
        if not exists:
            controlplane.kubectl("create", "-f", "-", input=json.dumps(_crd(name, kind, plural, scope)))
            created.append(name)
    for name in created:
        controlplane.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    try:
        yield
    finally:
        for name in created:
            controlplane.kubectl("delete", "crd", name, "--wait=false", "--ignore-not-found", check=False)


def _dry_run(cp: ControlPlane, namespace: str, docs: list[dict]) -> str:
    moved = []
    for doc in docs:
        doc = json.loads(json.dumps(doc))
        doc["metadata"]["namespace"] = namespace
        moved.append(doc)
    proc = cp.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(moved),
                      check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("(server dry run)") == len(docs), proc.stdout
    return proc.stdout


def test_kubernetes_manifests_are_accepted_by_the_apiserver(controlplane: ControlPlane, crd: str, namespace: str):
    """argocd-cm, and the TicketPlatforms (against the real, generated CRD) and ServiceAccounts
    in gitops/platforms."""
    native = [doc for _, doc in manifests() if doc["kind"] in ("ConfigMap", "TicketPlatform", "ServiceAccount")]
    assert {d["kind"] for d in native} == {"ConfigMap", "TicketPlatform", "ServiceAccount"}
    _dry_run(controlplane, namespace, native)


def test_argo_cd_objects_are_accepted_by_the_apiserver(controlplane: ControlPlane, argo_crds: None, namespace: str):
    argo = [doc for _, doc in manifests() if doc["apiVersion"].startswith("argoproj.io/")]
    assert argo
    _dry_run(controlplane, namespace, argo)


# --------------------------------------------------------------------- Lua health check ----
def _lua_literal(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid Lua string literal for this data
    if isinstance(value, list):
        return "{" + ", ".join(_lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(k)}] = {_lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def run_lua51(script: str, obj: dict) -> tuple[str, str]:
    """Argo CD's way: the script is a chunk with a global `obj`, returning a table."""
    from lupa.lua51 import LuaRuntime

    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.execute(f"return {_lua_literal(obj)}")
    hs = lua.execute(script)
    return hs["status"], hs["message"]


def run_lua54(script: str, obj: dict) -> tuple[str, str]:
    lua = shutil.which("lua5.4")
    if lua is None:
        pytest.skip("lua5.4 is not installed (stack/system-packages.sh, group lua)")
    program = (f"obj = {_lua_literal(obj)}\n"
               f"local hs = (function()\n{script}\nend)()\n"
               "io.write(hs.status, '\\n', hs.message)\n")
    proc = subprocess.run([lua, "-"], input=program, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    status, _, message = proc.stdout.partition("\n")
    return status, message


RUNNERS = {"lua5.1-lupa": run_lua51, "lua5.4-debian": run_lua54}


def _platform(status: dict | None, generation: int = 3) -> dict:
    obj = {"apiVersion": "ticketing.io/v1alpha1", "kind": "TicketPlatform",
           "metadata": {"name": "tickets", "namespace": "ticketing", "generation": generation}, "spec": {}}
    if status is not None:
        obj["status"] = status
    return obj


def _status(*results: tuple[str, str, str, str], generation: int = 3, ready_services: int = 4) -> dict:
    """A status built by the operator's own status code from subsystem results."""
    from ticketplatform_operator.model import SERVICE_NAMES
    from ticketplatform_operator.status import CondResult, build_status

    return build_status(None, generation, [CondResult(*r) for r in results],
                        {"readyServices": f"{ready_services}/{len(SERVICE_NAMES)}", "url": "http://tickets.example.com"})


ALL_GOOD = [("DeploymentsReady", "True", "AllServicesReady", "All four services have their replicas ready."),
            ("MonitoringReady", "True", "ServiceMonitorApplied", "ServiceMonitor selects the four services' /metrics."),
            ("TopicsReady", "True", "TopicsReady", "2 topics ready."),
            ("AnalyticsReady", "True", "JobRunning", "Job running.")]


def _cases() -> dict[str, tuple[dict, str, list[str]]]:
    """name -> (object, expected health, substrings of the expected message)."""
    waiting = [("DeploymentsReady", "False", "ServicesNotReady", "waiting for booking-service 1/2"), *ALL_GOOD[1:]]
    kafka_down = [ALL_GOOD[0], ALL_GOOD[1], ("TopicsReady", "False", "KafkaUnavailable", "broker b-1:9092 unreachable"),
                  ALL_GOOD[3]]
    invalid = [("DeploymentsReady", "Unknown", "InvalidSpec", "spec.services.frontend.replicas: must be >= 0")]
    ready = _status(*ALL_GOOD)
    stale = _status(*ALL_GOOD, generation=2)
    pending = dict(_status(*waiting), phase="Pending")
    return {
        "ready": (_platform(ready), "Healthy", ["Ready", "4/4 services ready", "All services are ready."]),
        "progressing": (_platform(_status(*waiting, ready_services=3)), "Progressing",
                        ["3/4", "booking-service 1/2"]),
        "pending": (_platform(pending), "Progressing", ["Pending"]),
        "degraded": (_platform(_status(*kafka_down)), "Degraded", ["Degraded", "TopicsReady", "b-1:9092 unreachable"]),
        "failed": (_platform(_status(*invalid)), "Degraded", ["Failed", "spec.services.frontend.replicas"]),
        "stale-observed-generation": (_platform(stale, generation=3), "Progressing", ["generation 3", "generation 2"]),
        "no-status-yet": (_platform(None), "Progressing", ["Waiting for the operator"]),
        "unknown-phase": (_platform(dict(ready, phase="Exploded")), "Unknown", ["Exploded"]),
    }


def test_sample_statuses_have_the_phases_the_operator_reports():
    """The samples are what the operator's roll-up really produces, not hand-written phases."""
    cases = _cases()
    assert cases["ready"][0]["status"]["phase"] == "Ready"
    assert cases["progressing"][0]["status"]["phase"] == "Progressing"
    assert cases["degraded"][0]["status"]["phase"] == "Degraded"
    assert cases["failed"][0]["status"]["phase"] == "Failed"


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
@pytest.mark.parametrize("case", list(_cases()))
def test_ticketplatform_health_check(runner, case: str):
    obj, want, words = _cases()[case]
    status, message = runner(_lua_script(TP_HEALTH_KEY), obj)
    assert status == want, (status, message)
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("runner", RUNNERS.values(), ids=RUNNERS.keys())
def test_application_health_check(runner):
    script = _lua_script(APP_HEALTH_KEY)
    app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "x"}}
    assert runner(script, app)[0] == "Progressing"
    assert runner(script, dict(app, status={"health": {"status": "Healthy"}}))[0] == "Healthy"
    assert runner(script, dict(app, status={"health": {"status": "Degraded", "message": "boom"}})) == ("Degraded", "boom")


def test_health_check_uses_only_the_sandboxed_lua_argo_cd_allows():
    for key in (TP_HEALTH_KEY, APP_HEALTH_KEY):
        script = _lua_script(key)
        for forbidden in ("os.", "io.", "require", "dofile", "loadstring", "goto", "//"):
            assert forbidden not in script, (key, forbidden)


def test_health_check_on_a_live_ticketplatform(controlplane: ControlPlane, operator, namespace: str):
    """The object exactly as the apiserver serves it, reconciled by the real operator."""
    script = _lua_script(TP_HEALTH_KEY)
    apply_tp(controlplane, namespace, tp_manifest("tickets"))
    first = get_tp(controlplane, namespace, "tickets")
    if first.get("status", {}).get("phase") != "Ready":
        assert run_lua51(script, first)[0] == "Progressing"
    live = wait_phase(controlplane, namespace, "tickets", "Ready", timeout=120)
    for runner in RUNNERS.values():
        status, message = runner(script, live)
        assert status == "Healthy", message
        assert "4/4 services ready" in message
    # A spec change the operator has not observed yet is Progressing, whatever the phase says.
    stale = json.loads(json.dumps(live))
    stale["metadata"]["generation"] = live["metadata"]["generation"] + 1
    assert run_lua51(script, stale)[0] == "Progressing"
    # The jq expression of ignoreDifferences picks exactly the annotations Kopf wrote on it.
    if shutil.which("jq"):
        app = by_kind("Application")["ticketplatform-platforms"]
        (expr,) = [e for d in app["spec"]["ignoreDifferences"] for e in d.get("jqPathExpressions", [])]
        kopf_keys = sorted(k for k in live["metadata"].get("annotations", {}) if k.startswith("ticketing.io/"))
        assert kopf_keys, live["metadata"]
        assert sorted(p[2] for p in _jq_paths(expr, live)) == kopf_keys
    assert "ticketing.io/finalizer" in live["metadata"]["finalizers"]
