"""The body of every service's Alembic ``env.py``: online migrations on the connection the
service's ``migrate`` command hands over (inside its advisory lock and transaction)."""
from __future__ import annotations


def run() -> None:
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with the service's migrate command (python -m <service>.migrate)")
    context.configure(connection=connection, target_metadata=None,
                      version_table=config.attributes["version_table"])
    with context.begin_transaction():
        context.run_migrations()
