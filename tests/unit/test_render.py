"""What the operator renders, checked without a cluster: pods that a kubelet can run under a
read-only root (emptyDir at /tmp), probes, migrations as init containers, the outbox relay as its
own Deployment, demo seeding on request, placement and disruption budgets, HPA behaviour."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from ticketplatform_operator import model, render
from ticketplatform_operator.services import SERVICES

REPO = Path(__file__).resolve().parents[2]
KAFKA = {"bootstrapServers": "kafka-0.kafka:9092"}


def platform(spec: dict[str, Any] | None = None, uid: str | None = "uid-1") -> render.Platform:
    return render.Platform(name="tickets", namespace="shop", uid=uid, spec=model.parse_spec(spec or {}))


def children(spec: dict[str, Any] | None = None, **kw: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["kind"], m["metadata"]["name"]): m for m in render.render(platform(spec, **kw))}


def deployments(spec: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return {name: m for (kind, name), m in children(spec).items() if kind == "Deployment"}


def pod(dep: dict[str, Any]) -> dict[str, Any]:
    return dep["spec"]["template"]["spec"]


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def web(deps: dict[str, dict[str, Any]], service: str) -> dict[str, Any]:
    (container,) = pod(deps[f"tickets-{service}"])["containers"]
    assert container["name"] == service
    return container


ALL_DEPLOYMENTS = {f"tickets-{s}" for s in model.SERVICE_NAMES} | {"tickets-outbox-relay"}
MIGRATING = [s for s in SERVICES if s.migrates]


# ---- the pod a kubelet runs --------------------------------------------------------------------

def test_a_deployment_per_service_and_the_relay():
    assert set(deployments({"kafka": KAFKA})) == ALL_DEPLOYMENTS


@pytest.mark.parametrize("name", sorted(ALL_DEPLOYMENTS))
def test_every_container_writes_only_to_a_bounded_tmp_emptydir(name):
    spec = pod(deployments({"kafka": KAFKA})[name])
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes == {"tmp": {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}}
    containers = spec["containers"] + spec.get("initContainers", [])
    for container in containers:
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}], container["name"]
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert mounts <= set(volumes)
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
        # Everything the processes write lives under the mounted /tmp.
        values = env(container)
        assert values["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
        assert values["GUNICORN_WORKER_TMP_DIR"] == "/tmp"
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                       "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.mark.parametrize("name", sorted(ALL_DEPLOYMENTS))
def test_probes_start_slow_then_watch_health_and_readiness(name):
    (container,) = pod(deployments({"kafka": KAFKA})[name])["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    startup, live, ready = container["startupProbe"], container["livenessProbe"], container["readinessProbe"]
    assert startup["httpGet"]["path"] == "/health" and live["httpGet"]["path"] == "/health"
    assert ready["httpGet"]["path"] == "/ready"
    for probe in (startup, live, ready):
        assert probe["httpGet"]["port"] in ports  # a named port the container declares
    # The startup probe allows a much longer first start than liveness would.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60
    assert startup["periodSeconds"] * startup["failureThreshold"] > live["periodSeconds"] * live["failureThreshold"]


@pytest.mark.parametrize("service", model.SERVICE_NAMES)
def test_web_pods_drain_before_they_stop(service):
    deps = deployments({"kafka": KAFKA})
    container = web(deps, service)
    sleep = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # Long enough for kube-proxy to stop routing to the pod, well inside the grace period.
    grace = pod(deps[f"tickets-{service}"]).get("terminationGracePeriodSeconds", 30)
    assert 2 <= sleep < grace
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_rendered_kinds_round_trip_through_the_kubernetes_models():
    """A misspelt field name would be dropped by the official client's models: nothing may be."""
    from kubernetes.client import ApiClient

    client = ApiClient()
    types = {"Deployment": "V1Deployment", "Service": "V1Service",
             "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler", "PodDisruptionBudget": "V1PodDisruptionBudget"}
    spec = {"kafka": KAFKA, "placement": {
        "nodeSelector": {"kubernetes.io/hostname": "tp-node"},
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
        "spread": {"nodes": "ScheduleAnyway", "zones": "DoNotSchedule"},
        "podDisruptionBudget": {"maxUnavailable": 1}}}
    rendered = [m for m in render.render(platform(spec)) if m["kind"] in types]
    assert {m["kind"] for m in rendered} == set(types)
    for manifest in rendered:

        class Response:
            data = __import__("json").dumps(manifest)

        obj = client.deserialize(Response(), types[manifest["kind"]])
        assert client.sanitize_for_serialization(obj) == manifest, manifest["metadata"]["name"]


