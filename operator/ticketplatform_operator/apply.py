"""Apply desired children with server-side apply, writing nothing when the live objects already
carry every desired field (so a steady-state resync costs reads only), and prune leftovers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from .kube import Kube
from .render import Platform, platform_labels

# Kinds the operator may create conditionally, so stale ones must be pruned.
PRUNABLE = ("HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor")


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, (str, int, float)) and isinstance(have, (str, int, float)):
        try:  # the apiserver canonicalises quantities ("1000m" -> "1")
            return parse_quantity(want) == parse_quantity(have)
        except ValueError:
            return False
    return False


def contains(want: Any, have: Any) -> bool:
    """True when every field of `want` is present with the same value in `have`.

    Lists match element by element (same length); the apiserver only adds defaults inside them."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and contains(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(contains(w, h) for w, h in zip(want, have))
    return _same_scalar(want, have)


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def _ref(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def apply_children(kube: Kube, platform: Platform, desired: list[dict[str, Any]],
                   prunable: tuple[str, ...] = PRUNABLE) -> ApplyReport:
    report = ApplyReport()
    for manifest in desired:
        meta = manifest["metadata"]
        live = kube.get(manifest["kind"], meta["namespace"], meta["name"])
        if live is not None and contains(manifest, live):
            continue
        kube.apply(manifest)
        (report.updated if live is not None else report.created).append(_ref(manifest))
    wanted = {(m["kind"], m["metadata"]["name"]) for m in desired}
    selector = ",".join(f"{k}={v}" for k, v in platform_labels(platform).items())
    for kind in prunable:
        for live in kube.list(kind, platform.namespace, selector):
            name = live["metadata"]["name"]
            if (kind, name) not in wanted:
                kube.delete(kind, platform.namespace, name)
                report.deleted.append(f"{kind}/{name}")
    return report
