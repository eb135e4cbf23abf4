"""Pure rendering: a TicketPlatform (metadata + parsed spec) -> the manifests the operator applies.

No cluster access here, so `ticketctl render` prints exactly what the operator would apply.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from . import model
from .model import SERVICE_NAMES, DatabaseServiceSpec, Placement, ServiceSpec, TicketPlatformSpec
from .services import BY_NAME, SERVICES, Setting

MANAGED_BY = "ticketplatform-operator"
PART_OF = "ticketplatform"
CONFIG_HASH_ANNOTATION = "ticketing.io/config-hash"
SERVICE_PORT = 80
RUN_AS_USER = 10001

# The root filesystem is read-only; everything that writes (gunicorn's worker heartbeat files,
# prometheus-client's multiprocess files, Python's tempfile) writes into this emptyDir.
TMP_VOLUME = "tmp"
TMP_DIR = "/tmp"
TMP_SIZE_LIMIT = "64Mi"
METRICS_DIR = f"{TMP_DIR}/prometheus"

# The outbox relay: one process per platform, in its own Deployment (never one per web worker),
# the companion of the one service that declares it.
RELAY_OWNER = next(s for s in SERVICES if s.companion)
RELAY = RELAY_OWNER.companion.name
RELAY_PORT = RELAY_OWNER.companion.port
RELAY_COMMAND = ["python", "-m", RELAY_OWNER.companion.module]
# Services with a PostgreSQL schema, and the package whose `python -m <package>.migrate` migrates it.
MIGRATIONS = {s.name: s.package for s in SERVICES if s.migrates}
# The DynamoDB table of users (Terraform creates it under this name).
USERS_TABLE = "ticket-booking-users"


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


def _setting(spec: TicketPlatformSpec, svc: ServiceSpec, setting: Setting) -> str | None:
    """A data-plane setting's value for one service; None leaves the variable out."""
    if setting is Setting.KAFKA_BOOTSTRAP:
        return spec.kafka.bootstrapServers
    if setting is Setting.BOOKINGS_TOPIC:
        return spec.kafka.topics.bookings.name
    if setting is Setting.RESULTS_TOPIC:
        return spec.kafka.topics.results.name
    if setting is Setting.USERS_TABLE:
        return USERS_TABLE
    if setting is Setting.DEMO_SEED:
        # Read by the migration init container: demo events only when the spec asks for them.
        return "true" if svc.seedDemoData else "false"  # a field of the services that take it
    raise ValueError(f"no value for setting {setting.name}")


