"""booking-service against the real PostgreSQL and Kafka (and user-service on moto), through HTTP."""
from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from tests.services.conftest import consume


def _book(url: str, user_id: str, event_id: int, n: int = 1, session: requests.Session | None = None):
    return (session or requests).post(url + "/bookings",
                                      json={"user_id": user_id, "event_id": event_id, "ticket_count": n}, timeout=60)


def _stock(db, event_id: int) -> int:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT tickets_available FROM event WHERE event_id = :e"), {"e": event_id}).scalar_one()


def test_booking_reserves_stock_and_publishes_the_message(services, db, make_event, new_user):
    event_id = make_event(tickets=20, price=30)
    user = new_user()
    response = _book(services.booking.url, user["user_id"], event_id, 3)
    assert response.status_code == 201, response.text
    booking = response.json()
    assert booking["status"] == "confirmed"
    assert booking["ticket_count"] == 3 and booking["total_price"] == 90.0 and booking["tickets_remaining"] == 17
    uuid.UUID(booking["booking_id"])
    assert _stock(db, event_id) == 17

    got = requests.get(f"{services.booking.url}/bookings/{booking['booking_id']}", timeout=10)
    assert got.status_code == 200 and got.json()["event_id"] == event_id

    messages = consume(services.bootstrap_servers, services.bookings_topic, until=lambda m: len(m) >= 1,
                       key_filter=lambda m: m["event_id"] == event_id, timeout=30)
    assert len(messages) == 1
    msg = messages[0]
    assert {k: v for k, v in msg.items() if not k.startswith("_")}.keys() == {
        "event_id", "user_id", "ticket_count", "timestamp", "booking_id"}
    assert msg["_key"] == str(event_id)
    assert msg["booking_id"] == booking["booking_id"] and msg["user_id"] == user["user_id"]
    assert msg["ticket_count"] == 3
    # timestamp: epoch milliseconds (UTC) of the booking
    assert isinstance(msg["timestamp"], int) and abs(msg["timestamp"] / 1000 - time.time()) < 120
    # marked published right after the broker's ack (the consumer may see the message first)
    deadline = time.monotonic() + 10
    while True:
        with db.connect() as conn:
            published = conn.execute(sa.text("SELECT published_at IS NOT NULL FROM booking_outbox WHERE booking_id = :b"),
                                     {"b": booking["booking_id"]}).scalar_one()
        if published or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert published


def test_unknown_user_or_event_is_404_and_sold_out_is_409(services, db, make_event, new_user):
    event_id = make_event(tickets=2)
    user = new_user()
    unknown_user = _book(services.booking.url, str(uuid.uuid4()), event_id)
    assert unknown_user.status_code == 404 and "unknown user" in unknown_user.json()["error"]
    unknown_event = _book(services.booking.url, user["user_id"], 2_000_000_000)
    assert unknown_event.status_code == 404 and "unknown event" in unknown_event.json()["error"]
    too_many = _book(services.booking.url, user["user_id"], event_id, 3)
    assert too_many.status_code == 409
    assert too_many.json() == {"error": "only 2 tickets left", "tickets_available": 2}
    assert _book(services.booking.url, user["user_id"], event_id, 2).status_code == 201
    sold_out = _book(services.booking.url, user["user_id"], event_id, 1)
    assert sold_out.status_code == 409 and sold_out.json()["error"] == "sold out"
    assert _stock(db, event_id) == 0


