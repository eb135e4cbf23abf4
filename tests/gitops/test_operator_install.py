"""The operator install (operator/deploy) on the real control plane: the ServiceAccount's
least-privilege ClusterRole is enough for the operator to bring a TicketPlatform to Ready, and
grants nothing more than what the operator does.

The operator runs here as a real process with a token minted for the ServiceAccount, scoped to the
test's namespace. The session's own operator (user ticketplatform-operator, cluster-wide) may be
running beside it and act on the same object; so sufficiency is judged on what *this* process did:
its own reconcile metric reached Ready, and none of the ServiceAccount's requests was refused
(the apiserver's audit log). Writes the session operator might have made first are exercised
for the ServiceAccount separately, with a server-side dry-run of the rendered children.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
import pytest
import yaml

from tests.fixtures.controlplane import OPERATOR_USER, REPO_DIR, ControlPlane, wait_until
from tests.fixtures.operator import ARTIFACTS, free_port, tp_manifest, wait_phase

DEPLOY = REPO_DIR / "operator" / "deploy"
SA_NAMESPACE = "ticketplatform-system"
SA_NAME = "ticketplatform-operator"
SA_USER = f"system:serviceaccount:{SA_NAMESPACE}:{SA_NAME}"

# Every permission the ClusterRole grants, as (verb, resource[/subresource], apiGroup), and why.
# `observed` ones must show up in the audit log of the run below; the others are explained.
GRANTED = {
    ("list", "ticketplatforms", "ticketing.io"): "observed",
    ("watch", "ticketplatforms", "ticketing.io"): "observed",
    ("patch", "ticketplatforms", "ticketing.io"): "observed",  # Kopf: finalizer, annotations
    ("patch", "ticketplatforms/status", "ticketing.io"): "observed",
    ("update", "ticketplatforms/finalizers", "ticketing.io"):
        "only checked by the OwnerReferencesPermissionEnforcement admission plugin (blockOwnerDeletion)",
    ("list", "deployments", "apps"): "observed",
    ("watch", "deployments", "apps"): "observed",
    ("create", "deployments", "apps"): "server-side apply that creates (dry-run below)",
    ("patch", "deployments", "apps"): "observed-or-dry-run",
    ("list", "pods", ""): "observed",  # the pod watch (why a service is not running)
    ("watch", "pods", ""): "observed",
    ("list", "services", ""): "observed",
    ("watch", "services", ""): "observed",
    ("create", "services", ""): "server-side apply that creates (dry-run below)",
    ("patch", "services", ""): "observed-or-dry-run",
    ("list", "horizontalpodautoscalers", "autoscaling"): "observed",
    ("watch", "horizontalpodautoscalers", "autoscaling"): "observed",
    ("create", "horizontalpodautoscalers", "autoscaling"): "server-side apply that creates (dry-run below)",
    ("patch", "horizontalpodautoscalers", "autoscaling"): "observed-or-dry-run",
    ("delete", "horizontalpodautoscalers", "autoscaling"): "pruning an HPA the spec no longer wants",
    ("list", "poddisruptionbudgets", "policy"): "observed",  # the watch cache (list, then watch)
    ("watch", "poddisruptionbudgets", "policy"): "observed",
    ("create", "poddisruptionbudgets", "policy"): "server-side apply that creates, when the spec asks for one",
    ("patch", "poddisruptionbudgets", "policy"): "server-side apply, when the spec asks for one",
    ("delete", "poddisruptionbudgets", "policy"): "pruning a PodDisruptionBudget the spec no longer wants",
    ("list", "servicemonitors", "monitoring.coreos.com"): "only with the Prometheus Operator CRD installed",
    ("watch", "servicemonitors", "monitoring.coreos.com"): "only with the Prometheus Operator CRD installed",
    ("create", "servicemonitors", "monitoring.coreos.com"): "only with the Prometheus Operator CRD installed",
    ("patch", "servicemonitors", "monitoring.coreos.com"): "only with the Prometheus Operator CRD installed",
    ("delete", "servicemonitors", "monitoring.coreos.com"): "only with the Prometheus Operator CRD installed",
    ("list", "customresourcedefinitions", "apiextensions.k8s.io"): "observed",
    ("watch", "customresourcedefinitions", "apiextensions.k8s.io"): "observed",
    ("list", "namespaces", ""): "observed",  # Kopf, namespace-scoped mode
    ("watch", "namespaces", ""): "observed",
    ("create", "events", ""): "observed",  # PhaseChanged
}

# What the operator must not be able to do (can-i must answer "no").
DENIED = [
    ("get", "secrets", None), ("list", "secrets", None), ("delete", "secrets", None),
    ("create", "pods", None), ("delete", "pods", None), ("create", "pods/exec", None),
    ("get", "configmaps", None),
    ("delete", "deployments.apps", None), ("delete", "services", None), ("update", "deployments.apps", None),
    ("create", "ticketplatforms.ticketing.io", None), ("delete", "ticketplatforms.ticketing.io", None),
    ("update", "ticketplatforms.ticketing.io", None),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("delete", "namespaces", None), ("create", "namespaces", None),
    ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
    ("create", "serviceaccounts/token", SA_NAMESPACE),
    ("impersonate", "users", None),
    ("delete", "events", None),
]


def _docs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _can_i(cp: ControlPlane, verb: str, resource: str, namespace: str | None) -> bool:
    """Ask the apiserver's authorizer (a SubjectAccessReview, as `kubectl auth can-i --as` does,
    without kubectl's discovery-based resource lookup, so kinds whose CRD is absent work too).
    `resource` is `plural[.group][/subresource]`."""
    plural_group, _, sub = resource.partition("/")
    plural, _, group = plural_group.partition(".")
    attrs = {"verb": verb, "resource": plural, "group": group}
    if sub:
        attrs["subresource"] = sub
    if namespace:
        attrs["namespace"] = namespace
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": SA_USER, "groups": ["system:serviceaccounts", f"system:serviceaccounts:{SA_NAMESPACE}",
                                                   "system:authenticated"],
                       "resourceAttributes": attrs}}
    out = cp.kubectl_json("create", "-f", "-", input=json.dumps(review))
    return bool(out["status"].get("allowed"))


@pytest.fixture(scope="module")
def installed(controlplane: ControlPlane, crd: str) -> ControlPlane:
    """namespace.yaml + rbac.yaml applied for real (idempotent; left installed like the CRD)."""
    controlplane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(DEPLOY / "namespace.yaml"),
                         "-f", str(DEPLOY / "rbac.yaml"))
    return controlplane


@pytest.fixture(scope="module")
def sa_kubeconfig(installed: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A kubeconfig that authenticates with a token minted for the ServiceAccount."""
    cp = installed
    token = cp.kubectl("-n", SA_NAMESPACE, "create", "token", SA_NAME, "--duration=1h").stdout.strip()
    admin = cp.kubectl_json("config", "view", "--raw", "--minify")
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": SA_NAME, "user": {"token": token}}],
        "contexts": [{"name": SA_NAME, "context": {"cluster": "local", "user": SA_NAME}}],
        "current-context": SA_NAME,
    }
    path = tmp_path_factory.mktemp("sa") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    whoami = cp.kubectl_json("auth", "whoami", kubeconfig=str(path))
    assert whoami["status"]["userInfo"]["username"] == SA_USER
    return str(path)


