"""The booking-service HPA really scales on the real node: metrics-server reads the kubelet's CPU
figures, load drives the pods' CPU above the target, the HPA adds replicas, and after the load
stops it removes them again once the (short, spec-set) stabilisation window has passed.

The load is bounded in time and goes only to the booking-service's ClusterIP on this machine."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from tests.fixtures.controlplane import wait_until
from tests.fixtures.platform import LocalPlatform

LOAD_SECONDS_MAX = 240
LOAD_THREADS = 6


def _hpa(platform: LocalPlatform) -> dict[str, Any]:
    return platform.cp.kubectl_json("-n", platform.namespace, "get", "hpa", f"{platform.name}-booking-service")


def _cpu_utilisation(hpa: dict[str, Any]) -> int | None:
    for metric in (hpa.get("status") or {}).get("currentMetrics") or []:
        current = (metric.get("resource") or {}).get("current") or {}
        if metric.get("type") == "Resource" and "averageUtilization" in current:
            return int(current["averageUtilization"])
    return None


def test_booking_service_scales_up_under_load_and_back_down(local_platform: LocalPlatform) -> None:
    spec = local_platform.tp()["spec"]["services"]["booking-service"]["autoscaling"]
    min_replicas = spec["minReplicas"]
    hpa = _hpa(local_platform)
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == spec["scaleDownStabilizationSeconds"]

    # Real CPU figures first: metrics-server has scraped the kubelet (kubectl top answers too).
    wait_until(lambda: _cpu_utilisation(_hpa(local_platform)) is not None, timeout=180, interval=3,
               message=lambda: f"HPA CPU reading; status {json.dumps(_hpa(local_platform).get('status'))}")
    top = local_platform.cp.kubectl("-n", local_platform.namespace, "top", "pods", "-l",
                                    "app.kubernetes.io/component=booking-service", "--no-headers")
    assert "m " in top.stdout or "m\t" in top.stdout, top.stdout  # e.g. "local-booking-service-x  3m  60Mi"

    svc = local_platform.cp.kubectl_json("-n", local_platform.namespace, "get", "svc", f"{local_platform.name}-booking-service")
    base = f"http://{svc['spec']['clusterIP']}:80"
    stop = threading.Event()
    answers = {"404": 0, "other": 0}

    def load() -> None:
        deadline = time.monotonic() + LOAD_SECONDS_MAX
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/bookings/{uuid.uuid4()}", timeout=5).read()
                answers["other"] += 1
            except urllib.error.HTTPError as e:
                # An unknown booking: a real answer from the service (its JSON error body).
                answers["404" if e.code == 404 and b"unknown booking" in e.read() else "other"] += 1
            except OSError:
                answers["other"] += 1

    threads = [threading.Thread(target=load, daemon=True) for _ in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    try:
        scaled = wait_until(lambda: (_hpa(local_platform).get("status") or {}).get("desiredReplicas", 0) > min_replicas,
                            timeout=LOAD_SECONDS_MAX, interval=3,
                            message=lambda: f"scale-up; HPA status {json.dumps(_hpa(local_platform).get('status'))}")
        assert scaled
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert answers["404"] > 100, answers
    hpa = _hpa(local_platform)
    assert hpa["status"]["desiredReplicas"] > min_replicas
    assert (_cpu_utilisation(hpa) or 0) > 0

    wait_until(lambda: len([p for p in local_platform.pods("booking-service") if not p["metadata"].get("deletionTimestamp")]) > min_replicas,
               timeout=120, interval=2, message="more booking-service pods than minReplicas")
    # After the load: back to minReplicas once the stabilisation window has passed.
    wait_until(lambda: _hpa(local_platform)["status"].get("desiredReplicas") == min_replicas
               and local_platform.cp.kubectl_json("-n", local_platform.namespace, "get", "deployment",
                                                  f"{local_platform.name}-booking-service")["spec"]["replicas"] == min_replicas,
               timeout=spec["scaleDownStabilizationSeconds"] + 180, interval=3,
               message=lambda: f"scale-down; HPA status {json.dumps(_hpa(local_platform).get('status'))}")
    local_platform.wait_ready()
