"""The real entry points: stack/Procfile run by honcho (gunicorn for each service, the migrations at
start-up, the outbox relay as its own process), on free ports, against the session's database,
topic and a bucket of its own. This is what stack/services.sh starts."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.services.conftest import consume, delete_bucket, unique

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def procfile_stack(service_env, migrated, kafka, moto, bookings_topic, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    bucket = unique("test-procfile")
    ports = {name: free_port() for name in ("FRONTEND_PORT", "USER_SERVICE_PORT", "EVENT_CATALOG_PORT",
                                            "BOOKING_SERVICE_PORT", "RELAY_METRICS_PORT")}
    env = {
        **os.environ, **service_env, **{k: str(v) for k, v in ports.items()},
        "TP_RUN_DIR": str(run_dir),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO / "services"),
        "PYTHONUNBUFFERED": "1",
        "USER_SERVICE_URL": f"http://127.0.0.1:{ports['USER_SERVICE_PORT']}",
        "EVENT_CATALOG_URL": f"http://127.0.0.1:{ports['EVENT_CATALOG_PORT']}",
        "BOOKING_SERVICE_URL": f"http://127.0.0.1:{ports['BOOKING_SERVICE_PORT']}",
        "BOOKINGS_TOPIC": bookings_topic,
        "TICKETS_BUCKET": bucket,
        "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4",
        "OUTBOX_RELAY": "off",
    }
    log = open(run_dir / "honcho.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "honcho"), "-f", str(REPO / "stack" / "Procfile"),
                             "-d", str(REPO), "-e", "/dev/null", "--no-colour", "start"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    urls = {k.removesuffix("_PORT").lower(): f"http://127.0.0.1:{v}" for k, v in ports.items()}
    try:
        deadline = time.monotonic() + 120
        for name in ("user_service", "event_catalog", "booking_service", "frontend"):
            while True:
                assert proc.poll() is None, (run_dir / "honcho.log").read_text()[-3000:]
                try:
                    if requests.get(urls[name] + "/ready", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, f"{name} not ready: " + (run_dir / "honcho.log").read_text()[-3000:]
                time.sleep(0.5)
        yield urls, run_dir / "honcho.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        delete_bucket(moto, bucket)


def test_procfile_stack_books_end_to_end(procfile_stack, make_event, kafka, bookings_topic):
    urls, log_path = procfile_stack
    gw = urls["frontend"]
    event_id = make_event(tickets=30)
    user = requests.post(gw + "/api/users/register",
                         json={"name": "Procfile", "email": f"{uuid.uuid4().hex[:10]}@example.com"}, timeout=10).json()
    booking_ids = []
    for _ in range(6):  # several requests so both gunicorn workers answer
        r = requests.post(gw + "/api/bookings/book",
                          json={"user_id": user["user_id"], "event_id": event_id, "ticket_count": 2}, timeout=10)
        assert r.status_code == 200, r.text
        booking_ids.append(r.json()["booking_id"])
    health = requests.get(gw + "/api/health", timeout=10).json()
    assert health["status"] == "ok", health

    # the relay process publishes them
    messages = consume(kafka.bootstrap_servers, bookings_topic, until=lambda m: len(m) >= 6,
                       key_filter=lambda m: m.get("event_id") == event_id, timeout=60, settle=1)  # skips heartbeats
    assert sorted(m["booking_id"] for m in messages) == sorted(booking_ids)

    # metrics aggregate the gunicorn workers (prometheus multiprocess mode)
    metrics = requests.get(urls["booking_service"] + "/metrics", timeout=10).text
    line = next(l for l in metrics.splitlines()
                if l.startswith('http_requests_total{') and 'route="/bookings"' in l and 'status="201"' in l)
    assert float(line.rsplit(" ", 1)[1]) == 6.0
    relay_metrics = requests.get(urls["relay_metrics"] + "/metrics", timeout=10).text
    assert "outbox_messages_published_total" in relay_metrics

    # structured logs: every service line after honcho's prefix is one JSON object
    lines = [l.split(" | ", 1)[1] for l in log_path.read_text().splitlines() if " | " in l and not l.split(" | ")[0].rstrip().endswith("system")]
    parsed = [json.loads(l) for l in lines if l.strip()]
    services = {p.get("service") for p in parsed}
    assert {"user-service", "event-catalog", "booking-service", "frontend", "booking-relay"} <= services, services
    assert any(p.get("msg") == "POST /api/bookings/book 200" and p.get("request_id") for p in parsed)
