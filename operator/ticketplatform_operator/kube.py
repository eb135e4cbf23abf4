"""A small Kubernetes REST client over the official client's ApiClient, for the few kinds the
operator touches. Raw paths avoid API discovery; every write goes through `write` so it is counted."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException

from . import metrics

FIELD_MANAGER = "ticketplatform-operator"


@dataclass(frozen=True)
class Kind:
    api_version: str
    plural: str

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        path = f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"
        return f"{path}/{name}" if name else path


KINDS = {
    "Deployment": Kind("apps/v1", "deployments"),
    "Service": Kind("v1", "services"),
    "Pod": Kind("v1", "pods"),
    "HorizontalPodAutoscaler": Kind("autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": Kind("policy/v1", "poddisruptionbudgets"),
    "ServiceMonitor": Kind("monitoring.coreos.com/v1", "servicemonitors"),
    "TicketPlatform": Kind("ticketing.io/v1alpha1", "ticketplatforms"),
    "CustomResourceDefinition": Kind("apiextensions.k8s.io/v1", "customresourcedefinitions"),
}


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient | None = None):
        if api_client is None:
            try:
                kubernetes.config.load_incluster_config()
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()
            api_client = kubernetes.client.ApiClient()
        self.api = api_client

    def _call(self, method: str, path: str, body: Any = None, query: list | None = None,
              content_type: str | None = None) -> dict[str, Any] | None:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        resp = self.api.call_api(
            path, method, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=30,
        )
        data = resp.data if hasattr(resp, "data") else resp[0].data
        return json.loads(data) if data else None

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", KINDS[kind].path(namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str | None, label_selector: str) -> list[dict[str, Any]]:
        out = self._call("GET", KINDS[kind].path(namespace), query=[("labelSelector", label_selector)])
        return (out or {}).get("items", [])

    def write(self, verb: str, kind: str, path: str, **kw: Any) -> dict[str, Any] | None:
        metrics.API_WRITES.labels(verb=verb, kind=kind).inc()
        return self._call(verb, path, **kw)

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Server-side apply with the operator's one field manager; the operator's view wins."""
        kind = manifest["kind"]
        meta = manifest["metadata"]
        return self.write(
            "PATCH", kind, KINDS[kind].path(meta.get("namespace"), meta["name"]), body=manifest,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        try:
            self.write("DELETE", kind, KINDS[kind].path(namespace, name), body={"propagationPolicy": "Background"})
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.write("PATCH", kind, KINDS[kind].path(namespace, name) + "/status", body={"status": status},
                   content_type="application/merge-patch+json")

    def has_crd(self, name: str) -> bool:
        return self.get("CustomResourceDefinition", None, name) is not None
