"""Pods -> DeploymentsReady (pure, no cluster): a service whose pods cannot start or keep failing
makes the platform Degraded with the kubelet's own reason and message; fixing it recovers.

The pod dicts are shaped like what the apiserver returns for these cases (kubelet 1.3x)."""
from __future__ import annotations

import copy

from ticketplatform_operator.model import SERVICE_NAMES, ServiceStatus
from ticketplatform_operator.observe import Observation, deployments_condition, pod_problems
from ticketplatform_operator.pods import PodStore, pod_problem, summarize
from ticketplatform_operator.status import CondResult, roll_up


def pod(service: str, name: str, *, phase="Pending", ready=False, containers=None, conditions=None,
        created="2030-01-01T00:00:00Z", deleting=False, instance="tickets", uid=None) -> dict:
    meta = {
        "name": name, "namespace": "shop", "uid": uid or f"uid-{name}", "creationTimestamp": created,
        "labels": {"app.kubernetes.io/name": service, "app.kubernetes.io/instance": instance,
                   "app.kubernetes.io/component": service, "app.kubernetes.io/managed-by": "ticketplatform-operator",
                   "app.kubernetes.io/part-of": "ticketplatform", "pod-template-hash": "5d8f7c9b6d"},
        "annotations": {"ticketing.io/config-hash": "0123456789abcdef"},
    }
    if deleting:
        meta["deletionTimestamp"] = "2030-01-01T00:05:00Z"
    conds = [{"type": "PodScheduled", "status": "True"},
             {"type": "Ready", "status": "True" if ready else "False"}] if conditions is None else conditions
    return {"metadata": meta, "spec": {"nodeName": "tp-node"},
            "status": {"phase": phase, "conditions": conds, "containerStatuses": containers or []}}


def image_never_pull(service: str) -> dict:
    return {"name": service, "ready": False, "restartCount": 0, "started": False,
            "image": f"ghcr.io/ticketplatform/{service}:9.9.9", "imageID": "",
            "state": {"waiting": {"reason": "ErrImageNeverPull",
                                  "message": f'Container image "ghcr.io/ticketplatform/{service}:9.9.9" is not '
                                             'present with pull policy of Never'}}}


def crash_loop(service: str, pod_name: str, restarts: int = 3) -> dict:
    return {"name": service, "ready": False, "restartCount": restarts, "started": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff",
                                  "message": f"back-off 40s restarting failed container={service} "
                                             f"pod={pod_name}_shop(1b2c3d4e-aaaa-bbbb-cccc-1234567890ab)"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                         "message": "Traceback (most recent call last):\n  File \"/app/x.py\"\n"
                                                    "FileNotFoundError: [Errno 2] No usable temporary directory found",
                                         "startedAt": "2030-01-01T00:01:00Z", "finishedAt": "2030-01-01T00:01:02Z"}}}


def running(service: str, ready: bool = True, restarts: int = 0, last: dict | None = None) -> dict:
    cs = {"name": service, "ready": ready, "restartCount": restarts, "started": True,
          "state": {"running": {"startedAt": "2030-01-01T00:00:05Z"}}}
    if last:
        cs["lastState"] = {"terminated": last}
    return cs


def observation(not_ready: dict[str, tuple[int, int]]) -> Observation:
    obs = Observation()
    for name in SERVICE_NAMES:
        ready, desired = not_ready.get(name, (2, 2))
        obs.services[name] = ServiceStatus(ready=ready, desired=desired)
        if name in not_ready:
            obs.not_ready.append(name)
    return obs


def condition_for(pods: list[dict], not_ready: dict[str, tuple[int, int]]) -> CondResult:
    obs = observation(not_ready)
    pod_problems(obs, [summarize(p) for p in pods])
    return deployments_condition(obs)


HEALTHY = [pod(s, f"tickets-{s}-5d8f7c9b6d-a{i}", phase="Running", ready=True, containers=[running(s)])
           for s in SERVICE_NAMES if s != "booking-service" for i in range(2)]


