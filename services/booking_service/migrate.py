"""``python -m booking_service.migrate``: the ``booking`` and ``booking_outbox`` tables.

booking-service owns these two tables and its own Alembic version table
(``alembic_version_booking``); event-catalog owns ``event`` (``alembic_version_event_catalog``).
The booking table references ``event``, so this waits until event-catalog's migration has run.
Both migrations take the same advisory lock, so they never run at the same moment.
"""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from booking_service.config import Config
from ticketing_common.db import migration_main, run_alembic_upgrade, wait_for_database

log = logging.getLogger("booking_service.migrate")

VERSION_TABLE = "alembic_version_booking"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_ID = 0x7469636B  # shared with event_catalog.migrate


def migrate(config: Config | None = None, *, wait_seconds: float = 120.0) -> None:
    cfg = config or Config.from_env()
    wait_for_database(cfg.database_url, timeout=wait_seconds)
    engine = sa.create_engine(cfg.database_url, connect_args={"connect_timeout": 5})
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            with engine.connect() as conn:
                if conn.execute(sa.text("SELECT to_regclass('public.event')")).scalar():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("table event does not exist: run event-catalog's migration first "
                                   "(python -m event_catalog.migrate)")
            log.info("waiting for event-catalog's migration (table event)")
            time.sleep(1.0)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_ID})
            run_alembic_upgrade(conn, MIGRATIONS, VERSION_TABLE)
        log.info("booking-service schema up to date")
    finally:
        engine.dispose()


def main() -> int:
    return migration_main("booking-service", Config, migrate)


if __name__ == "__main__":
    sys.exit(main())
