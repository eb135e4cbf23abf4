"""The outbox relay: several relays at once never send a row twice and keep per-event order; the
embedded mode (OUTBOX_RELAY=embedded) publishes too."""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from booking_service.config import Config as BookingConfig
from booking_service.relay import RelayMetrics, relay_from_config
from tests.services.conftest import consume, serve
from ticketing_common.config import resolve


@pytest.fixture
def without_session_relay(services):
    """Stop the session's relay for one test, start a fresh one afterwards."""
    services.relay.stop()
    yield
    cfg = resolve(BookingConfig, {"bookings_topic": services.bookings_topic, "relay_poll_interval": 0.1})
    services.relay = relay_from_config(cfg).start()


def test_three_relays_publish_each_row_once_in_order(services, db, make_event, new_user, without_session_relay):
    cfg = resolve(BookingConfig, {"bookings_topic": services.bookings_topic, "relay_poll_interval": 0.05,
                                  "relay_batch_size": 7})
    metrics = [RelayMetrics() for _ in range(3)]
    relays = [relay_from_config(cfg, m).start() for m in metrics]
    try:
        events = [make_event(tickets=500), make_event(tickets=500)]
        users = [new_user()["user_id"] for _ in range(5)]

        def book(i: int) -> str:
            r = requests.post(services.booking.url + "/bookings", json={
                "user_id": users[i % 5], "event_id": events[i % 2], "ticket_count": 1}, timeout=30)
            assert r.status_code == 201, r.text
            return r.json()["booking_id"]

        with ThreadPoolExecutor(30) as pool:
            booking_ids = list(pool.map(book, range(150)))
        messages = consume(services.bootstrap_servers, services.bookings_topic, until=lambda m: len(m) >= 150,
                           key_filter=lambda m: m["event_id"] in events, timeout=90, settle=3)
    finally:
        for r in relays:
            r.stop()
    per_booking = Counter(m["booking_id"] for m in messages)
    assert set(per_booking) == set(booking_ids) and max(per_booking.values()) == 1
    assert sum(m.published._value.get() for m in metrics) == 150  # noqa: SLF001
    # per event, the topic holds the messages in outbox (commit) order
    with db.connect() as conn:
        order = {str(b): i for b, i in conn.execute(sa.text(
            "SELECT booking_id, id FROM booking_outbox WHERE booking_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": booking_ids})}
    for event_id in events:
        seq = [order[m["booking_id"]] for m in messages if m["event_id"] == event_id]
        assert seq == sorted(seq), event_id


def test_embedded_relay_publishes(service_env, services, make_event, new_user, without_session_relay):
    import booking_service

    app = booking_service.create_app({"user_service_url": services.user.url, "outbox_relay": "embedded",
                                      "bookings_topic": services.bookings_topic, "relay_poll_interval": 0.05})
    live = serve("booking-embedded-relay", app)
    try:
        event_id = make_event(tickets=10)
        user = new_user()
        r = requests.post(live.url + "/bookings", json={"user_id": user["user_id"], "event_id": event_id,
                                                        "ticket_count": 4}, timeout=10)
        assert r.status_code == 201
        messages = consume(services.bootstrap_servers, services.bookings_topic, until=lambda m: len(m) >= 1,
                           key_filter=lambda m: m["event_id"] == event_id, timeout=60)
        assert [m["booking_id"] for m in messages] == [r.json()["booking_id"]]
        relay = app.extensions["outbox_relay"]
        deadline = time.monotonic() + 10  # the counter moves right after the commit that follows the ack
        while relay.metrics.published._value.get() < 1 and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.05)
        assert relay.metrics.published._value.get() >= 1  # noqa: SLF001
    finally:
        app.extensions["outbox_relay"].stop()
        live.stop()
