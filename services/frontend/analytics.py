"""The latest analytics results, read from the ``analytics-results`` topic by a background consumer.

Messages are ``{"event_id", "window_end", "total_tickets"}``; the feed keeps the newest window per
event. Without KAFKA_BOOTSTRAP_SERVERS there is no feed and ``/api/analytics`` answers ``[]``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from typing import Any

log = logging.getLogger("frontend.analytics")


def _order_key(window_end: Any) -> float:
    """window_end as epoch ms (int or ISO-8601 string), so windows compare in time order."""
    if isinstance(window_end, (int, float)) and not isinstance(window_end, bool):
        return float(window_end)
    if isinstance(window_end, str):
        try:
            return datetime.fromisoformat(window_end.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            return 0.0
    return 0.0


class AnalyticsFeed:
    def __init__(self, bootstrap_servers: str, topic: str, received: Any = None) -> None:
        """``received``: a prometheus Counter incremented for every result read (optional)."""
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self._received = received
        self._latest: dict[Any, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.messages = 0

    def start(self) -> "AnalyticsFeed":
        self._thread = threading.Thread(target=self._run, name="analytics-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def ingest(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except (ValueError, TypeError):
            return
        if not isinstance(msg, dict) or not {"event_id", "window_end", "total_tickets"} <= msg.keys():
            return
        with self._lock:
            current = self._latest.get(msg["event_id"])
            if current is None or _order_key(msg["window_end"]) >= _order_key(current["window_end"]):
                self._latest[msg["event_id"]] = {"event_id": msg["event_id"], "window_end": msg["window_end"],
                                                 "total_tickets": msg["total_tickets"]}
        self.messages += 1
        if self._received is not None:
            self._received.inc()

    def results(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._latest.values())
        return sorted(items, key=lambda r: (-_order_key(r["window_end"]), -(r["total_tickets"] or 0)))

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        backoff = 1.0
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = KafkaConsumer(
                    bootstrap_servers=[s.strip() for s in self.bootstrap_servers.split(",") if s.strip()],
                    group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                    # Results are written in Kafka transactions: aborted ones would double-count.
                    isolation_level="read_committed",
                    client_id="frontend-analytics", request_timeout_ms=15000,
                    reconnect_backoff_max_ms=5000)
                partitions = None
                while not self._stop.is_set() and not partitions:
                    partitions = consumer.partitions_for_topic(self.topic)
                    if not partitions:
                        self._stop.wait(5)
                if self._stop.is_set():
                    break
                consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])
                self.connected = True
                backoff = 1.0
                checked = time.monotonic()
                while not self._stop.is_set():
                    batches = consumer.poll(timeout_ms=1000, max_records=500)
                    for records in batches.values():
                        for record in records:
                            self.ingest(record.value)
                    if time.monotonic() - checked > 60:  # partitions only grow: pick up new ones
                        checked = time.monotonic()
                        if (consumer.partitions_for_topic(self.topic) or partitions) != partitions:
                            break
            except Exception as exc:  # noqa: BLE001 - broker away: retry
                self.connected = False
                log.warning("analytics consumer error, retrying", extra={"error": f"{type(exc).__name__}: {exc}"[:200]})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                self.connected = False
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:  # noqa: BLE001
                        pass