def test_children_are_owned_by_the_platform():
    for (kind, name), manifest in children({"kafka": KAFKA, "placement": {"podDisruptionBudget": {"minAvailable": 1}}}).items():
        (owner,) = manifest["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("TicketPlatform", "tickets", "uid-1", True), (kind, name)


# ---- migrations --------------------------------------------------------------------------------

def test_migrations_run_as_init_containers_of_the_database_services_only():
    deps = deployments({"services": {"booking-service": {"secretRef": "db-app", "migrationSecretRef": "db-owner"},
                                     "event-catalog": {"secretRef": "db-app"}}})
    for declared in MIGRATING:
        service = declared.name
        spec = pod(deps[f"tickets-{service}"])
        (init,) = spec["initContainers"]
        assert init["command"] == ["python", "-m", f"{declared.package}.migrate"]
        assert init["image"] == web(deps, service)["image"]
        assert "command" not in web(deps, service)  # the image's CMD serves; it no longer migrates
    booking_init = pod(deps["tickets-booking-service"])["initContainers"][0]
    assert booking_init["envFrom"] == [{"secretRef": {"name": "db-owner"}}]  # the schema owner's role
    assert web(deps, "booking-service")["envFrom"] == [{"secretRef": {"name": "db-app"}}]
    catalog_init = pod(deps["tickets-event-catalog"])["initContainers"][0]
    assert catalog_init["envFrom"] == [{"secretRef": {"name": "db-app"}}]  # defaults to secretRef
    for declared in SERVICES:
        if not declared.migrates:
            assert "initContainers" not in pod(deps[f"tickets-{declared.name}"])
    assert "initContainers" not in pod(deps["tickets-outbox-relay"])


@pytest.mark.parametrize("dockerfile", [s.name for s in MIGRATING])
def test_web_images_no_longer_migrate_in_their_command(dockerfile):
    text = (REPO / "services" / "docker" / f"{dockerfile}.Dockerfile").read_text()
    cmd = [line for line in text.splitlines() if line.startswith("CMD ")]
    assert len(cmd) == 1 and "gunicorn" in cmd[0] and "migrate" not in cmd[0], cmd


def test_demo_data_is_seeded_only_when_the_spec_asks():
    default = pod(deployments()["tickets-event-catalog"])["initContainers"][0]
    assert env(default)["CATALOG_SEED"] == "false"
    asked = pod(deployments({"services": {"event-catalog": {"seedDemoData": True}}})["tickets-event-catalog"])
    assert env(asked["initContainers"][0])["CATALOG_SEED"] == "true"


# ---- the outbox relay --------------------------------------------------------------------------

def test_the_relay_is_one_recreated_replica_of_the_booking_image():
    deps = deployments({"kafka": KAFKA, "services": {"booking-service": {
        "image": "registry.example/booking-service:2.0", "secretRef": "db-app", "env": {"LOG_LEVEL": "DEBUG"}}}})
    relay = deps["tickets-outbox-relay"]
    assert relay["spec"]["replicas"] == 1 and relay["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = pod(relay)["containers"]
    assert container["image"] == "registry.example/booking-service:2.0"
    assert container["command"] == ["python", "-m", "booking_service.relay"]
    assert container["envFrom"] == [{"secretRef": {"name": "db-app"}}]
    values = env(container)
    assert values["KAFKA_BOOTSTRAP_SERVERS"] == "kafka-0.kafka:9092"
    assert values["LOG_LEVEL"] == "DEBUG"  # the booking-service env applies to its relay
    assert int(values["RELAY_METRICS_PORT"]) == container["ports"][0]["containerPort"]
    assert values["RELAY_HEARTBEAT_SECONDS"] == "5"  # analytics on by default
    # Its own selector: booking-service's Service and HPA never select the relay's pod.
    booking = deps["tickets-booking-service"]
    assert relay["spec"]["selector"]["matchLabels"] != booking["spec"]["selector"]["matchLabels"]
    assert not (set(booking["spec"]["selector"]["matchLabels"].items())
                <= set(relay["spec"]["template"]["metadata"]["labels"].items()))
    assert relay["spec"]["selector"]["matchLabels"].items() <= relay["spec"]["template"]["metadata"]["labels"].items()


def test_web_pods_run_no_relay():
    values = env(web(deployments({"kafka": KAFKA}), "booking-service"))
    assert values["OUTBOX_RELAY"] == "off"
    assert "RELAY_HEARTBEAT_SECONDS" not in values


def test_relay_scaled_to_zero_without_kafka():
    assert deployments()["tickets-outbox-relay"]["spec"]["replicas"] == 0


# ---- placement ---------------------------------------------------------------------------------

def test_platform_placement_reaches_every_deployment():
    placement = {"nodeSelector": {"kubernetes.io/hostname": "tp-node"},
                 "tolerations": [{"key": "dedicated", "value": "tickets", "effect": "NoSchedule"}]}
    for name, dep in deployments({"kafka": KAFKA, "placement": placement}).items():
        spec = pod(dep)
        assert spec["nodeSelector"] == {"kubernetes.io/hostname": "tp-node"}, name
        assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "tickets", "effect": "NoSchedule"}], name
        assert "topologySpreadConstraints" not in spec


