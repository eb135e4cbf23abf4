"""The base every service's ``create_app`` starts from."""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, g, jsonify, request

from ticketing_common.errors import register_error_handlers
from ticketing_common.jsonlog import configure_logging
from ticketing_common.metrics import init_metrics, route_label

access_log = logging.getLogger("ticketing.access")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET_PATHS = {"/health", "/ready", "/metrics"}

ReadinessCheck = Callable[[], Any]


def create_base_app(service_name: str, import_name: str, *, max_content_length: int,
                    log_level: str = "INFO", **flask_kwargs: Any) -> Flask:
    configure_logging(service_name, log_level)
    app = Flask(import_name, **flask_kwargs)
    app.config.update(SERVICE_NAME=service_name, MAX_CONTENT_LENGTH=max_content_length)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    register_error_handlers(app)
    init_metrics(app)
    app.extensions["readiness_checks"] = []

    @app.before_request
    def _request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        g._access_start = time.perf_counter()

    @app.after_request
    def _access(response):
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        start = getattr(g, "_access_start", None)
        duration_ms = round((time.perf_counter() - start) * 1000, 2) if start else None
        level = logging.DEBUG if request.path in _QUIET_PATHS and response.status_code < 400 else logging.INFO
        access_log.log(level, "%s %s %s", request.method, request.path, response.status_code,
                       extra={"method": request.method, "path": request.path, "route": route_label(),
                              "status": response.status_code, "duration_ms": duration_ms,
                              "remote_addr": request.remote_addr})
        return response

    @app.get("/health")
    def health():
        """Liveness: the process answers. Dependencies are /ready's business."""
        return jsonify({"status": "ok", "service": service_name})

    @app.get("/ready")
    def ready():
        """Readiness: every required dependency answers."""
        checks: dict[str, Any] = {}
        all_ok = True
        for name, check, required in app.extensions["readiness_checks"]:
            start = time.perf_counter()
            try:
                detail = check()
                entry: dict[str, Any] = {"ok": True}
                if isinstance(detail, dict):
                    entry.update(detail)
            except Exception as exc:  # a failed dependency is an answer, not a crash
                entry = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                if required:
                    all_ok = False
            entry["required"] = required
            entry["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
            checks[name] = entry
        body = {"status": "ready" if all_ok else "not ready", "service": service_name, "checks": checks}
        return jsonify(body), (200 if all_ok else 503)

    return app


def add_readiness_check(app: Flask, name: str, check: ReadinessCheck, *, required: bool = True) -> None:
    """Register a dependency check for /ready; it raises (or returns normally) within a short timeout."""
    app.extensions["readiness_checks"].append((name, check, required))