class ScopedOperator:
    """`python -m ticketplatform_operator run -n NS` with the ServiceAccount's kubeconfig."""

    def __init__(self, kubeconfig: str, namespace: str):
        self.metrics_port, self.health_port = free_port(), free_port()
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / "operator-serviceaccount.log"
        env = {**os.environ, "KUBECONFIG": kubeconfig, "TP_RESYNC_SECONDS": "5",
               "OPERATOR_METRICS_PORT": str(self.metrics_port), "OPERATOR_METRICS_ADDR": "127.0.0.1"}
        # Exactly the container's arguments (deployment.yaml), plus the namespace scope.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ticketplatform_operator", "run", "-n", namespace,
             "--liveness", f"http://127.0.0.1:{self.health_port}/healthz"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO_DIR)
        try:
            wait_until(self._healthy, timeout=60, message=f"the ServiceAccount's operator to be live ({self.log_path})")
        except BaseException:
            self.stop()
            raise

    def _get(self, port: int, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.read().decode() if r.status == 200 else None
        except OSError:
            return None

    def _healthy(self) -> bool:
        assert self.proc.poll() is None, f"operator exited {self.proc.returncode}; see {self.log_path}"
        return self._get(self.health_port, "/healthz") is not None

    def metric(self, name: str, **labels: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = self._get(self.metrics_port, "/metrics") or ""
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _perm(event: dict) -> tuple[str, str, str]:
    ref = event.get("objectRef", {})
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    return event["verb"], resource, ref.get("apiGroup", "")


# ----------------------------------------------------------------------------------- tests ----
def test_rbac_file_matches_the_documented_grants():
    """The ClusterRole grants exactly GRANTED: adding a permission means saying why here."""
    role = next(d for d in _docs(DEPLOY / "rbac.yaml") if d["kind"] == "ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert not rule.get("resourceNames"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    granted.add((verb, resource, group))
    assert granted == set(GRANTED), (
        f"granted but not documented: {sorted(granted - set(GRANTED))}; "
        f"documented but not granted: {sorted(set(GRANTED) - granted)}")
    binding = next(d for d in _docs(DEPLOY / "rbac.yaml") if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SA_NAME, "namespace": SA_NAMESPACE}]


def test_serviceaccount_can_do_what_the_operator_does(installed: ControlPlane, namespace: str):
    cp = installed
    missing = []
    for (verb, resource, group) in GRANTED:
        plural, _, sub = resource.partition("/")
        qualified = f"{plural}.{group}" if group else plural
        qualified += f"/{sub}" if sub else ""
        cluster_scoped = resource.split("/")[0] in ("customresourcedefinitions", "namespaces")
        if not _can_i(cp, verb, qualified, None if cluster_scoped else namespace):
            missing.append((verb, qualified))
    assert not missing, f"the ServiceAccount lacks: {missing}"


@pytest.mark.parametrize("verb,resource,ns", DENIED, ids=[f"{v}-{r}" for v, r, _ in DENIED])
def test_serviceaccount_cannot_do_more(installed: ControlPlane, verb: str, resource: str, ns: str | None):
    assert not _can_i(installed, verb, resource, ns or "default"), f"the ServiceAccount may {verb} {resource}"


def test_operator_deployment_is_accepted_and_hardened(installed: ControlPlane):
    cp = installed
    # The whole kustomization (namespace, RBAC, Deployment), validated by the apiserver with
    # admission (PodSecurity `restricted` on the namespace warns for a Deployment that breaks it).
    proc = cp.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-k", str(DEPLOY))
    assert "deployment.apps/ticketplatform-operator serverside-applied (server dry run)" in proc.stdout, proc.stdout
    assert "PodSecurity" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr

    dep = next(d for d in _docs(DEPLOY / "deployment.yaml") if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == SA_NAME
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:1] == ["run"] and "--liveness" in container["args"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert ports["metrics"] == int(env["OPERATOR_METRICS_PORT"])
    assert f":{ports['health']}/healthz" in container["args"][container["args"].index("--liveness") + 1]
    assert dep["spec"]["replicas"] == 1  # Kopf runs standalone: one active operator
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {"namespace.yaml", "rbac.yaml", "deployment.yaml"}


def test_operator_reconciles_to_ready_with_the_serviceaccount(installed: ControlPlane, sa_kubeconfig: str,
                                                              namespace: str):
    cp = installed
    offset = cp.audit_offset()  # before the operator starts: its first lists and watches count
    scoped_operator = ScopedOperator(sa_kubeconfig, namespace)
    cp.kubectl("-n", namespace, "apply", "-f", "-", input=tp_manifest("tickets"))
    try:
        wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
        # This process, not only the session's operator, reconciled the object to Ready.
        wait_until(lambda: scoped_operator.metric("ticketplatform_reconcile_total", result="Ready") > 0,
                   timeout=30, message="the ServiceAccount's operator to count a Ready reconcile")

        # Pruning: an HPA the spec no longer wants is deleted.
        cp.kubectl("-n", namespace, "patch", "tp", "tickets", "--type=merge", "-p",
                   json.dumps({"spec": {"services": {"user-service": {"autoscaling": {"enabled": False}}}}}))
        wait_until(lambda: not cp.kubectl("-n", namespace, "get", "hpa", "tickets-user-service",
                                          "--ignore-not-found", "-o", "name").stdout.strip(),
                   timeout=30, message="HPA tickets-user-service pruned")
        wait_phase(cp, namespace, "tickets", "Ready", timeout=60)

        # Create-by-apply for every child kind, as this ServiceAccount (the session's operator may
        # have created the live children first): the operator's own render, server-side dry-run.
        rendered = subprocess.run(
            [sys.executable, "-m", "ticketplatform_operator", "render", "--no-monitoring", "-n", namespace, "-f", "-"],
            input=tp_manifest("dry-run-probe"), capture_output=True, text=True, check=True, cwd=REPO_DIR).stdout
        proc = cp.kubectl("apply", "--server-side", "--dry-run=server", "--field-manager=ticketplatform-operator",
                          "-f", "-", input=rendered, kubeconfig=sa_kubeconfig, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("serverside-applied (server dry run)") == len([d for d in yaml.safe_load_all(rendered) if d])
    finally:
        # Delete while this operator runs, so it can release its finalizer; stopping it ends its
        # watches, which the audit log records when they close.
        deletion_offset = cp.audit_offset()
        cp.kubectl("-n", namespace, "delete", "tp", "tickets", "--timeout=60s", check=False)
        scoped_operator.stop()

    events = cp.audit_events_since(offset, users=[SA_USER])
    assert events, "no request of the ServiceAccount in the audit log"
    refused = [(e["verb"], e["requestURI"], e.get("responseStatus", {}).get("code")) for e in events
               if e.get("responseStatus", {}).get("code") in (401, 403)
               or e.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid"]
    assert not refused, f"requests of the ServiceAccount refused: {refused}"
    # Nothing else failed either (a GET of a child not created yet is a 404). Only when another
    # operator acted on the same object (the session operators of test runs beside this one act
    # cluster-wide) can Kopf's optimistic patches lose a race (409, or 422 for a failed JSON-patch
    # test) or hit an object already gone (404, during the deletion): not a permission matter.
    others = cp.audit_events_since(offset, users=[OPERATOR_USER], barrier=False)
    raced = any(e.get("objectRef", {}).get("namespace") == namespace and e["verb"] in ("patch", "update")
                for e in others)
    at_deletion = {e["auditID"] for e in cp.audit_events_since(deletion_offset, users=[SA_USER], barrier=False)}

    # The same race on pruning: when both operators delete a stale HPA, one of them finds it gone.
    deleted_by_other = {e["requestURI"] for e in others if e["verb"] == "delete"}

    def expected(e: dict) -> bool:
        code = e["responseStatus"]["code"]
        if e["verb"] == "get" and code == 404:
            return True
        if e["verb"] == "delete" and code == 404 and e["requestURI"] in deleted_by_other:
            return True
        race = raced and e["verb"] == "patch" and e["objectRef"].get("resource") == "ticketplatforms"
        return race and (code in (409, 422) or (code == 404 and e["auditID"] in at_deletion))

    failed = [(e["verb"], e["requestURI"], e["responseStatus"]["code"]) for e in events
              if e.get("responseStatus", {}).get("code", 200) >= 400 and not expected(e)]
    assert not failed, f"requests of the ServiceAccount failed: {failed}"

    # Every permission granted is one the operator uses: seen in this run (by this ServiceAccount,
    # or, for writes the session's operator may have made first, by that user in this namespace),
    # or explained in GRANTED.
    used = {_perm(e) for e in events}
    used_by_either = used | {_perm(e) for e in others if e.get("objectRef", {}).get("namespace") == namespace}
    # When another operator raced this one, it may have made a write (a status patch, the Event of
    # a phase change) before this one saw the need: then either one's write counts.
    writes = {"create", "patch", "update", "delete"}

    def seen(p: tuple[str, str, str], why: str) -> bool:
        if why == "observed-or-dry-run" or (why == "observed" and raced and p[0] in writes):
            return p in used_by_either
        return why != "observed" or p in used

    not_seen = [p for p, why in GRANTED.items() if not seen(p, why)]
    assert not not_seen, f"granted permissions the operator did not use: {not_seen}"
    beyond = sorted(p for p in used if p not in GRANTED and p[1] != "")
    assert not beyond, f"the ServiceAccount used permissions not in GRANTED: {beyond}"