def test_image_not_on_the_node_degrades_with_the_kubelets_reason():
    bad = [pod("booking-service", f"tickets-booking-service-7f6d5c4b3a-x{i}", containers=[image_never_pull("booking-service")])
           for i in range(2)]
    cond = condition_for(HEALTHY + bad, {"booking-service": (0, 2)})
    assert (cond.type, cond.status, cond.reason) == ("DeploymentsReady", "False", "ServiceFailing")
    assert cond.message == ('booking-service: ErrImageNeverPull (Container image "ghcr.io/ticketplatform/'
                            'booking-service:9.9.9" is not present with pull policy of Never) [2 pods]')
    ready, phase = roll_up([cond])
    assert phase == "Degraded" and ready.status == "False" and ready.reason == "ServiceFailing"
    assert "booking-service: ErrImageNeverPull" in ready.message


def test_crash_loop_names_the_service_the_back_off_and_the_last_exit():
    name = "tickets-user-service-6c5b4a3f2e-q1"
    cond = condition_for(HEALTHY[:2] + [pod("user-service", name, phase="Running", containers=[crash_loop("user-service", name)])],
                         {"user-service": (0, 2)})
    assert cond.reason == "ServiceFailing"
    assert cond.message.startswith(f"user-service: CrashLoopBackOff (back-off 40s restarting failed container=user-service pod={name}_shop")
    # FallbackToLogsOnError puts the log's tail in the termination message: its last line is kept.
    assert "last Error: exit code 1, FileNotFoundError: [Errno 2] No usable temporary directory found" in cond.message
    assert "\n" not in cond.message
    assert roll_up([cond])[1] == "Degraded"


def test_between_back_offs_a_restarted_container_still_counts_as_failing():
    """Running again but not ready after an error exit: still ServiceFailing, so the phase does
    not flap to Progressing every time the kubelet restarts the container."""
    c = running("event-catalog", ready=False, restarts=4, last={"exitCode": 137, "reason": "OOMKilled"})
    cond = condition_for([pod("event-catalog", "tickets-event-catalog-1-a", phase="Running", containers=[c])],
                         {"event-catalog": (0, 2)})
    assert cond.reason == "ServiceFailing"
    assert cond.message == "event-catalog: OOMKilled (restarted 4 times, last exit code 137)"


