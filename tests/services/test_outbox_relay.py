"""The outbox relay: several relays at once never send a row twice and keep per-event order; the
embedded mode (OUTBOX_RELAY=embedded) publishes too."""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from booking_service.config import Config as BookingConfig
from booking_service.relay import RelayMetrics, relay_from_config
from tests.services.conftest import consume, serve
from ticketing_common.config import resolve


@pytest.fixture
def without_session_relay(services):
    """Stop the session's relay for one test, start a fresh one afterwards."""
    services.relay.stop()
    yield
    cfg = resolve(BookingConfig, {"bookings_topic": services.bookings_topic, "relay_poll_interval": 0.1})
    services.relay = relay_from_config(cfg).start()


def test_three_relays_publish_each_row_once_in_order(services, db, make_event, new_user, without_session_relay):
    cfg = resolve(BookingConfig, {"bookings_topic": services.bookings_topic, "relay_poll_interval": 0.05,
                                  "relay_batch_size": 7})
    metrics = [RelayMetrics() for _ in range(3)]
    relays = [relay_from_config(cfg, m).start() for m in metrics]
    try:
        events = [make_event(tickets=500), make_event(tickets=500)]
        users = [new_user()["user_id"] for _ in range(5)]

        def book(i: int) -> str:
            r = requests.post(services.booking.url + "/bookings", json={
                "user_id": users[i % 5], "event_id": events[i % 2], "ticket_count": 1}, timeout=30)
            assert r.status_code == 201, r.text
            return r.json()["booking_id"]

        with ThreadPoolExecutor(30) as pool:
            booking_ids = list(pool.map(book, range(150)))
        messages = consume(services.bootstrap_servers, services.bookings_topic, until=lambda m: len(m) >= 150,
                           key_filter=lambda m: m["event_id"] in events, timeout=90, settle=3)
    finally:
        for r in relays:
            r.stop()
    per_booking = Counter(m["booking_id"] for m in messages)
    assert set(per_booking) == set(booking_ids) and max(per_booking.values()) == 1
    assert sum(m.published._value.get() for m in metrics) == 150  # noqa: SLF001
    # per event, the topic holds the messages in outbox (commit) order
    with db.connect() as conn:
        order = {str(b): i for b, i in conn.execute(sa.text(
            "SELECT booking_id, id FROM booking_outbox WHERE booking_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": booking_ids})}
    for event_id in events:
        seq = [order[m["booking_id"]] for m in messages if m["event_id"] == event_id]
        assert seq == sorted(seq), event_id


def test_embedded_relay_publishes(service_env, services, make_event, new_user, without_session_relay):
    import booking_service

    app = booking_service.create_app({"user_service_url": services.user.url, "outbox_relay": "embedded",
                                      "bookings_topic": services.bookings_topic, "relay_poll_interval": 0.05})
    live = serve("booking-embedded-relay", app)
    try:
        event_id = make_event(tickets=10)
        user = new_user()
        r = requests.post(live.url + "/bookings", json={"user_id": user["user_id"], "event_id": event_id,
                                                        "ticket_count": 4}, timeout=10)
        assert r.status_code == 201
        messages = consume(services.bootstrap_servers, services.bookings_topic, until=lambda m: len(m) >= 1,
                           key_filter=lambda m: m["event_id"] == event_id, timeout=60)
        assert [m["booking_id"] for m in messages] == [r.json()["booking_id"]]
        relay = app.extensions["outbox_relay"]
        deadline = time.monotonic() + 10  # the counter moves right after the commit that follows the ack
        while relay.metrics.published._value.get() < 1 and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.05)
        assert relay.metrics.published._value.get() >= 1  # noqa: SLF001
    finally:
        app.extensions["outbox_relay"].stop()
        live.stop()


