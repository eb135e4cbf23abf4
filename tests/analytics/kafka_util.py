"""Small Kafka helpers for the analytics tests and scripts/bench_analytics.py (kafka-python)."""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.serializer import Serializer


def iso(ms: int) -> str:
    """Epoch milliseconds -> ISO-8601 UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_s(ms: int) -> str:
    """Epoch milliseconds -> the job's window_end format (second precision, Z)."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_topics(bootstrap: str, *specs: tuple[str, int]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tp-analytics-test", request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in specs])
    finally:
        admin.close()


def delete_topics(bootstrap: str, *names: str) -> None:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tp-analytics-test", request_timeout_ms=15000)
        try:
            admin.delete_topics(list(names))
        finally:
            admin.close()
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class _JsonOrRaw(Serializer):
    """JSON for messages, raw bytes as given (the tests also send junk on purpose)."""

    def serialize(self, topic, headers, data):  # noqa: ANN001
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class Bookings:
    """Produces booking messages (acks=all, flushed per send_all)."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                      value_serializer=_JsonOrRaw())

    def send(self, value: Any, partition: int | None = 0) -> None:
        self.producer.send(self.topic, value, partition=partition)

    def send_all(self, values: Iterable[Any], partition: int | None = 0) -> None:
        for v in values:
            self.send(v, partition)
        self.producer.flush(30)

    def close(self) -> None:
        self.producer.flush(30)
        self.producer.close(10)


def booking(event_id: Any, count: int, ts: Any, booking_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": "u-test", "ticket_count": count, "timestamp": ts,
            "booking_id": booking_id or uuid.uuid4().hex[:12]}


class Results:
    """Reads the results topic with isolation.level=read_committed from the beginning."""

    def __init__(self, bootstrap: str, topic: str, isolation_level: str = "read_committed"):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation_level,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      consumer_timeout_ms=500)
        parts = None
        deadline = time.monotonic() + 30
        while not parts and time.monotonic() < deadline:
            parts = self.consumer.partitions_for_topic(topic)
            if not parts:
                time.sleep(0.2)
        self.consumer.assign([TopicPartition(topic, p) for p in sorted(parts or [0])])
        self.consumer.seek_to_beginning()
        self.messages: list[dict[str, Any]] = []
        self.arrival: list[float] = []   # wall-clock time each message was first seen

    def poll(self, timeout_s: float = 0.5) -> int:
        got = 0
        batches = self.consumer.poll(timeout_ms=int(timeout_s * 1000))
        now = time.time()
        for records in batches.values():
            for rec in records:
                self.messages.append(json.loads(rec.value))
                self.arrival.append(now)
                got += 1
        return got

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float,
                 what: str = "results") -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if predicate(self.messages):
                return self.messages
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; got {self.messages}")

    def by_key(self) -> dict[tuple[Any, str], list[int]]:
        out: dict[tuple[Any, str], list[int]] = {}
        for m in self.messages:
            out.setdefault((m["event_id"], m["window_end"]), []).append(m["total_tickets"])
        return out

    def close(self) -> None:
        self.consumer.close()
