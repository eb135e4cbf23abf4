from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketing_common.config import env_bool, env_int, env_str


@dataclass(frozen=True)
class Config:
    table_name: str = "ticket-booking-users"
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None      # moto locally; unset on AWS
    create_table: bool = True                # create the table at start-up when it is missing
    max_content_length: int = 16 * 1024
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        return cls(
            table_name=env_str("USERS_TABLE", cls.table_name, environ),
            aws_region=env_str("AWS_REGION", env_str("AWS_DEFAULT_REGION", cls.aws_region, environ), environ),
            aws_endpoint_url=env_str("AWS_ENDPOINT_URL_DYNAMODB", env_str("AWS_ENDPOINT_URL", None, environ), environ),
            create_table=env_bool("USERS_TABLE_AUTO_CREATE", True, environ),
            max_content_length=env_int("MAX_CONTENT_LENGTH", cls.max_content_length, environ, minimum=1024),
            log_level=env_str("LOG_LEVEL", cls.log_level, environ),
        )
