"""The frontend gateway: DESIGN.md's contract, end to end through HTTP with all four services."""
from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

import frontend
from tests.services.conftest import serve, unique


def _register(gw: str) -> dict:
    response = requests.post(gw + "/api/users/register",
                             json={"name": "Gateway User", "email": f"{uuid.uuid4().hex[:10]}@example.com"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_ui_is_served(services):
    response = requests.get(services.gateway + "/", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "TicketPlatform" in response.text
    for asset in ("/static/app.js", "/static/app.css"):
        assert requests.get(services.gateway + asset, timeout=10).status_code == 200


def test_health_names_every_backend(services):
    response = requests.get(services.gateway + "/api/health", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["down"] == []
    assert {"frontend", "user-service", "event-catalog", "booking-service", "s3"} <= body["services"].keys()
    assert all(s["status"] == "up" for s in body["services"].values())


def test_register_then_book_then_list(services, make_event):
    gw = services.gateway
    user = _register(gw)
    assert set(user) >= {"user_id", "name", "email", "created_at"}

    events = requests.get(gw + "/api/events", timeout=10)
    assert events.status_code == 200 and isinstance(events.json(), list) and events.json()
    for e in events.json():
        assert {"event_id", "id", "name", "date", "venue", "tickets_available"} <= e.keys()

    event_id = make_event(tickets=10, price=12.5)
    one = requests.get(f"{gw}/api/events/{event_id}", timeout=10)
    assert one.status_code == 200 and one.json()["event_id"] == event_id
    assert requests.get(f"{gw}/api/events/987654321", timeout=10).status_code == 404

    booked = requests.post(gw + "/api/bookings/book",
                           json={"user_id": user["user_id"], "event_id": event_id, "ticket_count": 2}, timeout=10)
    assert booked.status_code == 200, booked.text
    booking = booked.json()
    assert booking["status"] == "confirmed" and booking["booking_id"]

    mine = requests.get(f"{gw}/api/users/{user['user_id']}/bookings", timeout=10)
    assert mine.status_code == 200
    assert [b["booking_id"] for b in mine.json()] == [booking["booking_id"]]
    assert requests.get(f"{gw}/api/bookings/{booking['booking_id']}", timeout=10).status_code == 200

    sold_out = requests.post(gw + "/api/bookings/book",
                             json={"user_id": user["user_id"], "event_id": event_id, "ticket_count": 9}, timeout=10)
    assert sold_out.status_code == 409
    unknown_event = requests.post(gw + "/api/bookings/book",
                                  json={"user_id": user["user_id"], "event_id": 987654321, "ticket_count": 1}, timeout=10)
    assert unknown_event.status_code == 404
    unknown_user = requests.post(gw + "/api/bookings/book",
                                 json={"user_id": str(uuid.uuid4()), "event_id": event_id, "ticket_count": 1}, timeout=10)
    assert unknown_user.status_code == 404


def test_event_filters_pass_through(services):
    events = requests.get(services.gateway + "/api/events", params={"sort": "-price", "limit": 5}, timeout=10)
    assert events.status_code == 200 and len(events.json()) == 5
    prices = [e["price"] for e in events.json()]
    assert prices == sorted(prices, reverse=True)
    assert int(events.headers["X-Total-Count"]) >= 5


def test_user_lookup_by_email(services):
    user = _register(services.gateway)
    found = requests.get(services.gateway + "/api/users", params={"email": user["email"]}, timeout=10)
    assert found.status_code == 200 and found.json()["user_id"] == user["user_id"]
    assert requests.get(f"{services.gateway}/api/users/{user['user_id']}", timeout=10).json() == user


def test_upload_id_proof_and_list_tickets(services, moto):
    gw = services.gateway
    user = _register(gw)
    response = requests.post(gw + "/api/tickets/upload", data={"user_id": user["user_id"]},
                             files={"file": ("my passport.pdf", b"%PDF-1.4 test\n", "application/pdf")}, timeout=10)
    assert response.status_code == 200, response.text
    upload = response.json()
    assert upload["status"] == "uploaded"
    assert upload["key"] == f"uploads/{user['user_id']}/{upload['upload_id']}-my_passport.pdf"
    s3 = moto.client("s3")
    head = s3.head_object(Bucket=services.tickets_bucket, Key=upload["key"])
    assert head["Metadata"]["user-id"] == user["user_id"]

    listing = requests.get(gw + "/api/tickets", params={"user_id": user["user_id"]}, timeout=10)
    assert listing.status_code == 200
    body = listing.json()
    assert [u["upload_id"] for u in body["uploads"]] == [upload["upload_id"]]
    assert body["uploads"][0]["status"] == "uploaded" and body["tickets"] == []

    # A generated ticket (what the ticket generator Lambda writes) is listed and readable.
    ticket_key = f"tickets/{upload['upload_id']}-my_passport_TICKET.txt"
    s3.put_object(Bucket=services.tickets_bucket, Key=ticket_key, Body=b"ADMIT ONE")
    body = requests.get(gw + "/api/tickets", params={"user_id": user["user_id"]}, timeout=10).json()
    assert [t["key"] for t in body["tickets"]] == [ticket_key]
    assert body["uploads"][0]["status"] == "ticket ready"
    assert ticket_key in [t["key"] for t in requests.get(gw + "/api/tickets", timeout=10).json()["tickets"]]
    content = requests.get(gw + "/api/tickets/content", params={"key": ticket_key}, timeout=10)
    assert content.status_code == 200 and content.text == "ADMIT ONE"


def test_analytics_shows_the_latest_window_per_event(services, kafka):
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    for msg in ({"event_id": 1, "window_end": "2026-01-01T10:01:00Z", "total_tickets": 5},
                {"event_id": 1, "window_end": "2026-01-01T10:02:00Z", "total_tickets": 9},
                {"event_id": 2, "window_end": "2026-01-01T10:02:00Z", "total_tickets": 3},
                {"event_id": 1, "window_end": "2026-01-01T10:00:00Z", "total_tickets": 1}):  # late, older
        producer.send(services.analytics_topic, json.dumps(msg).encode())
    producer.send(services.analytics_topic, b"not json")
    producer.flush()
    producer.close()
    deadline = time.monotonic() + 30
    results = []
    while time.monotonic() < deadline:
        results = requests.get(services.gateway + "/api/analytics", timeout=10).json()
        if len(results) == 2 and any(r["total_tickets"] == 9 for r in results):
            break
        time.sleep(0.5)
    assert sorted(results, key=lambda r: r["event_id"]) == [
        {"event_id": 1, "window_end": "2026-01-01T10:02:00Z", "total_tickets": 9},
        {"event_id": 2, "window_end": "2026-01-01T10:02:00Z", "total_tickets": 3},
    ]


def test_analytics_without_kafka_is_an_empty_list(service_env, services):
    live = serve("frontend-no-kafka", frontend.create_app({"kafka_bootstrap_servers": None,
                                                          "tickets_bucket": services.tickets_bucket}))
    try:
        response = requests.get(live.url + "/api/analytics", timeout=10)
        assert response.status_code == 200 and response.json() == []
        assert response.headers["X-Analytics-Source"] == "none"
    finally:
        live.stop()


def test_a_backend_that_is_down_gives_503_naming_it_quickly(service_env, services):
    dead = "http://127.0.0.1:9"
    live = serve("frontend-dead-backends", frontend.create_app({
        "user_service_url": dead, "event_catalog_url": services.catalog.url, "booking_service_url": dead,
        "kafka_bootstrap_servers": None, "tickets_bucket": services.tickets_bucket}))
    try:
        start = time.monotonic()
        response = requests.post(live.url + "/api/users/register", json={"name": "x", "email": "x@example.com"}, timeout=10)
        assert response.status_code == 503
        assert response.json() == {"error": "user-service unavailable", "service": "user-service"}
        booking = requests.post(live.url + "/api/bookings/book",
                                json={"user_id": str(uuid.uuid4()), "event_id": 1, "ticket_count": 1}, timeout=10)
        assert booking.status_code == 503 and booking.json()["service"] == "booking-service"
        assert time.monotonic() - start < 5
        assert requests.get(live.url + "/api/events", timeout=10).status_code == 200
        health = requests.get(live.url + "/api/health", timeout=10).json()
        assert health["status"] == "degraded"
        assert set(health["down"]) == {"user-service", "booking-service"}
        assert health["services"]["event-catalog"]["status"] == "up"
    finally:
        live.stop()


def test_a_backend_that_hangs_gives_504_naming_it(service_env, services):
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # accepts connections, never answers
    port = sock.getsockname()[1]
    live = serve("frontend-hanging-backend", frontend.create_app({
        "event_catalog_url": f"http://127.0.0.1:{port}", "backend_read_timeout": 1.0,
        "kafka_bootstrap_servers": None, "tickets_bucket": services.tickets_bucket}))
    try:
        start = time.monotonic()
        response = requests.get(live.url + "/api/events", timeout=10)
        assert response.status_code == 504
        assert response.json() == {"error": "event-catalog did not answer in time", "service": "event-catalog"}
        assert time.monotonic() - start < 4
    finally:
        live.stop()
        sock.close()


def test_gateway_metrics(services):
    requests.get(services.gateway + "/api/events", timeout=10)
    text = requests.get(services.gateway + "/metrics", timeout=10).text
    assert 'http_requests_total{method="GET",route="/api/events",status="200"}' in text
