from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, request
from prometheus_client import Counter

from frontend.analytics import AnalyticsFeed
from frontend.api import STATIC_DIR, bp
from frontend.config import Config
from frontend.gateway import Backend
from frontend.tickets import TicketStore
from ticketing_common.app import add_readiness_check, create_base_app
from ticketing_common.config import resolve

log = logging.getLogger("frontend")


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    cfg = resolve(Config, config)
    # The app-wide limit is the upload limit (plus multipart overhead); JSON routes get a smaller one.
    app = create_base_app("frontend", __name__, max_content_length=cfg.max_upload_bytes + 64 * 1024,
                          log_level=cfg.log_level, static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config["FRONTEND"] = cfg
    app.config["MAX_FORM_MEMORY_SIZE"] = 64 * 1024
    app.extensions["backends"] = {
        name: Backend(name, url, cfg.backend_connect_timeout, cfg.backend_read_timeout)
        for name, url in cfg.backend_urls().items()
    }
    app.extensions["health_pool"] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
    store = TicketStore(cfg)
    app.extensions["ticket_store"] = store

    @app.before_request
    def _body_limit():
        if request.endpoint != "gateway.upload_ticket":
            request.max_content_length = cfg.json_body_limit

    app.register_blueprint(bp)
    add_readiness_check(app, "s3", store.check)
    if cfg.kafka_bootstrap_servers:
        received = Counter("analytics_results_received_total", "Analytics results read from the results topic",
                           registry=app.extensions["http_metrics"].registry)
        app.extensions["analytics_feed"] = AnalyticsFeed(cfg.kafka_bootstrap_servers, cfg.analytics_topic, received).start()
    try:
        store.ensure_bucket()
    except Exception as exc:  # noqa: BLE001
        log.warning("S3 bucket not ready at start-up; will retry", extra={"error": str(exc)[:200]})
    return app
