from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketing_common.config import env_choice, env_float, env_int, env_str

DEFAULT_DATABASE_URL = "postgresql+psycopg://ticket:ticket@127.0.0.1:15432/ticketdb"


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = 10
    db_max_overflow: int = 20
    user_service_url: str = "http://127.0.0.1:18081"
    user_service_timeout: float = 3.0          # seconds, connect and read
    user_cache_seconds: float = 60.0           # users are never deleted: cache positive lookups
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    bookings_topic: str = "ticket-bookings"
    # "off": the relay runs as its own process (python -m booking_service.relay), as the Procfile does;
    # "embedded": each app instance (gunicorn worker) runs a relay thread; an advisory lock lets only
    # one of them publish at a time, so this is safe too (one container, no extra process).
    outbox_relay: str = "off"
    relay_batch_size: int = 500
    relay_poll_interval: float = 0.2
    relay_metrics_port: int = 0                # 0: no health/metrics server for the standalone relay
    relay_stall_seconds: float = 120.0         # /health fails when no relay pass finished for this long
    # > 0: while the outbox is empty, publish a watermark heartbeat (no event_id) to every partition
    # of the bookings topic this often, so the analytics job's event-time windows close without
    # waiting for the next booking. 0: off.
    relay_heartbeat_seconds: float = 0.0
    outbox_retention_hours: int = 24
    max_content_length: int = 16 * 1024
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        return cls(
            database_url=env_str("DATABASE_URL", DEFAULT_DATABASE_URL, environ),
            db_pool_size=env_int("DB_POOL_SIZE", cls.db_pool_size, environ, minimum=1),
            db_max_overflow=env_int("DB_MAX_OVERFLOW", cls.db_max_overflow, environ, minimum=0),
            user_service_url=env_str("USER_SERVICE_URL", cls.user_service_url, environ).rstrip("/"),
            user_service_timeout=env_float("USER_SERVICE_TIMEOUT", cls.user_service_timeout, environ, minimum=0.1),
            user_cache_seconds=env_float("USER_CACHE_SECONDS", cls.user_cache_seconds, environ, minimum=0),
            kafka_bootstrap_servers=env_str("KAFKA_BOOTSTRAP_SERVERS", cls.kafka_bootstrap_servers, environ),
            bookings_topic=env_str("BOOKINGS_TOPIC", cls.bookings_topic, environ),
            outbox_relay=env_choice("OUTBOX_RELAY", cls.outbox_relay, ("off", "embedded"), environ),
            relay_batch_size=env_int("RELAY_BATCH_SIZE", cls.relay_batch_size, environ, minimum=1, maximum=10000),
            relay_poll_interval=env_float("RELAY_POLL_INTERVAL", cls.relay_poll_interval, environ, minimum=0.01),
            relay_metrics_port=env_int("RELAY_METRICS_PORT", 0, environ, minimum=0, maximum=65535),
            relay_stall_seconds=env_float("RELAY_STALL_SECONDS", cls.relay_stall_seconds, environ, minimum=1),
            relay_heartbeat_seconds=env_float("RELAY_HEARTBEAT_SECONDS", cls.relay_heartbeat_seconds, environ, minimum=0),
            outbox_retention_hours=env_int("OUTBOX_RETENTION_HOURS", cls.outbox_retention_hours, environ, minimum=1),
            max_content_length=env_int("MAX_CONTENT_LENGTH", cls.max_content_length, environ, minimum=1024),
            log_level=env_str("LOG_LEVEL", cls.log_level, environ),
        )