def test_user_bookings_newest_first(services, make_event, new_user):
    user, other = new_user(), new_user()
    e1, e2 = make_event(tickets=10), make_event(tickets=10)
    b1 = _book(services.booking.url, user["user_id"], e1, 1).json()
    b2 = _book(services.booking.url, user["user_id"], e2, 2).json()
    _book(services.booking.url, other["user_id"], e1, 1)
    listed = requests.get(f"{services.booking.url}/users/{user['user_id']}/bookings", timeout=10)
    assert listed.status_code == 200
    body = listed.json()
    assert [b["booking_id"] for b in body] == [b2["booking_id"], b1["booking_id"]]
    assert body[0]["event"]["name"].startswith("Test Event")
    empty = requests.get(f"{services.booking.url}/users/{new_user()['user_id']}/bookings", timeout=10)
    assert empty.status_code == 200 and empty.json() == []
    unknown = requests.get(f"{services.booking.url}/users/{uuid.uuid4()}/bookings", timeout=10)
    assert unknown.status_code == 404


def test_200_concurrent_attempts_for_50_tickets(services, db, make_event, new_user):
    """Exactly 50 succeed, 150 get 409, stock ends at 0, exactly 50 messages reach the topic."""
    event_id = make_event(tickets=50, capacity=500)
    users = [new_user()["user_id"] for _ in range(20)]

    def attempt(i: int) -> int:
        return _book(services.booking.url, users[i % len(users)], event_id, 1).status_code

    with ThreadPoolExecutor(max_workers=200) as pool:
        codes = list(pool.map(attempt, range(200)))
    counts = Counter(codes)
    assert counts == {201: 50, 409: 150}, counts
    assert _stock(db, event_id) == 0
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*), coalesce(sum(ticket_count), 0) FROM booking WHERE event_id = :e"),
                            {"e": event_id}).one()
    assert tuple(rows) == (50, 50)

    messages = consume(services.bootstrap_servers, services.bookings_topic, until=lambda m: len(m) >= 50,
                       key_filter=lambda m: m["event_id"] == event_id, timeout=60, settle=3)
    assert len(messages) == 50
    assert len({m["booking_id"] for m in messages}) == 50
    assert {m["_partition"] for m in messages} and len({m["_partition"] for m in messages}) == 1  # one key


def test_kafka_outage_bookings_succeed_and_are_published_once_when_it_returns(services, db, kafka, make_event, new_user):
    event_id = make_event(tickets=1000)
    users = [new_user()["user_id"] for _ in range(5)]
    booking_ids: list[str] = []
    with kafka.outage():
        assert not kafka.is_running()
        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(lambda i: _book(services.booking.url, users[i % 5], event_id, 1), range(100)))
        assert Counter(r.status_code for r in responses) == {201: 100}
        booking_ids = [r.json()["booking_id"] for r in responses]
        with db.connect() as conn:
            pending = conn.execute(sa.text(
                "SELECT count(*) FROM booking_outbox WHERE published_at IS NULL AND booking_id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": booking_ids}).scalar_one()
        assert pending == 100  # held in the outbox while Kafka is away
    # Kafka is back: every message arrives, none twice.
    messages = consume(services.bootstrap_servers, services.bookings_topic, until=lambda m: len(m) >= 100,
                       key_filter=lambda m: m["event_id"] == event_id, timeout=180, settle=5)
    per_booking = Counter(m["booking_id"] for m in messages)
    assert set(per_booking) == set(booking_ids)
    assert max(per_booking.values()) == 1, [b for b, n in per_booking.items() if n > 1]
    assert _stock(db, event_id) == 900


def test_ready_reports_the_outbox(services):
    ready = requests.get(services.booking.url + "/ready", timeout=10)
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["postgres"]["ok"] and "outbox_pending" in checks["postgres"]
    assert checks["user-service"]["ok"]


def test_user_service_down_is_503_naming_it(service_env, migrated, make_event):
    import booking_service
    from tests.services.conftest import serve

    live = serve("booking-no-users", booking_service.create_app({"user_service_url": "http://127.0.0.1:9",
                                                                 "user_cache_seconds": 0}))
    try:
        response = _book(live.url, str(uuid.uuid4()), make_event(tickets=5))
        assert response.status_code == 503
        assert response.json() == {"error": "user-service unavailable", "service": "user-service"}
    finally:
        live.stop()
