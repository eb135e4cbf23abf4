from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from ticketing_common.app import add_readiness_check, create_base_app
from ticketing_common.config import resolve
from user_service.api import bp
from user_service.config import Config
from user_service.store import UserStore

log = logging.getLogger("user_service")


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    cfg = resolve(Config, config)
    app = create_base_app("user-service", __name__, max_content_length=cfg.max_content_length,
                          log_level=cfg.log_level)
    app.config["USER_SERVICE"] = cfg
    store = UserStore(cfg)
    app.extensions["user_store"] = store
    app.register_blueprint(bp)
    add_readiness_check(app, "dynamodb", store.check)
    # Start-up: make sure the table exists. If DynamoDB is not reachable yet the service still starts;
    # /ready says so and the first request that needs the table retries.
    try:
        store.ensure_table()
    except Exception as exc:  # noqa: BLE001
        log.warning("DynamoDB table not ready at start-up; will retry", extra={"error": str(exc)[:200]})
    return app
