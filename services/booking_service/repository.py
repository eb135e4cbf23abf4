"""Bookings in PostgreSQL: the inventory reservation, the booking row and its outbox message are
one transaction."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

RESERVE = sa.text("""
    UPDATE event
       SET tickets_available = tickets_available - :n, updated_at = now()
     WHERE event_id = :event_id AND tickets_available >= :n
 RETURNING name, venue, date, price, currency, tickets_available
""")
EVENT_STOCK = sa.text("SELECT tickets_available FROM event WHERE event_id = :event_id")
INSERT_BOOKING = sa.text("""
    INSERT INTO booking (booking_id, user_id, event_id, ticket_count, unit_price, total_price, currency, status, created_at)
    VALUES (:booking_id, :user_id, :event_id, :ticket_count, :unit_price, :total_price, :currency, 'confirmed', :created_at)
""")
INSERT_OUTBOX = sa.text("""
    INSERT INTO booking_outbox (booking_id, topic, message_key, payload)
    VALUES (:booking_id, :topic, :message_key, CAST(:payload AS jsonb))
""")
SELECT_BOOKINGS = """
    SELECT b.booking_id, b.user_id, b.event_id, b.ticket_count, b.unit_price, b.total_price, b.currency,
           b.status, b.created_at, e.name AS event_name, e.venue AS event_venue, e.date AS event_date
      FROM booking b LEFT JOIN event e ON e.event_id = b.event_id
"""


class UnknownEvent(Exception):
    pass


@dataclass
class SoldOut(Exception):
    tickets_available: int


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def iso_utc(value: datetime, millis: bool = True) -> str:
    value = value.astimezone(timezone.utc)
    if millis:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(value: Any) -> float:
    return float(value) if isinstance(value, Decimal) else value


def booking_message(booking_id: str, user_id: str, event_id: int, ticket_count: int, created_at: datetime) -> dict:
    """The ``ticket-bookings`` message. ``timestamp`` is the booking time in epoch milliseconds (UTC),
    the event time the analytics job windows on."""
    return {"event_id": event_id, "user_id": user_id, "ticket_count": ticket_count,
            "timestamp": epoch_ms(created_at), "booking_id": booking_id}


def _booking_json(m: Any) -> dict[str, Any]:
    out = {
        "booking_id": str(m["booking_id"]),
        "status": m["status"],
        "user_id": m["user_id"],
        "event_id": m["event_id"],
        "ticket_count": m["ticket_count"],
        "unit_price": _money(m["unit_price"]),
        "total_price": _money(m["total_price"]),
        "currency": m["currency"],
        "created_at": iso_utc(m["created_at"]),
    }
    if "event_name" in m and m["event_name"] is not None:
        out["event"] = {"name": m["event_name"], "venue": m["event_venue"], "date": iso_utc(m["event_date"], False)}
    return out


class BookingRepository:
    def __init__(self, engine: Engine, topic: str) -> None:
        self.engine = engine
        self.topic = topic

    def book(self, user_id: str, event_id: int, ticket_count: int) -> dict[str, Any]:
        booking_id = str(uuid.uuid4())
        created_at = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            # The conditional UPDATE is the reservation: the row lock serialises racing bookings and
            # the WHERE clause refuses any that would take the stock below zero.
            event = conn.execute(RESERVE, {"n": ticket_count, "event_id": event_id}).first()
            if event is None:
                stock = conn.execute(EVENT_STOCK, {"event_id": event_id}).scalar()
                if stock is None:
                    raise UnknownEvent(event_id)
                raise SoldOut(int(stock))
            e = event._mapping
            unit_price = e["price"]
            total = unit_price * ticket_count
            conn.execute(INSERT_BOOKING, {
                "booking_id": booking_id, "user_id": user_id, "event_id": event_id,
                "ticket_count": ticket_count, "unit_price": unit_price, "total_price": total,
                "currency": e["currency"], "created_at": created_at,
            })
            message = booking_message(booking_id, user_id, event_id, ticket_count, created_at)
            conn.execute(INSERT_OUTBOX, {"booking_id": booking_id, "topic": self.topic,
                                         "message_key": str(event_id), "payload": json.dumps(message)})
        return {
            "booking_id": booking_id, "status": "confirmed", "user_id": user_id, "event_id": event_id,
            "ticket_count": ticket_count, "unit_price": _money(unit_price), "total_price": _money(total),
            "currency": e["currency"], "created_at": iso_utc(created_at),
            "tickets_remaining": e["tickets_available"],
            "event": {"name": e["name"], "venue": e["venue"], "date": iso_utc(e["date"], False)},
        }

    def get(self, booking_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.text(SELECT_BOOKINGS + " WHERE b.booking_id = :id"), {"id": booking_id}).first()
        return _booking_json(row._mapping) if row else None

    def for_user(self, user_id: str, limit: int = 200) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(SELECT_BOOKINGS + " WHERE b.user_id = :u ORDER BY b.created_at DESC LIMIT :l"),
                                {"u": user_id, "l": limit}).fetchall()
        return [_booking_json(r._mapping) for r in rows]

    def check(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            pending, oldest = conn.execute(sa.text(
                "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at)) FROM booking_outbox "
                "WHERE published_at IS NULL")).one()
        return {"outbox_pending": pending, "outbox_oldest_seconds": round(float(oldest or 0), 1)}
