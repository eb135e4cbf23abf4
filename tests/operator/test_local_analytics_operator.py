"""The local analytics engine driven by the operator: a real Flink job (PyFlink MiniCluster) started
for a TicketPlatform, its state in status, its results on the results topic, stopped on deletion."""
from __future__ import annotations

import json
import subprocess
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.serializer import JsonSerializer
from kafka.admin import KafkaAdminClient

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import apply_tp, tp_manifest, wait_phase


def test_local_job_runs_counts_and_stops_with_the_platform(controlplane, operator, namespace, kafka):
    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    bookings, results = f"bookings-{suffix}", f"results-{suffix}"
    apply_tp(cp, namespace, tp_manifest("tickets", json.dumps({
        "kafka": {"bootstrapServers": kafka.bootstrap_servers, "deletionPolicy": "Delete",
                  "topics": {"bookings": {"name": bookings, "partitions": 1}, "results": {"name": results, "partitions": 1}}},
        "analytics": {"engine": "local", "windowSeconds": 3, "outOfOrdernessSeconds": 1},
    })))
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=240)
    analytics = tp["status"]["analytics"]
    assert analytics["engine"] == "local" and analytics["state"] == "RUNNING" and analytics["jobId"]
    assert "RUNNING" in cp.kubectl("-n", namespace, "get", "tp", "tickets").stdout

    # Bookings in one 3 s window, then a later record that moves the watermark past it.
    start = (int(time.time() * 1000) // 3000 + 1) * 3000
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all",
                             value_serializer=JsonSerializer())
    for i, count in enumerate((2, 3, 4)):
        producer.send(bookings, {"event_id": 7, "user_id": "u", "ticket_count": count, "timestamp": start + i * 500,
                                 "booking_id": str(uuid.uuid4())})
    producer.send(bookings, {"timestamp": start + 10_000, "heartbeat": True})
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(results, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest",
                             isolation_level="read_committed", group_id=None, consumer_timeout_ms=1000)
    seen: list[dict] = []

    def result_arrived():
        for record in consumer:
            seen.append(json.loads(record.value))
        return [r for r in seen if r["event_id"] == 7]

    found = wait_until(result_arrived, timeout=120, interval=0.5, message=lambda: f"a result on {results}; saw {seen}")
    consumer.close()
    assert found[0]["total_tickets"] == 9

    cp.kubectl("-n", namespace, "delete", "tp", "tickets", "--timeout=90s")
    wait_until(lambda: subprocess.run(["pgrep", "-f", f"analytics/{namespace}-tickets"], capture_output=True).returncode == 1,
               timeout=60, message="the local Flink job stopped after deletion")
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        wait_until(lambda: not ({bookings, results} & set(admin.list_topics())), timeout=30,
                   message="topics deleted (deletionPolicy Delete)")
    finally:
        admin.close()
