"""The embedded default on the real node: examples/local.yaml applied to the local cluster, the
operator running in it from its image, every service, the outbox relay and the analytics job as
real pods. Every request goes to the frontend's NodePort on 127.0.0.1 or to this machine's pods;
every check reads the response body."""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from ticketplatform_operator.services import NAMES as SERVICES
from tests.fixtures.controlplane import wait_until
from tests.fixtures.platform import LocalPlatform

REAL_NODE = "tp-node"


def _ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return pod.get("status", {}).get("phase") == "Running" and conditions.get("Ready") == "True"


def _condition(tp: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in tp["status"]["conditions"] if c["type"] == type_)


def _undo(change: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that takes `original` + `change` back to `original` (null removes a key)."""
    undo: dict[str, Any] = {}
    for key, value in change.items():
        if key not in original:
            undo[key] = None
        elif isinstance(value, dict) and isinstance(original[key], dict):
            undo[key] = _undo(value, original[key])
        else:
            undo[key] = original[key]
    return undo


def _pod_uids(platform: LocalPlatform, component: str) -> set[str]:
    return {p["metadata"]["uid"] for p in platform.pods(component) if not p["metadata"].get("deletionTimestamp")}


def test_every_pod_runs_on_the_real_node_and_is_ready(local_platform: LocalPlatform) -> None:
    tp = local_platform.wait_ready()
    pods = local_platform.pods()
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert set(SERVICES) <= components, components
    for pod in pods:
        name = pod["metadata"]["name"]
        assert pod["spec"]["nodeName"] == REAL_NODE, f"{name} is on {pod['spec'].get('nodeName')}"
        assert _ready(pod), f"{name} not Ready: {json.dumps(pod['status'])[:800]}"
        # Real readiness: the kubelet ran the probe against a started container.
        for cs in pod["status"]["containerStatuses"]:
            assert cs["ready"] and cs["started"] and "running" in cs["state"], cs
    assert _condition(tp, "DeploymentsReady")["status"] == "True"
    ready = tp["status"]["services"]
    assert all(ready[s]["ready"] >= 1 and ready[s]["ready"] == ready[s]["desired"] for s in SERVICES), ready
    assert tp["status"]["readyServices"] == f"{len(SERVICES)}/{len(SERVICES)}"


def test_ui_is_served_by_the_frontend_pod(local_platform: LocalPlatform) -> None:
    status, body = local_platform.get("/")
    assert status == 200
    assert "<title>TicketPlatform" in body
    status, body = local_platform.get("/api/health")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok", health
    assert set(health["services"]) >= set(SERVICES), health


def test_register_book_and_list_through_the_cluster(local_platform: LocalPlatform, kafka: Any) -> None:
    from kafka import KafkaConsumer, TopicPartition

    email = f"real-node-{uuid.uuid4().hex[:8]}@example.com"
    status, user = local_platform.post_json("/api/users/register", {"name": "Real Node", "email": email})
    assert status == 200 and user["email"] == email, user
    status, body = local_platform.get("/api/events")
    events = json.loads(body)
    assert status == 200 and events, body
    event = next(e for e in events if e["tickets_available"] >= 2)
    status, booking = local_platform.post_json(
        "/api/bookings/book", {"user_id": user["user_id"], "event_id": event["event_id"], "ticket_count": 2})
    assert status == 200 and booking["booking_id"], booking
    status, body = local_platform.get(f"/api/users/{user['user_id']}/bookings")
    assert status == 200 and booking["booking_id"] in body

    # The relay pod publishes it to ticket-bookings (read here from the host listener).
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    try:
        partitions = [TopicPartition("ticket-bookings", p) for p in consumer.partitions_for_topic("ticket-bookings") or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()

        def published() -> dict[str, Any] | None:
            for msg in consumer:
                value = json.loads(msg.value)
                if value.get("booking_id") == booking["booking_id"]:
                    return value
            return None

        message = wait_until(published, timeout=90, interval=0.5, message="booking on ticket-bookings")
    finally:
        consumer.close()
    assert message["event_id"] == event["event_id"] and message["ticket_count"] == 2

    # The analytics job pod counts it in a window; the frontend pod serves the result.
    def counted() -> list[dict[str, Any]] | None:
        status, body = local_platform.get("/api/analytics")
        rows = [r for r in json.loads(body) if str(r.get("event_id")) == str(event["event_id"])] if status == 200 else []
        return rows or None

    rows = wait_until(counted, timeout=240, interval=3, message="analytics result for the booked event")
    assert sum(r["total_tickets"] for r in rows) >= 2, rows


def test_killed_pod_is_replaced(local_platform: LocalPlatform) -> None:
    before = _pod_uids(local_platform, "event-catalog")
    victim = sorted(before)[0]
    name = next(p["metadata"]["name"] for p in local_platform.pods("event-catalog") if p["metadata"]["uid"] == victim)
    local_platform.cp.kubectl("-n", local_platform.namespace, "delete", "pod", name, "--wait=false")
    wait_until(lambda: victim not in _pod_uids(local_platform, "event-catalog")
               and all(_ready(p) for p in local_platform.pods("event-catalog"))
               and len(local_platform.pods("event-catalog")) >= 1,
               timeout=120, message="event-catalog pod replaced and Ready")
    local_platform.wait_ready()


def test_deleted_deployment_is_restored(local_platform: LocalPlatform) -> None:
    name = f"{local_platform.name}-user-service"
    old_uid = local_platform.cp.kubectl_json("-n", local_platform.namespace, "get", "deployment", name)["metadata"]["uid"]
    local_platform.cp.kubectl("-n", local_platform.namespace, "delete", "deployment", name)

    def restored() -> bool:
        proc = local_platform.cp.kubectl("-n", local_platform.namespace, "get", "deployment", name, "-o", "json", check=False)
        return proc.returncode == 0 and json.loads(proc.stdout)["metadata"]["uid"] != old_uid

    wait_until(restored, timeout=90, message="user-service Deployment restored")
    local_platform.wait_ready()


def test_image_change_rolls_without_a_failed_request(local_platform: LocalPlatform, node: Any) -> None:
    old_image = local_platform.tp()["spec"]["services"]["frontend"].get("image") or "ghcr.io/ticketplatform/frontend:0.1.0"
    new_image = old_image.rsplit(":", 1)[0] + ":0.1.0-rolled"
    node.tag_image(old_image, new_image)
    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal answered
        deadline = time.monotonic() + 300  # bounded even if the test fails early
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                status, body = local_platform.get("/api/health", timeout=5)
                ok = status == 200 and json.loads(body).get("services", {}).get("frontend", {}).get("status") == "up"
                if not ok:
                    failures.append(f"{status} {body[:200]}")
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                failures.append(repr(exc))
            answered += 1
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        local_platform.patch_spec({"services": {"frontend": {"image": new_image}}})

        def rolled() -> bool:
            pods = local_platform.pods("frontend")
            return bool(pods) and all(p["spec"]["containers"][0]["image"] == new_image and _ready(p)
                                      and not p["metadata"].get("deletionTimestamp") for p in pods)

        wait_until(rolled, timeout=180, message="frontend rolled to the new image")
        time.sleep(3)  # requests after the last old pod went away
    finally:
        stop.set()
        poller.join(timeout=30)
    assert answered > 20, answered
    assert not failures, failures[:5]
    local_platform.wait_ready()


def test_env_change_replaces_only_that_service(local_platform: LocalPlatform) -> None:
    before = {s: _pod_uids(local_platform, s) for s in SERVICES}
    local_platform.patch_spec({"services": {"user-service": {"env": {"LOG_LEVEL": "DEBUG"}}}})

    def replaced() -> bool:
        now = _pod_uids(local_platform, "user-service")
        return bool(now) and not (now & before["user-service"]) and all(_ready(p) for p in local_platform.pods("user-service"))

    wait_until(replaced, timeout=180, message="user-service pods replaced")
    local_platform.wait_ready()
    for service in SERVICES:
        if service != "user-service":
            assert _pod_uids(local_platform, service) == before[service], service


@pytest.mark.parametrize("service, change, reasons", [
    ("booking-service", {"image": "ghcr.io/ticketplatform/booking-service:0.0.0-missing"},
     ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull")),
    ("event-catalog", {"env": {"PORT": "not-a-port"}}, ("CrashLoopBackOff", "Error")),
])
def test_failing_service_degrades_the_platform_and_recovers(
        local_platform: LocalPlatform, service: str, change: dict[str, Any], reasons: tuple[str, ...]) -> None:
    original = local_platform.tp()["spec"]["services"][service]
    local_platform.patch_spec({"services": {service: change}})
    try:
        def degraded() -> dict[str, Any] | None:
            tp = local_platform.tp()
            status = tp.get("status") or {}
            if status.get("phase") != "Degraded":
                return None
            cond = _condition(tp, "DeploymentsReady")
            text = f"{cond.get('reason')} {cond.get('message')}"
            return cond if service in text and any(r in text for r in reasons) else None

        cond = wait_until(degraded, timeout=180, interval=1,
                          message=lambda: f"Degraded naming {service}; status: {json.dumps(local_platform.tp().get('status'))[:1500]}")
        assert cond["status"] == "False"
    finally:
        local_platform.patch_spec({"services": {service: _undo(change, original)}})
    local_platform.wait_ready(timeout=300)
