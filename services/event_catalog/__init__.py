"""event-catalog: the ``event`` table in PostgreSQL ``ticketdb`` (schema by Alembic, seeded on first start)."""
from event_catalog.app import create_app

__all__ = ["create_app"]
