"""An informer-style read cache of the platforms' children, so a steady-state reconcile asks the
apiserver nothing.

Kopf indexes (one per child kind, fed by the watches the operator already runs) hold each child as
compact JSON under (namespace, platform name); a small index of CRD names answers "is the
ServiceMonitor CRD installed". Kopf starts no handler before every index has listed its kind once,
so a reconcile never mistakes "not listed yet" for "absent".

A reconcile takes a `Snapshot` of its platform's children on the event loop (the indexes change
only there) and reads through `CachedKube`, which answers gets and lists of the cached kinds from
the snapshot and hands everything else (writes, other kinds) to the real client. After a write,
the watch event that follows updates the index and kicks the platform's loop again."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from .kube import Kube

# Kind -> (group, version, plural) of the children the cache holds.
CACHED_KINDS: dict[str, tuple[str, str, str]] = {
    "Deployment": ("apps", "v1", "deployments"),
    "Service": ("", "v1", "services"),
    "HorizontalPodAutoscaler": ("autoscaling", "v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy", "v1", "poddisruptionbudgets"),
    "ServiceMonitor": ("monitoring.coreos.com", "v1", "servicemonitors"),
}
INSTANCE_LABEL = "app.kubernetes.io/instance"
CRD_INDEX = "crd_names"
CRD_KEY = "installed"


def index_id(kind: str) -> str:
    """The Kopf index (and handler kwarg) holding one kind of children."""
    return f"children_{CACHED_KINDS[kind][2]}"


def child_entry(kind: str, body: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, str, str]]:
    """What a child's index holds: (kind, name, compact JSON), under (namespace, platform). The
    managed fields are left out (the bulk of an object, and never read)."""
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    obj = {**body, "metadata": meta}
    owner = (meta.get("namespace") or "", (meta.get("labels") or {}).get(INSTANCE_LABEL, ""))
    return {owner: (kind, meta.get("name", ""), json.dumps(obj, separators=(",", ":")))}


@dataclass(frozen=True)
class Snapshot:
    """One platform's children at one moment: (kind, name) -> JSON."""

    namespace: str
    name: str
    children: dict[tuple[str, str], str] = field(default_factory=dict)
    crds: frozenset[str] = frozenset()

    @classmethod
    def take(cls, namespace: str, name: str, indexes: Mapping[str, Any]) -> "Snapshot":
        """Copy the platform's entries out of the Kopf indexes (call on the event loop)."""
        children: dict[tuple[str, str], str] = {}
        for kind in CACHED_KINDS:
            index = indexes.get(index_id(kind))
            if index is not None and (namespace, name) in index:
                for k, child_name, raw in index[(namespace, name)]:
                    children[(k, child_name)] = raw
        crd_index = indexes.get(CRD_INDEX)
        crds = frozenset(crd_index[CRD_KEY]) if crd_index is not None and CRD_KEY in crd_index else frozenset()
        return cls(namespace, name, children, crds)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        raw = self.children.get((kind, name))
        return json.loads(raw) if raw is not None else None

    def list(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for (k, _), raw in sorted(self.children.items()) if k == kind]


def _equalities(label_selector: str) -> dict[str, str]:
    """The key=value terms of a label selector (the only kind the operator writes)."""
    return dict(part.split("=", 1) for part in label_selector.split(",") if "=" in part)


def _matches(obj: dict[str, Any], wanted: dict[str, str]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


class CachedKube:
    """A Kube whose reads of one platform's cached children come from a snapshot."""

    def __init__(self, kube: Kube, snapshot: Snapshot):
        self._kube = kube
        self.snapshot = snapshot

    def _cached(self, kind: str, namespace: str | None) -> bool:
        return kind in CACHED_KINDS and namespace == self.snapshot.namespace

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        if self._cached(kind, namespace):
            return self.snapshot.get(kind, name)
        return self._kube.get(kind, namespace, name)

    def list(self, kind: str, namespace: str | None, label_selector: str) -> list[dict[str, Any]]:
        # Only this platform's children are in the snapshot: a selector naming another instance
        # (or none) goes to the apiserver.
        wanted = _equalities(label_selector)
        if self._cached(kind, namespace) and wanted.get(INSTANCE_LABEL) == self.snapshot.name:
            return [o for o in self.snapshot.list(kind) if _matches(o, wanted)]
        return self._kube.list(kind, namespace, label_selector)

    def has_crd(self, name: str) -> bool:
        return name in self.snapshot.crds

    def __getattr__(self, attr: str) -> Any:  # writes and everything else: the real client
        return getattr(self._kube, attr)