def test_heartbeats_close_windows_only_while_the_outbox_is_empty(services, db, kafka_admin, without_session_relay):
    """Idle relay: a watermark heartbeat (no event_id) on every partition; with a booking still
    waiting in the outbox, none (a heartbeat newer than it would make it late for the analytics job)."""
    import uuid

    from booking_service.relay import OutboxRelay
    from tests.services.conftest import create_topic, delete_topic, unique

    topic = create_topic(kafka_admin, unique("test-heartbeats"), partitions=3)
    relay = OutboxRelay(db, services.bootstrap_servers, heartbeat_topic=topic, heartbeat_seconds=0.2)
    try:
        with db.begin() as conn:  # a booking nobody publishes yet (its topic has no relay here)
            conn.execute(sa.text("INSERT INTO booking_outbox (booking_id, topic, message_key, payload) "
                                 "VALUES (:b, 'test-unpublished', 'e', '{}')"), {"b": str(uuid.uuid4())})
        assert relay.heartbeat() is False
        with db.begin() as conn:
            conn.execute(sa.text("DELETE FROM booking_outbox WHERE topic = 'test-unpublished'"))
        before = int(time.time() * 1000)
        assert relay.heartbeat() is True
        messages = consume(services.bootstrap_servers, topic, until=lambda m: len(m) >= 3, timeout=30, settle=1)
    finally:
        relay._drop_producer()  # noqa: SLF001
        delete_topic(services.bootstrap_servers, topic)
    assert sorted(m["_partition"] for m in messages) == [0, 1, 2]
    assert all(m["heartbeat"] is True and "event_id" not in m and m["timestamp"] >= before for m in messages)


def _relay_process(env: dict[str, str], log_path) -> tuple["subprocess.Popen", int]:
    """`python -m booking_service.relay` as the outbox-relay Deployment runs it (RELAY_METRICS_PORT set)."""
    import os
    import subprocess
    import sys

    from tests.fixtures.operator import free_port

    port = free_port()
    full_env = {**os.environ, **env, "RELAY_METRICS_PORT": str(port), "RELAY_HEARTBEAT_SECONDS": "0",
                "LOG_LEVEL": "INFO"}
    proc = subprocess.Popen([sys.executable, "-m", "booking_service.relay"], env=full_env,
                            stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    return proc, port


def _get_json(port: int, path: str) -> tuple[int, dict] | None:
    try:
        r = requests.get(f"http://127.0.0.1:{port}{path}", timeout=2)
    except requests.RequestException:
        return None
    return r.status_code, (r.json() if path != "/metrics" else {"text": r.text})


def _wait_for(port: int, path: str, status: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _get_json(port, path)
        if seen and seen[0] == status:
            return seen[1]
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {status}; last: {seen}")


def test_standalone_relay_process_serves_health_ready_and_metrics(services, migrated, tmp_path):
    """Against the real PostgreSQL and Kafka: ready after its first pass; the metrics directory of a
    fresh emptyDir is created by the relay itself."""
    metrics_dir = tmp_path / "emptydir" / "prometheus"
    proc, port = _relay_process({"DATABASE_URL": migrated, "KAFKA_BOOTSTRAP_SERVERS": services.bootstrap_servers,
                                 "BOOKINGS_TOPIC": services.bookings_topic,
                                 "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, tmp_path / "relay.log")
    try:
        ready = _wait_for(port, "/ready", 200)
        assert ready["status"] == "ok" and ready["service"] == "outbox-relay" and "last_error" not in ready
        status, health = _get_json(port, "/health")
        assert status == 200 and health["status"] == "ok"
        metrics = _get_json(port, "/metrics")
        assert metrics[0] == 200 and "outbox_pending_messages" in metrics[1]["text"]
        assert metrics_dir.is_dir()
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert proc.returncode == 0, (tmp_path / "relay.log").read_text()[-2000:]


def test_standalone_relay_without_its_database_is_live_but_not_ready(tmp_path):
    """A relay that cannot reach PostgreSQL keeps running (liveness passes, a restart would not help)
    and says why it is not ready."""
    proc, port = _relay_process({"DATABASE_URL": "postgresql+psycopg://ticket:ticket@127.0.0.1:1/ticketdb",
                                 "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                                 "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}, tmp_path / "relay.log")
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = _get_json(port, "/ready")
            if seen and seen[0] == 503 and seen[1].get("last_error", "no pass yet") != "no pass yet":
                body = seen[1]
                break
            time.sleep(0.2)
        assert body is not None, f"/ready never reported the database error; last: {seen}"
        assert body["status"] == "not ready" and "OperationalError" in body["last_error"], body
        assert _wait_for(port, "/health", 200)["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
