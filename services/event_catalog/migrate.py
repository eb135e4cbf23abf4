"""``python -m event_catalog.migrate``: create the database if needed, run the Alembic migrations of
the ``event`` table and seed the catalog on first start.

Safe to run from several replicas at once: everything happens in one transaction under a
PostgreSQL advisory lock. It is the start-up command before gunicorn (Procfile, Dockerfile).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import sqlalchemy as sa

from event_catalog.config import Config
from event_catalog.seed import seed_if_empty
from ticketing_common.db import migration_main, run_alembic_upgrade, wait_for_database

log = logging.getLogger("event_catalog.migrate")

VERSION_TABLE = "alembic_version_event_catalog"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_ID = 0x7469636B  # one advisory lock for every schema change in ticketdb ("tick")


def migrate(config: Config | None = None, *, seed: bool | None = None, wait_seconds: float = 60.0) -> int:
    cfg = config or Config.from_env()
    wait_for_database(cfg.database_url, timeout=wait_seconds)
    engine = sa.create_engine(cfg.database_url, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_ID})
            run_alembic_upgrade(conn, MIGRATIONS, VERSION_TABLE)
            inserted = seed_if_empty(conn) if (cfg.seed_on_migrate if seed is None else seed) else 0
        log.info("event-catalog schema up to date", extra={"seeded_events": inserted})
        return inserted
    finally:
        engine.dispose()


def main() -> int:
    return migration_main("event-catalog", Config, migrate)


if __name__ == "__main__":
    sys.exit(main())
