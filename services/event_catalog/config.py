from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketing_common.config import env_bool, env_int, env_str

DEFAULT_DATABASE_URL = "postgresql+psycopg://ticket:ticket@127.0.0.1:15432/ticketdb"


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = 5
    db_max_overflow: int = 10
    seed_on_migrate: bool = True     # seed the catalog when the event table is empty
    max_content_length: int = 16 * 1024
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        return cls(
            database_url=env_str("DATABASE_URL", DEFAULT_DATABASE_URL, environ),
            db_pool_size=env_int("DB_POOL_SIZE", cls.db_pool_size, environ, minimum=1),
            db_max_overflow=env_int("DB_MAX_OVERFLOW", cls.db_max_overflow, environ, minimum=0),
            seed_on_migrate=env_bool("CATALOG_SEED", True, environ),
            max_content_length=env_int("MAX_CONTENT_LENGTH", cls.max_content_length, environ, minimum=1024),
            log_level=env_str("LOG_LEVEL", cls.log_level, environ),
        )
