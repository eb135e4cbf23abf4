"""Structured logs: one JSON object per line on stdout.

``{"ts": "...Z", "level": "info", "service": "booking-service", "logger": "...", "msg": "...", ...}``;
anything passed with ``extra=`` becomes a field, and the request id is added inside a request.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_process_service = "ticketing"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def _service(self) -> str:
        try:
            from flask import current_app, has_app_context
            if has_app_context():
                return current_app.config.get("SERVICE_NAME") or self.service or _process_service
        except Exception:  # pragma: no cover - never let logging raise
            pass
        return self.service or _process_service

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
                  + f"{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        try:
            from flask import g, has_request_context
            if has_request_context() and getattr(g, "request_id", None):
                data["request_id"] = g.request_id
        except Exception:  # pragma: no cover
            pass
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in data:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class _Marker(logging.StreamHandler):
    """Our stdout handler, so configure_logging can be called again without stacking handlers."""


def configure_logging(service: str, level: str = "INFO") -> None:
    global _process_service
    _process_service = service
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Marker):
            root.removeHandler(handler)
    handler = _Marker(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries: keep their warnings, drop their debug/info noise.
    for noisy in ("kafka", "botocore", "boto3", "urllib3", "werkzeug", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def monotonic_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
