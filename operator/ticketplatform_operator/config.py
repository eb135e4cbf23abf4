"""The operator's own configuration: read from the environment once, at start (`ticketctl run`),
validated, and handed to the handlers through Kopf's memo. A bad value stops the operator at once
with a message naming the variable; nothing else reads the environment."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

REPO_DIR = Path(__file__).resolve().parents[2]


class ConfigError(ValueError):
    """The environment holds a value the operator cannot run with."""


class OperatorConfig(BaseModel):
    """Each field's alias is the environment variable that sets it."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    resync_seconds: float = Field(default=30.0, gt=0, le=3600, alias="TP_RESYNC_SECONDS",
                                  description="How often every platform is reconciled when nothing kicks it (level-based repair of drift).")
    reconcile_workers: int = Field(default=8, ge=1, le=256, alias="TP_RECONCILE_WORKERS",
                                   description="Threads that run reconciles (they block on Kubernetes, Kafka and the engines).")
    retry_base_seconds: float = Field(default=5.0, gt=0, le=3600, alias="TP_RETRY_BASE_SECONDS",
                                      description="First back-off after a step fails; it doubles at each further failure.")
    retry_cap_seconds: float = Field(default=300.0, gt=0, le=86400, alias="TP_RETRY_CAP_SECONDS",
                                     description="Longest back-off between two attempts of a failing step.")
    metrics_port: int = Field(default=0, ge=0, le=65535, alias="OPERATOR_METRICS_PORT",
                              description="Port of the operator's Prometheus /metrics; 0 turns it off.")
    metrics_addr: str = Field(default="0.0.0.0", alias="OPERATOR_METRICS_ADDR", description="Address /metrics listens on.")
    dataproc_endpoint: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+:[0-9]{1,5}$", alias="TP_DATAPROC_ENDPOINT",
                                          description="host:port of a plaintext endpoint speaking the Dataproc API (tests); unset: Google's.")
    run_dir: Path = Field(default=REPO_DIR / ".run", alias="TP_RUN_DIR",
                          description="Where the operator writes files: the local analytics engine's job folders under analytics/.")
    cache_dir: Path = Field(default=REPO_DIR / ".cache", alias="TP_CACHE_DIR",
                            description="The project's build cache, where the Flink Kafka connector jar is looked for.")
    flink_python: Path | None = Field(default=None, alias="FLINK_PYTHON",
                                      description="Python with PyFlink for the local engine; unset: .venv-flink in the repository.")
    flink_kafka_connector_jar: Path | None = Field(default=None, alias="FLINK_KAFKA_CONNECTOR_JAR",
                                                   description="The Flink Kafka connector jar for the local engine; unset: the one in cache_dir.")

    @field_validator("metrics_addr")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        ipaddress.ip_address(value)  # ValueError names the bad address
        return value

    @field_validator("dataproc_endpoint", "flink_python", "flink_kafka_connector_jar", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "OperatorConfig":
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        try:
            return cls.model_validate({k: v for k, v in environ.items() if k in names})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                var = str(err["loc"][0]) if err["loc"] else "?"
                problems.append(f"{var}={environ.get(var)!r}: {err['msg']}")
            raise ConfigError("invalid operator configuration: " + "; ".join(problems)) from None

    def local_engine_settings(self) -> dict[str, Any]:
        """Keyword arguments of the local analytics engine (analytics/local.py)."""
        return {"run_dir": self.run_dir / "analytics",
                "python": str(self.flink_python) if self.flink_python else None,
                "connector_jar": str(self.flink_kafka_connector_jar) if self.flink_kafka_connector_jar else None,
                "cache_dir": self.cache_dir}