def test_service_placement_overrides_field_by_field():
    deps = deployments({"kafka": KAFKA,
                        "placement": {"nodeSelector": {"pool": "web"},
                                      "tolerations": [{"operator": "Exists"}]},
                        "services": {"booking-service": {"placement": {"nodeSelector": {"pool": "booking"}}},
                                     "frontend": {"placement": {"nodeSelector": {}}}}})
    assert pod(deps["tickets-booking-service"])["nodeSelector"] == {"pool": "booking"}
    assert pod(deps["tickets-booking-service"])["tolerations"] == [{"operator": "Exists"}]  # inherited
    assert pod(deps["tickets-outbox-relay"])["nodeSelector"] == {"pool": "booking"}  # placed like booking-service
    assert "nodeSelector" not in pod(deps["tickets-frontend"])  # {} clears the platform-wide selector
    assert pod(deps["tickets-user-service"])["nodeSelector"] == {"pool": "web"}


def test_spread_across_nodes_and_zones_counts_the_service_own_pods():
    deps = deployments({"placement": {"spread": {"nodes": "ScheduleAnyway", "zones": "DoNotSchedule", "maxSkew": 2}}})
    dep = deps["tickets-user-service"]
    constraints = {c["topologyKey"]: c for c in pod(dep)["topologySpreadConstraints"]}
    assert set(constraints) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert constraints["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert constraints["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
    for c in constraints.values():
        assert c["maxSkew"] == 2
        assert c["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    only_nodes = deployments({"placement": {"spread": {"nodes": "DoNotSchedule"}}})["tickets-frontend"]
    assert [c["topologyKey"] for c in pod(only_nodes)["topologySpreadConstraints"]] == ["kubernetes.io/hostname"]


def test_disruption_budgets_only_when_asked_and_per_service():
    assert not [k for k in children() if k[0] == "PodDisruptionBudget"]
    kids = children({"placement": {"podDisruptionBudget": {"maxUnavailable": 1}},
                     "services": {"booking-service": {"placement": {"podDisruptionBudget": {"minAvailable": "50%"}}}}})
    pdbs = {name: m for (kind, name), m in kids.items() if kind == "PodDisruptionBudget"}
    assert set(pdbs) == {f"tickets-{s}" for s in model.SERVICE_NAMES}  # none for the single relay
    assert pdbs["tickets-booking-service"]["spec"] == {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "booking-service", "app.kubernetes.io/instance": "tickets"}},
        "minAvailable": "50%"}
    assert pdbs["tickets-frontend"]["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdbs["tickets-frontend"]["spec"]
    assert pdbs["tickets-frontend"]["apiVersion"] == "policy/v1"
    for name, pdb in pdbs.items():
        dep = kids[("Deployment", name)]
        assert pdb["spec"]["selector"] == dep["spec"]["selector"]


def test_placement_change_rolls_the_pods():
    before = deployments()["tickets-frontend"]["spec"]["template"]["metadata"]["annotations"]
    after = deployments({"placement": {"nodeSelector": {"pool": "b"}}})["tickets-frontend"]["spec"]["template"]["metadata"]["annotations"]
    assert before[render.CONFIG_HASH_ANNOTATION] != after[render.CONFIG_HASH_ANNOTATION]


# ---- autoscaling -------------------------------------------------------------------------------

def test_hpa_scale_down_window_defaults_to_five_minutes_and_is_settable():
    kids = children({"services": {"booking-service": {"autoscaling": {"enabled": True, "scaleDownStabilizationSeconds": 30}}}})
    assert kids[("HorizontalPodAutoscaler", "tickets-booking-service")]["spec"]["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": 30}}
    assert kids[("HorizontalPodAutoscaler", "tickets-user-service")]["spec"]["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": 300}}


