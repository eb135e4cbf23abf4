from __future__ import annotations

from typing import Any

from flask import Flask

from event_catalog.api import bp
from event_catalog.config import Config
from event_catalog.repository import EventRepository
from ticketing_common.app import add_readiness_check, create_base_app
from ticketing_common.config import resolve
from ticketing_common.db import make_engine


def create_app(config: Config | dict[str, Any] | None = None) -> Flask:
    """The schema is not touched here: ``python -m event_catalog.migrate`` owns it."""
    cfg = resolve(Config, config)
    app = create_base_app("event-catalog", __name__, max_content_length=cfg.max_content_length,
                          log_level=cfg.log_level)
    app.config["EVENT_CATALOG"] = cfg
    engine = make_engine(cfg.database_url, pool_size=cfg.db_pool_size, max_overflow=cfg.db_max_overflow)
    repo = EventRepository(engine)
    app.extensions["event_repository"] = repo
    app.register_blueprint(bp)
    add_readiness_check(app, "postgres", repo.check)
    return app