def service_env(platform: Platform, service: str) -> dict[str, str]:
    """Environment the operator wires in for each service, as its declaration (services.py) says:
    the settings it takes, its fixed settings, the URL of each backend it calls. Spec env overrides it."""
    declared = BY_NAME[service]
    svc = platform.spec.services.by_name()[service]
    env = {"SERVICE_NAME": service, "PORT": str(svc.port),
           # Both on the writable emptyDir (the gunicorn config and the app create the metrics dir).
           "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR, "GUNICORN_WORKER_TMP_DIR": TMP_DIR}
    for setting in declared.takes:
        value = _setting(platform.spec, svc, setting)
        if value is not None:
            env[setting.env] = value
    env.update(declared.env)
    for backend in declared.calls:
        env[BY_NAME[backend].url_env] = _service_url(platform, backend)
    env.update(svc.env)
    return env


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def relay_env(platform: Platform) -> dict[str, str]:
    """The relay runs its owner's (booking-service's) code and configuration, plus its own
    health/metrics port; not the owner's web port nor its fixed settings (OUTBOX_RELAY=off keeps
    the relay out of the web workers)."""
    drop = {"PORT", *RELAY_OWNER.env}
    env = {k: v for k, v in service_env(platform, RELAY_OWNER.name).items() if k not in drop}
    env["SERVICE_NAME"] = RELAY
    env["RELAY_METRICS_PORT"] = str(RELAY_PORT)
    if platform.spec.analytics.enabled:
        # Watermark heartbeats from the relay close analytics windows when bookings pause.
        env["RELAY_HEARTBEAT_SECONDS"] = "5"
    env.update(platform.spec.services.by_name()[RELAY_OWNER.name].env)
    return env


def _probe(path: str, period: int, failure_threshold: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failure_threshold,
    }


def _probes() -> dict[str, Any]:
    # The startup probe gives a slow first start (cold image, busy node) up to 2 minutes; liveness
    # only takes over once it has passed, so it never kills a pod that is still starting.
    return {
        "startupProbe": _probe("/health", 2, 60),
        "livenessProbe": _probe("/health", 10, 3),
        "readinessProbe": _probe("/ready", 5, 3),
    }


PRESTOP_SLEEP_SECONDS = 5

CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "runAsGroup": RUN_AS_USER,
    "fsGroup": RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _container(name: str, svc: ServiceSpec, env: dict[str, str], secret: str | None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": svc.image,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": svc.resources.model_dump(),
        "securityContext": copy.deepcopy(CONTAINER_SECURITY),
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": TMP_DIR}],
        # A container that exits at start puts its last log lines in the status the operator reads.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    return container


def migration_container(platform: Platform, service: str) -> dict[str, Any] | None:
    """The schema migration as an init container, so no pod serves before its schema exists.

    Chosen over an operator-owned Job: the kubelet enforces the order for every start (rollout,
    HPA scale-up, rescheduled pod) with no Job bookkeeping in the operator, and a failure shows on
    the pod (Init:CrashLoopBackOff) where the platform's status already looks. The migration is
    idempotent under a PostgreSQL advisory lock: the first pod of a rollout migrates, the others
    find the schema current and exit at once."""
    package = MIGRATIONS.get(service)
    if package is None:
        return None
    svc = platform.spec.services.by_name()[service]
    assert isinstance(svc, DatabaseServiceSpec)
    container = _container("migrate", svc, service_env(platform, service), svc.migrationSecretRef or svc.secretRef)
    container["command"] = ["python", "-m", f"{package}.migrate"]
    return container


def spread_constraints(spread: model.TopologySpread | None, selector: dict[str, str]) -> list[dict[str, Any]]:
    if spread is None:
        return []
    out = []
    for policy, key in ((spread.nodes, "kubernetes.io/hostname"), (spread.zones, "topology.kubernetes.io/zone")):
        if policy:
            out.append({
                "maxSkew": spread.maxSkew,
                "topologyKey": key,
                "whenUnsatisfiable": policy,
                "labelSelector": {"matchLabels": dict(selector)},
                # Count only pods of the same rollout revision, so old pods do not skew a rolling update.
                "matchLabelKeys": ["pod-template-hash"],
            })
    return out


def _pod_spec(platform: Platform, service: str, containers: list[dict[str, Any]], selector: dict[str, str],
              init: dict[str, Any] | None = None) -> dict[str, Any]:
    svc = platform.spec.services.by_name()[service]
    placement: Placement = platform.spec.placement_for(service)
    pod_spec: dict[str, Any] = {"securityContext": copy.deepcopy(POD_SECURITY)}
    if svc.serviceAccountName:
        pod_spec["serviceAccountName"] = svc.serviceAccountName
    if init:
        pod_spec["initContainers"] = [init]
    pod_spec["containers"] = containers
    pod_spec["volumes"] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}]
    place(pod_spec, placement, selector)
    return pod_spec


def place(pod_spec: dict[str, Any], placement: Placement, selector: dict[str, str]) -> None:
    """Add a placement's nodeSelector, tolerations and spread to a pod spec (also for pods other
    than the services', e.g. the analytics job's, with spec.placement)."""
    if placement.nodeSelector:
        pod_spec["nodeSelector"] = dict(placement.nodeSelector)
    if placement.tolerations:
        pod_spec["tolerations"] = [t.model_dump(exclude_none=True) for t in placement.tolerations]
    constraints = spread_constraints(placement.spread, selector)
    if constraints:
        pod_spec["topologySpreadConstraints"] = constraints


