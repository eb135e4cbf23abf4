"""A service is ready only when its current template's pods are: a rollout whose new pods crash
leaves the old pod serving, which must not read as ready."""
from __future__ import annotations

from ticketplatform_operator.observe import _deployment_status


def _dep(replicas: int, updated: int, ready: int, desired: int = 1, generation: int = 2) -> dict:
    return {"metadata": {"generation": generation},
            "spec": {"replicas": desired},
            "status": {"observedGeneration": generation, "replicas": replicas,
                       "updatedReplicas": updated, "readyReplicas": ready}}


def test_settled_deployment_is_ready():
    status, ready, stalled = _deployment_status(_dep(replicas=1, updated=1, ready=1), 0)
    assert ready and not stalled and (status.ready, status.desired) == (1, 1)


def test_stuck_rollout_with_the_old_pod_serving_is_not_ready():
    # The old pod is Ready, the new one (counted as updated) crash-loops.
    status, ready, _ = _deployment_status(_dep(replicas=2, updated=1, ready=1), 0)
    assert not ready and status.ready == 1


def test_spec_not_yet_seen_by_the_controller_is_not_ready():
    dep = _dep(replicas=1, updated=1, ready=1)
    dep["status"]["observedGeneration"] = 1
    assert not _deployment_status(dep, 0)[1]


def test_below_the_autoscaler_floor_is_not_ready():
    assert not _deployment_status(_dep(replicas=1, updated=1, ready=1, desired=1), 2)[1]
