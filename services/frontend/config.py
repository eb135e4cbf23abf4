from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketing_common.config import env_bool, env_float, env_int, env_str

# The backends the gateway forwards to (the operator's table of services names the same ones for
# the frontend). Each one's base URL is the field <name>_url, read from <NAME>_URL; the defaults are
# the local stack's ports.
BACKENDS = ("user-service", "event-catalog", "booking-service")


def _field(backend: str) -> str:
    return backend.replace("-", "_") + "_url"


def _variable(backend: str) -> str:
    return backend.upper().replace("-", "_") + "_URL"


@dataclass(frozen=True)
class Config:
    user_service_url: str = "http://127.0.0.1:18081"
    event_catalog_url: str = "http://127.0.0.1:18082"
    booking_service_url: str = "http://127.0.0.1:18083"
    backend_connect_timeout: float = 2.0
    backend_read_timeout: float = 15.0
    health_timeout: float = 2.0
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    tickets_bucket: str = "ticket-platform-uploads"
    create_bucket: bool = True
    max_upload_bytes: int = 5 * 1024 * 1024
    json_body_limit: int = 64 * 1024
    kafka_bootstrap_servers: str | None = None   # unset: /api/analytics answers []
    analytics_topic: str = "analytics-results"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        return cls(
            **{_field(b): env_str(_variable(b), getattr(cls, _field(b)), environ).rstrip("/") for b in BACKENDS},
            backend_connect_timeout=env_float("BACKEND_CONNECT_TIMEOUT", cls.backend_connect_timeout, environ, minimum=0.05),
            backend_read_timeout=env_float("BACKEND_READ_TIMEOUT", cls.backend_read_timeout, environ, minimum=0.1),
            health_timeout=env_float("HEALTH_TIMEOUT", cls.health_timeout, environ, minimum=0.1),
            aws_region=env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", cls.aws_region, environ), environ),
            aws_endpoint_url=env_str("AWS_ENDPOINT_URL_S3", env_str("AWS_ENDPOINT_URL", None, environ), environ),
            tickets_bucket=env_str("TICKETS_BUCKET", cls.tickets_bucket, environ),
            create_bucket=env_bool("TICKETS_BUCKET_AUTO_CREATE", True, environ),
            max_upload_bytes=env_int("MAX_UPLOAD_BYTES", cls.max_upload_bytes, environ, minimum=1024),
            json_body_limit=env_int("MAX_CONTENT_LENGTH", cls.json_body_limit, environ, minimum=1024),
            kafka_bootstrap_servers=env_str("KAFKA_BOOTSTRAP_SERVERS", None, environ),
            analytics_topic=env_str("ANALYTICS_TOPIC", cls.analytics_topic, environ),
            log_level=env_str("LOG_LEVEL", cls.log_level, environ),
        )

    def backend_urls(self) -> dict[str, str]:
        """Base URL of each backend, by service name."""
        return {b: getattr(self, _field(b)) for b in BACKENDS}
