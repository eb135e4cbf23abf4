from __future__ import annotations

import atexit
from typing import Any

from flask import Flask

from booking_service.api import bp
from booking_service.config import Config
from booking_service.repository import BookingRepository
from booking_service.users import UserDirectory
from ticketing_common.app import add_readiness_check, create_base_app
from ticketing_common.config import resolve
from ticketing_common.db import make_engine


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """The schema is not touched here: ``python -m booking_service.migrate`` owns it."""
    cfg = resolve(Config, config)
    app = create_base_app("booking-service", __name__, max_content_length=cfg.max_content_length,
                          log_level=cfg.log_level)
    app.config["BOOKING_SERVICE"] = cfg
    engine = make_engine(cfg.database_url, pool_size=cfg.db_pool_size, max_overflow=cfg.db_max_overflow)
    repo = BookingRepository(engine, cfg.bookings_topic)
    users = UserDirectory(cfg.user_service_url, cfg.user_service_timeout, cfg.user_cache_seconds)
    app.extensions["booking_repository"] = repo
    app.extensions["user_directory"] = users
    app.register_blueprint(bp)
    add_readiness_check(app, "postgres", repo.check)
    add_readiness_check(app, "user-service", users.check, required=False)
    if cfg.outbox_relay == "embedded":
        from booking_service.relay import relay_from_config

        relay = relay_from_config(cfg).start()
        app.extensions["outbox_relay"] = relay
        atexit.register(relay.stop)
    return app