def test_container_terminated_with_an_error_and_bad_config():
    terminated = {"name": "frontend", "ready": False, "restartCount": 0,
                  "state": {"terminated": {"exitCode": 2, "reason": "Error", "message": "gunicorn: bad option"}}}
    config = {"name": "booking-service", "ready": False, "restartCount": 0,
              "state": {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "ticketdb" not found'}}}
    cond = condition_for([pod("frontend", "tickets-frontend-1-a", containers=[terminated]),
                          pod("booking-service", "tickets-booking-service-1-a", containers=[config])],
                         {"frontend": (0, 2), "booking-service": (0, 2)})
    assert cond.reason == "ServiceFailing"
    assert cond.message == ("frontend: Error (exit code 2, gunicorn: bad option); "
                            "booking-service: CreateContainerConfigError (secret \"ticketdb\" not found)")


def test_starting_pods_and_unschedulable_pods_only_wait():
    creating = pod("user-service", "tickets-user-service-1-a", containers=[
        {"name": "user-service", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
    unschedulable = pod("booking-service", "tickets-booking-service-1-a", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/4 nodes are available: 1 Insufficient cpu, 3 node(s) had untolerated taint {kwok.x-k8s.io/node: fake}."}])
    cond = condition_for([creating, unschedulable], {"user-service": (0, 2), "booking-service": (1, 3)})
    assert cond.reason == "ServicesNotReady" and cond.status == "False"
    assert cond.message == ("waiting for user-service 0/2, booking-service 1/3 (Unschedulable (0/4 nodes are available: "
                            "1 Insufficient cpu, 3 node(s) had untolerated taint {kwok.x-k8s.io/node: fake}.))")
    assert roll_up([cond])[1] == "Progressing"


def test_ready_services_and_leftover_pods_are_not_blamed():
    # A failing pod of a service that has its replicas ready (an old ReplicaSet's, say) changes nothing;
    # nor do pods being deleted or evicted pods that linger as Failed.
    leftover = pod("frontend", "tickets-frontend-0-old", containers=[image_never_pull("frontend")])
    going = pod("user-service", "tickets-user-service-0-old", deleting=True, containers=[crash_loop("user-service", "x")])
    evicted = {**pod("user-service", "tickets-user-service-0-ev"), "status": {
        "phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}}
    cond = condition_for(HEALTHY + [leftover], {})
    assert (cond.status, cond.reason) == ("True", "AllServicesReady")
    cond = condition_for([going, evicted], {"user-service": (1, 2)})
    assert (cond.reason, cond.message) == ("ServicesNotReady", "waiting for user-service 1/2")


def test_fixing_the_spec_recovers():
    bad = pod("booking-service", "tickets-booking-service-7-x", containers=[image_never_pull("booking-service")])
    assert condition_for([bad], {"booking-service": (0, 2)}).reason == "ServiceFailing"
    # The fixed image's pods start; the broken ones are being deleted by the rollout.
    fixed = [pod("booking-service", f"tickets-booking-service-8-{i}", phase="Running", ready=True,
                 containers=[running("booking-service")]) for i in range(2)]
    gone = copy.deepcopy(bad)
    gone["metadata"]["deletionTimestamp"] = "2030-01-01T00:09:00Z"
    assert condition_for([gone, *fixed], {"booking-service": (1, 2)}).reason == "ServicesNotReady"
    cond = condition_for(fixed, {})
    assert cond.status == "True"
    assert roll_up([cond])[1] == "Ready"


def test_pod_problem_prefers_failures_and_is_stable():
    a = summarize(pod("booking-service", "b-2", created="2030-01-01T00:00:02Z", containers=[crash_loop("booking-service", "b-2")]))
    b = summarize(pod("booking-service", "b-1", created="2030-01-01T00:00:01Z", containers=[crash_loop("booking-service", "b-1")]))
    assert pod_problem(a).reason == "CrashLoopBackOff" and pod_problem(a).container == "booking-service"
    obs = observation({"booking-service": (0, 2)})
    pod_problems(obs, [a, b])
    assert "pod=b-1_shop" in obs.failing["booking-service"] and obs.failing["booking-service"].endswith("[2 pods]")


def test_store_keeps_summaries_per_platform_and_reports_only_changes():
    store = PodStore()
    p = pod("frontend", "tickets-frontend-1-a", containers=[image_never_pull("frontend")])
    other = pod("frontend", "shop2-frontend-1-a", instance="shop2")
    assert store.update(p) == ("shop", "tickets")
    assert store.update(copy.deepcopy(p)) is None, "an unchanged pod does not kick its platform"
    p2 = copy.deepcopy(p)
    p2["metadata"]["resourceVersion"] = "999"  # a change status does not show
    assert store.update(p2) is None
    assert store.update(other) == ("shop", "shop2")
    fixed = copy.deepcopy(p)
    fixed["status"]["containerStatuses"] = [running("frontend")]
    assert store.update(fixed) == ("shop", "tickets")
    (snap,) = store.snapshot("shop", "tickets")
    assert snap["containers"][0]["running"] and snap["name"] == "tickets-frontend-1-a"
    assert store.remove(p) == ("shop", "tickets")
    assert store.snapshot("shop", "tickets") == [] and len(store.snapshot("shop", "shop2")) == 1
    assert store.remove(p) is None
    unlabelled = pod("frontend", "x")
    del unlabelled["metadata"]["labels"]["app.kubernetes.io/instance"]
    assert store.update(unlabelled) is None
