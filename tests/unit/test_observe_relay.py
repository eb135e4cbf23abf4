"""The outbox relay's readiness feeds DeploymentsReady; readyServices (N/4) counts the four services."""
from __future__ import annotations

from typing import Any

from ticketplatform_operator import model, render
from ticketplatform_operator.observe import deployments_condition, observe


class FakeKube:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]):
        self.objects = objects

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))


def _deployment(replicas: int, ready: int) -> dict[str, Any]:
    return {"metadata": {"generation": 1}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": replicas}}


def _platform(spec: dict[str, Any]) -> render.Platform:
    return render.Platform(name="tickets", namespace="shop", uid="u", spec=model.parse_spec(spec))


def _kube(relay: dict[str, Any] | None) -> FakeKube:
    objects = {("Deployment", f"tickets-{s}"): _deployment(2, 2) for s in model.SERVICE_NAMES}
    if relay is not None:
        objects[("Deployment", "tickets-outbox-relay")] = relay
    return FakeKube(objects)


def test_relay_not_ready_holds_deployments_ready_but_not_the_service_count():
    platform = _platform({"kafka": {"bootstrapServers": "k:9092"}})
    obs = observe(_kube(_deployment(1, 0)), platform, pods=[])
    assert obs.ready_count == len(model.SERVICE_NAMES)
    assert obs.services["outbox-relay"].model_dump() == {"ready": 0, "desired": 1}
    cond = deployments_condition(obs)
    assert (cond.status, cond.reason) == ("False", "ServicesNotReady") and "outbox-relay 0/1" in cond.message


def test_relay_ready_or_scaled_to_zero_lets_deployments_be_ready():
    for relay in (_deployment(1, 1), _deployment(0, 0)):
        obs = observe(_kube(relay), _platform({}), pods=[])
        cond = deployments_condition(obs)
        assert (cond.status, obs.ready_count) == ("True", len(model.SERVICE_NAMES)), cond


def test_missing_relay_is_not_ready():
    obs = observe(_kube(None), _platform({}), pods=[])
    assert "outbox-relay" in obs.not_ready and obs.ready_count == len(model.SERVICE_NAMES)