def _deployment(platform: Platform, name: str, labels: dict[str, str], selector: dict[str, str],
                pod_spec: dict[str, Any], replicas: int | None, strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    # The hash covers everything that should roll the pods (image, env, resources, secret, placement).
    digest = config_hash(pod_spec)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(selector)},
        "template": {
            "metadata": {"labels": dict(labels), "annotations": {CONFIG_HASH_ANNOTATION: digest}},
            "spec": pod_spec,
        },
    }
    if strategy:
        spec["strategy"] = strategy
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(platform, name, labels, {CONFIG_HASH_ANNOTATION: digest}),
        "spec": spec,
    }


def deployment(platform: Platform, service: str) -> dict[str, Any]:
    svc = platform.spec.services.by_name()[service]
    selector = selector_labels(platform, service)
    container = _container(service, svc, service_env(platform, service), svc.secretRef)
    container["ports"] = [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}]
    container.update(_probes())
    # A terminating pod keeps serving for a few seconds: kube-proxy and the endpoints controller
    # take that long to stop sending it new connections, so a rollout or a scale-down drops none.
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}
    pod_spec = _pod_spec(platform, service, [container], selector, init=migration_container(platform, service))
    # With an HPA the operator leaves replicas alone, so the two never fight.
    return _deployment(platform, platform.child_name(service), _versioned_labels(platform, service, svc), selector,
                       pod_spec, None if svc.autoscaling.enabled else svc.replicas)


def relay_selector_labels(platform: Platform) -> dict[str, str]:
    return {"app.kubernetes.io/name": RELAY, "app.kubernetes.io/instance": platform.name}


def outbox_relay(platform: Platform) -> dict[str, Any]:
    """The outbox relay: booking-service's image running `python -m booking_service.relay`.

    One replica with strategy Recreate, so two relays never overlap in a rollout (the relay's
    advisory lock would keep that safe anyway). Scaled to zero while spec.kafka.bootstrapServers is
    unset: there is nowhere to publish, and bookings wait in the outbox. No Service: its small HTTP
    server answers the probes, /health (the relay loop turns) and /ready (its last pass reached
    PostgreSQL and, when it had something to send, Kafka), and /metrics. Placed like booking-service."""
    owner = RELAY_OWNER.name
    svc = platform.spec.services.by_name()[owner]
    selector = relay_selector_labels(platform)
    labels = {**_versioned_labels(platform, owner, svc), **selector, "app.kubernetes.io/component": RELAY}
    container = _container(RELAY, svc, relay_env(platform), svc.secretRef)
    container["command"] = list(RELAY_COMMAND)
    container["ports"] = [{"name": "http", "containerPort": RELAY_PORT, "protocol": "TCP"}]
    container.update(_probes())
    pod_spec = _pod_spec(platform, owner, [container], selector)
    replicas = 1 if platform.spec.kafka.bootstrapServers else 0
    return _deployment(platform, platform.child_name(RELAY), labels, selector, pod_spec, replicas,
                       strategy={"type": "Recreate"})


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
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": scaling.scaleDownStabilizationSeconds}},
        },
    }


def disruption_budget(platform: Platform, service: str) -> dict[str, Any] | None:
    """A policy/v1 PodDisruptionBudget over one service's pods, when its placement asks for one."""
    budget = platform.spec.placement_for(service).podDisruptionBudget
    if budget is None:
        return None
    spec: dict[str, Any] = {"selector": {"matchLabels": selector_labels(platform, service)}}
    if budget.minAvailable is not None:
        spec["minAvailable"] = budget.minAvailable
    else:
        spec["maxUnavailable"] = budget.maxUnavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(platform, platform.child_name(service), _labels(platform, service)),
        "spec": spec,
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
    out.append(outbox_relay(platform))
    for name in SERVICE_NAMES:
        hpa = autoscaler(platform, name)
        if hpa:
            out.append(hpa)
    for name in SERVICE_NAMES:
        pdb = disruption_budget(platform, name)
        if pdb:
            out.append(pdb)
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
