"""The outbox relay: publishes ``booking_outbox`` rows to Kafka, then marks them published.

Run it as its own process, ``python -m booking_service.relay`` (the operator's outbox-relay
Deployment and the local stack do), or inside the web app with ``OUTBOX_RELAY=embedded``. With
``RELAY_METRICS_PORT`` set, the standalone relay serves /health (the loop turns), /ready (its last
pass reached PostgreSQL and, when it had rows to send, Kafka) and /metrics. Delivery guarantees:

* A booking is committed with its outbox row; the relay publishes rows in id order and marks a row
  published only after the broker acknowledged it (acks=all, idempotent producer). Kafka down means
  rows wait; they are published when it returns. Nothing is lost.
* Several relays may run: each batch is taken inside a transaction holding a PostgreSQL advisory
  lock (only one relay publishes at a time, which also keeps per-event order) and the rows are
  selected ``FOR UPDATE SKIP LOCKED``, so no row is ever handed to two relays.
* The one duplicate window: the broker acknowledged a message and the relay died (or lost the
  database) before its ``UPDATE ... SET published_at`` committed. That row is sent again by the
  next relay. Consumers that must be exact de-duplicate by ``booking_id``.
* A message whose send fails is retried on the next pass; later rows with the same key in the same
  batch are held back, so per-event order is kept.
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app

from booking_service.config import Config
from ticketing_common.db import make_engine
from ticketing_common.jsonlog import configure_logging
from ticketing_common.metrics import ensure_multiprocess_dir

log = logging.getLogger("booking_service.relay")

RELAY_LOCK_ID = 0x72656C79  # "rely"

SELECT_BATCH = sa.text("""
    SELECT id, topic, message_key, payload
      FROM booking_outbox
     WHERE published_at IS NULL AND topic <> ALL(CAST(:skip_topics AS varchar[]))
     ORDER BY id
     LIMIT :limit
       FOR UPDATE SKIP LOCKED
