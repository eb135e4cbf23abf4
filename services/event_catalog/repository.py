"""Queries on the ``event`` table (SQLAlchemy Core; the schema belongs to the Alembic migration)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()
event_table = sa.Table(
    "event", metadata,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String), sa.Column("description", sa.Text), sa.Column("category", sa.String),
    sa.Column("venue", sa.String), sa.Column("city", sa.String),
    sa.Column("date", sa.DateTime(timezone=True)), sa.Column("price", sa.Numeric(10, 2)),
    sa.Column("currency", sa.String), sa.Column("capacity", sa.Integer),
    sa.Column("tickets_available", sa.Integer),
)

SORTS = {
    "date": (event_table.c.date.asc(),),
    "-date": (event_table.c.date.desc(),),
    "price": (event_table.c.price.asc(),),
    "-price": (event_table.c.price.desc(),),
    "name": (event_table.c.name.asc(),),
    "-name": (event_table.c.name.desc(),),
    "tickets_available": (event_table.c.tickets_available.asc(),),
    "-tickets_available": (event_table.c.tickets_available.desc(),),
}


def iso_utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_json(row: Any) -> dict[str, Any]:
    m = row._mapping
    price = m["price"]
    return {
        "event_id": m["event_id"],
        "id": m["event_id"],
        "name": m["name"],
        "description": m["description"],
        "category": m["category"],
        "venue": m["venue"],
        "city": m["city"],
        "date": iso_utc(m["date"]),
        "price": float(price) if isinstance(price, Decimal) else price,
        "currency": m["currency"],
        "capacity": m["capacity"],
        "tickets_available": m["tickets_available"],
        "sold_out": m["tickets_available"] <= 0,
    }


@dataclass
class EventFilter:
    venue: str | None = None
    city: str | None = None
    category: str | None = None
    q: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None       # exclusive upper bound
    available_only: bool = False
    sort: str = "date"
    limit: int = 100
    offset: int = 0


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class EventRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self, f: EventFilter) -> tuple[list[dict[str, Any]], int]:
        conds = []
        c = event_table.c
        if f.venue:
            conds.append(sa.func.lower(c.venue) == f.venue.lower())
        if f.city:
            conds.append(sa.func.lower(c.city) == f.city.lower())
        if f.category:
            conds.append(sa.func.lower(c.category) == f.category.lower())
        if f.q:
            conds.append(c.name.ilike(f"%{_escape_like(f.q)}%", escape="\\"))
        if f.date_from:
            conds.append(c.date >= f.date_from)
        if f.date_to:
            conds.append(c.date < f.date_to)
        if f.available_only:
            conds.append(c.tickets_available > 0)
        where = sa.and_(sa.true(), *conds)
        query = (sa.select(event_table).where(where).order_by(*SORTS[f.sort], c.event_id.asc())
                 .limit(f.limit).offset(f.offset))
        with self.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
            total = conn.execute(sa.select(sa.func.count()).select_from(event_table).where(where)).scalar_one()
        return [event_json(r) for r in rows], total

    def get(self, event_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(event_table).where(event_table.c.event_id == event_id)).first()
        return event_json(row) if row else None

    def check(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one()
        return {"events": count}