# ---- validation names the field ----------------------------------------------------------------

INVALID = {
    "both budgets": ({"placement": {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}},
                     "spec.placement.podDisruptionBudget", "exactly one"),
    "no budget field": ({"services": {"frontend": {"placement": {"podDisruptionBudget": {}}}}},
                        "spec.services.frontend.placement.podDisruptionBudget", "exactly one"),
    "bad percentage": ({"placement": {"podDisruptionBudget": {"minAvailable": "half"}}},
                       "spec.placement.podDisruptionBudget.minAvailable", "percentage"),
    "negative budget": ({"placement": {"podDisruptionBudget": {"maxUnavailable": -1}}},
                        "spec.placement.podDisruptionBudget.maxUnavailable", "non-negative"),
    "value with Exists": ({"placement": {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}},
                          "spec.placement.tolerations[0]", "value must be empty"),
    "no key with Equal": ({"placement": {"tolerations": [{"value": "b"}]}},
                          "spec.placement.tolerations[0]", "operator must be Exists"),
    "seconds without NoExecute": ({"placement": {"tolerations": [{"key": "a", "tolerationSeconds": 5}]}},
                                  "spec.placement.tolerations[0]", "NoExecute"),
    "bad selector key": ({"services": {"user-service": {"placement": {"nodeSelector": {"not a key": "x"}}}}},
                         "spec.services.user-service.placement.nodeSelector", "label keys"),
    "bad spread": ({"placement": {"spread": {"nodes": "Sometimes"}}}, "spec.placement.spread.nodes", ""),
    "window too long": ({"services": {"booking-service": {"autoscaling": {"scaleDownStabilizationSeconds": 3601}}}},
                        "spec.services.booking-service.autoscaling.scaleDownStabilizationSeconds", ""),
    "seed on the wrong service": ({"services": {"frontend": {"seedDemoData": True}}}, "spec.services.frontend.seedDemoData", ""),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_placement_is_refused_naming_the_field(case):
    spec, field, words = INVALID[case]
    with pytest.raises(pydantic.ValidationError) as err:
        model.parse_spec(copy.deepcopy(spec))
    message = model.describe_validation_error(err.value)
    assert field in message and words in message, message


def test_valid_placement_values_are_accepted():
    spec = model.parse_spec({"placement": {"podDisruptionBudget": {"minAvailable": "100%"},
                                           "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                                                            "tolerationSeconds": 30}]}})
    assert spec.placement.podDisruptionBudget.minAvailable == "100%"


# ---- the CLI -----------------------------------------------------------------------------------

@pytest.mark.parametrize("example", ["minimal", "production", "local"])
def test_ticketctl_renders_the_examples(example):
    out = subprocess.run([sys.executable, "-m", "ticketplatform_operator", "render", "-f", str(REPO / "examples" / f"{example}.yaml")],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(out) if d]
    assert kinds.count("Deployment") == len(SERVICES) + 1 and kinds.count("Service") == len(SERVICES)
