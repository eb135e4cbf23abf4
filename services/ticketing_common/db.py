"""PostgreSQL helpers shared by event-catalog and booking-service (SQLAlchemy 2, psycopg 3)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

log = logging.getLogger("ticketing.db")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20, pool_timeout: float = 10.0,
                statement_timeout_ms: int = 10000) -> Engine:
    """An engine with a bounded pool, pre-ping, short connect timeout and a statement timeout."""
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5,
                      "options": f"-c statement_timeout={statement_timeout_ms}",
                      "application_name": "ticketplatform"},
    )


def ping(engine: Engine) -> dict:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {}


def ensure_database(url: str | URL) -> None:
    """Create the database named in ``url`` when it does not exist (needs CREATEDB on the role)."""
    target = make_url(url)
    name = target.database
    admin = target.set(database="postgres")
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                log.info("creating database", extra={"database": name})
                try:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                except sa.exc.ProgrammingError as exc:  # created concurrently by another replica
                    if "already exists" not in str(exc):
                        raise
    finally:
        engine.dispose()


def wait_for_database(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            ensure_database(url)
            engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
            try:
                ping(engine)
            finally:
                engine.dispose()
            return
        except sa.exc.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("database not reachable yet, retrying", extra={"error": str(exc).splitlines()[0]})
            time.sleep(1.0)


def run_alembic_upgrade(conn: sa.Connection, script_location: Path, version_table: str,
                        revision: str = "head") -> None:
    """Run an Alembic upgrade on an open connection (inside the caller's transaction)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = conn
    cfg.attributes["version_table"] = version_table
    command.upgrade(cfg, revision)


def current_revision(conn: sa.Connection, version_table: str) -> str | None:
    exists = conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": version_table}).scalar()
    if not exists:
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {version_table}")).scalar()


def migration_main(service: str, config_cls: Any, migrate: Callable[[Any], Any]) -> int:
    """The `python -m <service>.migrate` entry point: config from the environment, JSON logs,
    exit status 1 (with the error logged) when the migration fails."""
    from ticketing_common.jsonlog import configure_logging

    cfg = config_cls.from_env()
    configure_logging(service, cfg.log_level)
    try:
        migrate(cfg)
    except Exception:
        logging.getLogger(f"{service}.migrate").exception("migration failed")
        return 1
    return 0
