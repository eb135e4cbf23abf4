"""Pure rendering: a TicketPlatform (metadata + parsed spec) -> the manifests the operator applies.

No cluster access here, so `ticketctl render` prints exactly what the operator would apply.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from . import model
from .model import SERVICE_NAMES, ServiceSpec, TicketPlatformSpec

MANAGED_BY = "ticketplatform-operator"
PART_OF = "ticketplatform"
CONFIG_HASH_ANNOTATION = "ticketing.io/config-hash"
SERVICE_PORT = 80
RUN_AS_USER = 10001


@dataclass(frozen=True)
class Platform:
    """What rendering needs to know about one TicketPlatform object."""

    name: str
    namespace: str
    uid: str | None
    spec: TicketPlatformSpec

    def child_name(self, service: str) -> str:
        return f"{self.name}-{service}"


def selector_labels(platform: Platform, service: str) -> dict[str, str]:
    # Selectors are immutable on Deployments: keep them to these two stable labels.
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/instance": platform.name}


def platform_labels(platform: Platform) -> dict[str, str]:
    return {
        "app.kubernetes.io/instance": platform.name,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def _labels(platform: Platform, service: str) -> dict[str, str]:
    return {**selector_labels(platform, service), **platform_labels(platform), "app.kubernetes.io/component": service}


def _versioned_labels(platform: Platform, service: str, spec: ServiceSpec) -> dict[str, str]:
    # Only Deployments and pods carry the version, so an image bump leaves Service and HPA alone.
    tag = spec.image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2] or "latest"
    return {**_labels(platform, service), "app.kubernetes.io/version": tag[:63]}


def _metadata(platform: Platform, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": platform.namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = annotations
    if platform.uid:
        meta["ownerReferences"] = [{
            "apiVersion": model.API_VERSION,
            "kind": model.KIND,
            "name": platform.name,
            "uid": platform.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }]
    return meta


def _service_url(platform: Platform, service: str) -> str:
    return f"http://{platform.child_name(service)}:{SERVICE_PORT}"


def service_env(platform: Platform, service: str) -> dict[str, str]:
    """Environment the operator wires in for each service; spec env overrides it."""
    spec = platform.spec
    svc = spec.services.by_name()[service]
    env = {"SERVICE_NAME": service, "PORT": str(svc.port), "LOG_FORMAT": "json"}
    if service == "user-service":
        env["USERS_TABLE"] = "ticket-booking-users"
    if service in ("booking-service", "frontend"):
        if spec.kafka.bootstrapServers:
            env["KAFKA_BOOTSTRAP_SERVERS"] = spec.kafka.bootstrapServers
        env["BOOKINGS_TOPIC"] = spec.kafka.topics.bookings.name
        env["ANALYTICS_TOPIC"] = spec.kafka.topics.results.name
    if service == "booking-service":
        if spec.analytics.enabled:
            # Watermark heartbeats from the outbox relay close analytics windows when bookings pause.
            env["RELAY_HEARTBEAT_SECONDS"] = "5"
        env["USER_SERVICE_URL"] = _service_url(platform, "user-service")
        env["EVENT_CATALOG_URL"] = _service_url(platform, "event-catalog")
    if service == "frontend":
        for backend in ("user-service", "event-catalog", "booking-service"):
            env[backend.upper().replace("-", "_") + "_URL"] = _service_url(platform, backend)
    env.update(svc.env)
    return env


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _probe(path: str, period: int, failure_threshold: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failure_threshold,
    }


def deployment(platform: Platform, service: str) -> dict[str, Any]:
    svc = platform.spec.services.by_name()[service]
    labels = _versioned_labels(platform, service, svc)
    env = service_env(platform, service)
    container: dict[str, Any] = {
        "name": service,
        "image": svc.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": svc.resources.model_dump(),
        "livenessProbe": _probe("/health", 10, 3),
        "readinessProbe": _probe("/ready", 5, 3),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if svc.secretRef:
        container["envFrom"] = [{"secretRef": {"name": svc.secretRef}}]
    pod_spec = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
    }
    if svc.serviceAccountName:
        pod_spec["serviceAccountName"] = svc.serviceAccountName
    # The hash covers everything that should roll the pods (image, env, resources, secret name).
    digest = config_hash(pod_spec)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(platform, service)},
        "template": {
            "metadata": {"labels": dict(labels), "annotations": {CONFIG_HASH_ANNOTATION: digest}},
            "spec": pod_spec,
        },
    }
    if not svc.autoscaling.enabled:
        # With an HPA the operator leaves replicas alone, so the two never fight.
        spec["replicas"] = svc.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(platform, platform.child_name(service), labels, {CONFIG_HASH_ANNOTATION: digest}),
        "spec": spec,
    }


def service(platform: Platform, service: str) -> dict[str, Any]:
    svc = platform.spec.services.by_name()[service]
    port: dict[str, Any] = {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
    if svc.nodePort is not None and svc.serviceType != "ClusterIP":
        port["nodePort"] = svc.nodePort
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(platform, platform.child_name(service), _labels(platform, service)),
        "spec": {
            "type": svc.serviceType,
            "selector": selector_labels(platform, service),
            "ports": [port],
        },
    }


def autoscaler(platform: Platform, service: str) -> dict[str, Any] | None:
    svc = platform.spec.services.by_name()[service]
    if not svc.autoscaling.enabled:
        return None
    scaling = svc.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(platform, platform.child_name(service), _labels(platform, service)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": platform.child_name(service)},
            "minReplicas": scaling.minReplicas,
            "maxReplicas": scaling.maxReplicas,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": scaling.targetCPUUtilization}},
            }],
        },
    }


def service_monitor(platform: Platform) -> dict[str, Any] | None:
    if not platform.spec.monitoring.enabled:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(platform, platform.name, platform_labels(platform)),
        "spec": {
            "selector": {"matchLabels": {
                "app.kubernetes.io/instance": platform.name,
                "app.kubernetes.io/part-of": PART_OF,
            }},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": platform.spec.monitoring.interval}],
        },
    }


def render(platform: Platform, include_monitoring: bool = True) -> list[dict[str, Any]]:
    """All children of one TicketPlatform, in apply order."""
    out: list[dict[str, Any]] = []
    for name in SERVICE_NAMES:
        out.append(deployment(platform, name))
        out.append(service(platform, name))
    for name in SERVICE_NAMES:
        hpa = autoscaler(platform, name)
        if hpa:
            out.append(hpa)
    if include_monitoring:
        monitor = service_monitor(platform)
        if monitor:
            out.append(monitor)
    return out


def platform_from_object(obj: dict[str, Any]) -> Platform:
    """Build a Platform from a TicketPlatform object (as read from the cluster or a file)."""
    meta = obj.get("metadata") or {}
    return Platform(
        name=meta["name"],
        namespace=meta.get("namespace") or "default",
        uid=meta.get("uid"),
        spec=model.parse_spec(obj.get("spec")),
    )