""")
HAS_PENDING = sa.text("SELECT EXISTS (SELECT 1 FROM booking_outbox WHERE published_at IS NULL "
                      "AND topic <> ALL(CAST(:skip_topics AS varchar[])))")
MARK_PUBLISHED = sa.text(
    "UPDATE booking_outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY(:ids)")
MARK_FAILED = sa.text(
    "UPDATE booking_outbox SET attempts = attempts + 1, last_error = :error WHERE id = ANY(:ids)")
PRUNE = sa.text("DELETE FROM booking_outbox WHERE published_at < now() - make_interval(hours => :hours)")
BACKLOG = sa.text("SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at)) FROM booking_outbox "
                  "WHERE published_at IS NULL")


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.published = Counter("outbox_messages_published_total", "Outbox messages acknowledged by Kafka",
                                 registry=self.registry)
        self.failures = Counter("outbox_publish_failures_total", "Outbox messages whose send failed (retried)",
                                registry=self.registry)
        self.pending = Gauge("outbox_pending_messages", "Outbox rows not yet published", registry=self.registry)
        self.lag = Gauge("outbox_oldest_pending_seconds", "Age of the oldest unpublished outbox row",
                         registry=self.registry)
        self.kafka_up = Gauge("outbox_kafka_connected", "1 when the relay has a working producer",
                              registry=self.registry)


def default_producer_factory(bootstrap_servers: str):
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=[s.strip() for s in bootstrap_servers.split(",") if s.strip()],
        client_id="booking-outbox-relay",
        acks="all",
        enable_idempotence=True,
        max_in_flight_requests_per_connection=5,  # ordered per partition with idempotence
        linger_ms=5,
        request_timeout_ms=10_000,
        delivery_timeout_ms=30_000,
        max_block_ms=5_000,
        reconnect_backoff_ms=100,
        reconnect_backoff_max_ms=2_000,
    )


class OutboxRelay:
    def __init__(self, engine: sa.Engine, bootstrap_servers: str, *, batch_size: int = 500,
                 poll_interval: float = 0.2, retention_hours: int = 24, producer_factory=None,
                 metrics: RelayMetrics | None = None, heartbeat_topic: str | None = None,
                 heartbeat_seconds: float = 0.0) -> None:
        self.engine = engine
        self.heartbeat_topic = heartbeat_topic
        self.heartbeat_seconds = heartbeat_seconds
        self._last_heartbeat = 0.0
        self.bootstrap_servers = bootstrap_servers
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention_hours = retention_hours
        self.producer_factory = producer_factory or default_producer_factory
        self.metrics = metrics or RelayMetrics()
        self._producer = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        self._missing_topics: dict[str, float] = {}
        self.missing_topic_backoff = 15.0
        self.last_error: str | None = None
        # For the health endpoints: when the loop last finished a pass, and how the last pass ended.
        self.last_pass_at = time.monotonic()
        self.last_pass_error: str | None = "no pass yet"

    # -- producer -----------------------------------------------------------------------------
    def _get_producer(self):
        if self._producer is None:
            self._producer = self.producer_factory(self.bootstrap_servers)
            self.metrics.kafka_up.set(1)
            log.info("connected to Kafka", extra={"bootstrap_servers": self.bootstrap_servers})
        return self._producer

    def _drop_producer(self) -> None:
        self._missing_topics.clear()
        producer, self._producer = self._producer, None
        self.metrics.kafka_up.set(0)
        if producer is not None:
            try:
                producer.close(timeout=0)  # fails whatever is still pending; those rows are retried
            except Exception:  # noqa: BLE001
                pass

    # -- one pass -----------------------------------------------------------------------------
    def run_once(self) -> int:
        """Publish one batch; returns how many rows were marked published (0 when idle or not leader)."""
        now = time.monotonic()
        skip_topics = [t for t, until in self._missing_topics.items() if until > now]
        with self.engine.connect() as conn:
            if self._producer is None:
                # Connect to Kafka outside the batch transaction (it can take a while when Kafka is
                # away), and only when there is something to publish.
                if not conn.execute(HAS_PENDING, {"skip_topics": skip_topics}).scalar():
                    conn.rollback()
                    return 0
                conn.rollback()
                self._get_producer()  # raises while Kafka is unreachable: rows stay in the outbox
            with conn.begin():
                if not conn.execute(sa.text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RELAY_LOCK_ID}).scalar():
                    return 0  # another relay is publishing right now
                rows = conn.execute(SELECT_BATCH, {"limit": self.batch_size, "skip_topics": skip_topics}).fetchall()
                if not rows:
                    return 0
                producer = self._get_producer()
                sent: list[tuple[Any, Any]] = []
                skipped = 0
                failed: dict[int, str] = {}
                held: set[tuple[str, str]] = set()
                now = time.monotonic()
                for row in rows:
                    key = (row.topic, row.message_key)
                    if key in held or self._missing_topics.get(row.topic, 0) > now:
                        skipped += 1  # held back: an earlier row of the same key or topic failed
                        continue
                    payload = row.payload if isinstance(row.payload, str) else json.dumps(row.payload, separators=(",", ":"))
                    try:
                        future = producer.send(row.topic, key=row.message_key.encode(), value=payload.encode())
                    except Exception as exc:  # noqa: BLE001 - metadata timeout (no such topic, no broker), buffer full
                        failed[row.id] = f"{type(exc).__name__}: {exc}"[:500]
                        held.add(key)
                        if type(exc).__name__ == "KafkaTimeoutError":
                            # No metadata for the topic within max_block_ms: it does not exist (topics
                            # are created by the operator, never auto-created) or Kafka is away. Do not
                            # block on it again for a while; its rows wait, other topics go on.
                            self._missing_topics[row.topic] = time.monotonic() + self.missing_topic_backoff
                        continue
                    sent.append((row, future))
                # Wait for every future: each resolves (ack or error) within delivery_timeout_ms.
                try:
                    producer.flush(timeout=45)
                except Exception as exc:  # noqa: BLE001 - KafkaTimeoutError: some futures stay undecided
                    log.warning("flush did not complete", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
                published: list[int] = []
                undecided = False
                for row, future in sent:
                    if not future.is_done:
                        undecided = True
                        failed[row.id] = "no answer from the broker"
                    elif future.failed():
                        failed[row.id] = f"{type(future.exception).__name__}: {future.exception}"[:500]
                    else:
                        published.append(row.id)
                if undecided:
                    self._drop_producer()
                if published:
                    conn.execute(MARK_PUBLISHED, {"ids": published})
                if failed:
                    first_error = next(iter(failed.values()))
                    conn.execute(MARK_FAILED, {"ids": list(failed), "error": first_error})
                    self.last_error = first_error
                    log.warning("outbox messages not published, will retry",
                                extra={"failed": len(failed), "published": len(published), "error": first_error})
            # committed: these rows are published for good
        self.metrics.published.inc(len(published))
        if failed:
            self.metrics.failures.inc(len(failed))
        return len(published)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        try:
            with self.engine.connect() as conn:
                pending, oldest = conn.execute(BACKLOG).one()
                self.metrics.pending.set(pending)
                self.metrics.lag.set(float(oldest or 0))
                if now - self._last_prune > 600:
                    with conn.begin():
                        conn.execute(PRUNE, {"hours": self.retention_hours})
                    self._last_prune = now
                else:
                    conn.rollback()
        except Exception as exc:  # noqa: BLE001
            log.debug("housekeeping failed: %s", exc)

    def heartbeat(self) -> bool:
        """Publish {"timestamp": now, "heartbeat": true} to every partition of the heartbeat topic,
        only while the outbox is empty: a booking still waiting in the outbox is older than `now`,
        and a watermark past it would make it late. Returns whether a heartbeat went out."""
        with self.engine.connect() as conn:
            pending = conn.execute(HAS_PENDING, {"skip_topics": []}).scalar()
            conn.rollback()
        if pending:
            return False
        producer = self._get_producer()
        payload = json.dumps({"timestamp": int(time.time() * 1000), "heartbeat": True}).encode()
        for partition in sorted(producer.partitions_for(self.heartbeat_topic) or ()):
            producer.send(self.heartbeat_topic, value=payload, partition=partition)
        producer.flush(timeout=10)
        return True

    # -- loop ---------------------------------------------------------------------------------
    def run_forever(self) -> None:
        backoff = 0.5
        last_house = 0.0
        while not self._stop.is_set():
            try:
                published = self.run_once()
                backoff = 0.5
                if time.monotonic() - last_house > 5:
                    self._housekeeping()
                    last_house = time.monotonic()
                if (self.heartbeat_topic and self.heartbeat_seconds > 0 and published == 0
                        and time.monotonic() - self._last_heartbeat >= self.heartbeat_seconds):
                    self._last_heartbeat = time.monotonic()
                    self.heartbeat()
                self._pass_done(None)
                if published == 0 and not self.last_error:
                    self._stop.wait(self.poll_interval)
                elif self.last_error:
                    self.last_error = None
                    self._stop.wait(min(2.0, self.poll_interval * 5))
            except Exception as exc:  # noqa: BLE001 - Kafka or PostgreSQL unreachable: wait and retry
                self._drop_producer() if _is_kafka_error(exc) else None
                self._pass_done(f"{type(exc).__name__}: {exc}"[:300])
                log.warning("relay pass failed, retrying", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                                    "retry_in_s": backoff})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._drop_producer()

    def _pass_done(self, error: str | None) -> None:
        self.last_pass_at = time.monotonic()
        self.last_pass_error = error

    def health(self, stall_seconds: float) -> tuple[bool, bool, dict[str, Any]]:
        """(live, ready, details). Live: the loop finished a pass within `stall_seconds` (a pass
        is bounded by the producer's timeouts, so a longer silence means it hangs). Ready: live,
        and the last pass reached PostgreSQL (and Kafka, when it had something to send)."""
        since = time.monotonic() - self.last_pass_at
        live = since <= stall_seconds and not self._stop.is_set()
        ready = live and self.last_pass_error is None
        details = {"seconds_since_last_pass": round(since, 1), "kafka_connected": self._producer is not None}
        if self.last_pass_error:
            details["last_error"] = self.last_pass_error
        return live, ready, details

    def start(self) -> "OutboxRelay":
        self._thread = threading.Thread(target=self.run_forever, name="outbox-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _is_kafka_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith("kafka")


def relay_from_config(cfg: Config, metrics: RelayMetrics | None = None) -> OutboxRelay:
    engine = make_engine(cfg.database_url, pool_size=2, max_overflow=2, statement_timeout_ms=30000)
    return OutboxRelay(engine, cfg.kafka_bootstrap_servers, batch_size=cfg.relay_batch_size,
                       poll_interval=cfg.relay_poll_interval, retention_hours=cfg.outbox_retention_hours,
                       metrics=metrics, heartbeat_topic=cfg.bookings_topic,
                       heartbeat_seconds=cfg.relay_heartbeat_seconds)


def health_app(relay: OutboxRelay, registry: CollectorRegistry, stall_seconds: float):
    """WSGI app of the standalone relay: /health (liveness), /ready (readiness), anything else /metrics."""
    metrics_app = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path not in ("/health", "/ready"):
            return metrics_app(environ, start_response)
        live, ready, details = relay.health(stall_seconds)
        ok = live if path == "/health" else ready
        status = "ok" if ok else ("stalled" if not live else "not ready")
        body = json.dumps({"status": status, "service": "outbox-relay", **details}).encode()
        start_response("200 OK" if ok else "503 Service Unavailable",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # probes every few seconds: no access log
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_health(relay: OutboxRelay, registry: CollectorRegistry, port: int, addr: str = "0.0.0.0",
                 stall_seconds: float = 120.0) -> WSGIServer:
    server = make_server(addr, port, health_app(relay, registry, stall_seconds),
                         server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="relay-health", daemon=True).start()
    return server


def main() -> int:
    cfg = Config.from_env()
    configure_logging("booking-relay", cfg.log_level)
    ensure_multiprocess_dir()  # prometheus-client writes there when PROMETHEUS_MULTIPROC_DIR is set
    metrics = RelayMetrics()
    relay = relay_from_config(cfg, metrics)
    if cfg.relay_metrics_port:
        serve_health(relay, metrics.registry, cfg.relay_metrics_port, stall_seconds=cfg.relay_stall_seconds)

    def _terminate(signum, _frame):
        log.info("stopping outbox relay", extra={"signal": signum})
        relay._stop.set()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    log.info("outbox relay started", extra={"bootstrap_servers": cfg.kafka_bootstrap_servers})
    relay.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
