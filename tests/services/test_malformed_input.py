"""Malformed input to every route of every service gives a 4xx with a JSON reason, never a 500.

Bad JSON, wrong types, missing fields, oversized bodies, wrong content types, unknown ids, unknown
routes and wrong methods, sent to each service directly and through the gateway.
"""
from __future__ import annotations

import json
import uuid

import pytest
import requests

BAD_BODIES = [
    b"", b"   ", b"{", b"{\"name\": ", b"[]", b"null", b"123", b"\"text\"", b"true", b"\xff\xfe\x00",
    b"{'single': 'quotes'}", b"[" * 5000 + b"]" * 5000, b"{\"a\":" * 3000 + b"1" + b"}" * 3000,
]

REGISTER_BAD = [
    {}, {"name": "A"}, {"email": "a@example.com"}, {"name": "", "email": "a@example.com"},
    {"name": None, "email": "a@example.com"}, {"name": 5, "email": "a@example.com"},
    {"name": ["A"], "email": "a@example.com"}, {"name": "A", "email": "not-an-email"},
    {"name": "A", "email": "a@b"}, {"name": "A", "email": 42}, {"name": "A" * 101, "email": "a@example.com"},
    {"name": "A", "email": ("x" * 250) + "@example.com"}, {"name": "A\u0000B", "email": "a@example.com"},
    {"name": "A", "email": "a b@example.com"},
]


def booking_bad(user_id: str, event_id: int) -> list[dict]:
    good = {"user_id": user_id, "event_id": event_id, "ticket_count": 1}
    cases = []
    for field in good:
        cases.append({k: v for k, v in good.items() if k != field})      # missing
        cases.append({**good, field: None})                                # null
    for value in ("2", 0, 11, -1, 2.5, True, [1], {"n": 1}, 10**30, "NaN"):
        cases.append({**good, "ticket_count": value})
    for value in ("abc", 0, -5, 1.5, True, [event_id], 10**30, ""):
        cases.append({**good, "event_id": value})
    for value in (123, True, ["x"], "", "x" * 100):
        cases.append({**good, "user_id": value})
    cases.append({**good, "user_id": "not-a-uuid"})
    cases.append({**good, "user_id": str(uuid.uuid4())})                  # unknown user
    cases.append({**good, "event_id": 2_000_000_000})                      # unknown event
    return cases


def assert_json_4xx(response: requests.Response, context) -> None:
    assert 400 <= response.status_code < 500, (context, response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json"), (context, response.headers)
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], (context, body)
    assert "Traceback" not in response.text and "<html" not in response.text.lower()


@pytest.fixture(scope="module")
def targets(services, make_event_module):
    user = requests.post(services.user.url + "/users",
                         json={"name": "Malformed", "email": f"{uuid.uuid4().hex[:10]}@example.com"}, timeout=10).json()
    return {"user_id": user["user_id"], "event_id": make_event_module}


@pytest.fixture(scope="module")
def make_event_module(db):
    import sqlalchemy as sa

    with db.begin() as conn:
        return conn.execute(sa.text(
            "INSERT INTO event (name, venue, city, date, price, currency, capacity, tickets_available) "
            "VALUES ('Malformed Input Night', 'Fuzz Hall', 'Testville', now() + interval '9 days', 10, 'USD', 100, 100) "
            "RETURNING event_id")).scalar_one()


def _post_raw(url: str, body: bytes, content_type: str = "application/json") -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=30)


@pytest.mark.parametrize("route", ["user:/users", "booking:/bookings", "gateway:/api/users/register",
                                   "gateway:/api/bookings/book"])
def test_bad_json_bodies(services, route):
    name, path = route.split(":")
    base = {"user": services.user.url, "booking": services.booking.url, "gateway": services.gateway}[name]
    for body in BAD_BODIES:
        assert_json_4xx(_post_raw(base + path, body), (route, body[:40]))
    # wrong content types
    assert_json_4xx(_post_raw(base + path, b"name=a&email=b", "application/x-www-form-urlencoded"), route)
    assert_json_4xx(_post_raw(base + path, b"{}", "text/plain"), route)
    # oversized: past the service's 16 KiB and past the gateway's 64 KiB
    for size in (20_000, 70_000, 2_000_000):
        big = json.dumps({"name": "x" * size, "email": "a@example.com"}).encode()
        response = _post_raw(base + path, big)
        assert_json_4xx(response, (route, size))
        assert response.status_code == 413


def test_register_field_errors(services):
    for case in REGISTER_BAD:
        for url in (services.user.url + "/users", services.gateway + "/api/users/register"):
            response = requests.post(url, json=case, timeout=10)
            assert_json_4xx(response, (url, case))
            assert response.status_code == 400, (case, response.text)


def test_booking_field_errors(services, targets):
    for case in booking_bad(targets["user_id"], targets["event_id"]):
        for url in (services.booking.url + "/bookings", services.gateway + "/api/bookings/book"):
            response = requests.post(url, json=case, timeout=10)
            assert_json_4xx(response, (url, case))


def test_unknown_ids_and_bad_path_parameters(services):
    weird = ["0", "-1", "abc", "%20", "..%2F..%2Fhealth", "%00", "1e9", "9" * 40, "🙂", str(uuid.uuid4())]
    for w in weird:
        for url in (f"{services.user.url}/users/{w}", f"{services.catalog.url}/events/{w}",
                    f"{services.booking.url}/bookings/{w}", f"{services.booking.url}/users/{w}/bookings",
                    f"{services.gateway}/api/events/{w}", f"{services.gateway}/api/users/{w}",
                    f"{services.gateway}/api/users/{w}/bookings", f"{services.gateway}/api/bookings/{w}"):
            assert_json_4xx(requests.get(url, timeout=10), url)


def test_bad_query_parameters(services):
    cases = [
        (services.user.url + "/users", {}), (services.user.url + "/users", {"email": "nope"}),
        (services.gateway + "/api/users", {"email": ""}), (services.gateway + "/api/users", {"email": "x" * 300}),
        (services.gateway + "/api/events", {"sort": "; DROP TABLE event"}),
        (services.gateway + "/api/events", {"date_from": "2026-02-30"}),
        (services.gateway + "/api/events", {"limit": "-3"}),
        (services.gateway + "/api/tickets", {"user_id": "nope"}),
        (services.gateway + "/api/tickets/content", {}),
        (services.gateway + "/api/tickets/content", {"key": "uploads/secret.pdf"}),
        (services.gateway + "/api/tickets/content", {"key": "tickets/../uploads/x"}),
        (services.gateway + "/api/tickets/content", {"key": "tickets/does-not-exist.txt"}),
    ]
    for url, params in cases:
        assert_json_4xx(requests.get(url, params=params, timeout=10), (url, params))


def test_unknown_routes_and_wrong_methods(services):
    for base in (services.user.url, services.catalog.url, services.booking.url, services.gateway):
        assert_json_4xx(requests.get(base + "/no/such/route", timeout=10), base)
        assert_json_4xx(requests.delete(base + "/health", timeout=10), base)
    for method, url in (("PUT", services.user.url + "/users"), ("POST", services.catalog.url + "/events"),
                        ("DELETE", f"{services.catalog.url}/events/1"), ("GET", services.booking.url + "/bookings"),
                        ("POST", services.gateway + "/api/analytics"), ("GET", services.gateway + "/api/tickets/upload"),
                        ("PATCH", services.gateway + "/api/events")):
        response = requests.request(method, url, timeout=10)
        assert_json_4xx(response, (method, url))
        assert response.status_code == 405
    # GET /api/bookings/book reads as "the booking with id 'book'" (unknown, 404); same for register
    assert_json_4xx(requests.get(services.gateway + "/api/bookings/book", timeout=10), "GET book")
    assert_json_4xx(requests.get(services.gateway + "/api/users/register", timeout=10), "GET register")


def test_upload_errors(services, targets):
    url = services.gateway + "/api/tickets/upload"
    pdf = ("id.pdf", b"%PDF-1.4", "application/pdf")
    cases = [
        ({"data": b"{}", "headers": {"Content-Type": "application/json"}}, 415),
        ({"files": {"other": pdf}}, 400),
        ({"files": {"file": ("", b"%PDF", "application/pdf")}}, 400),
        ({"files": {"file": ("id.exe", b"MZ", "application/octet-stream")}}, 415),
        ({"files": {"file": ("id", b"data", "application/octet-stream")}}, 415),
        ({"files": {"file": ("id.pdf", b"", "application/pdf")}}, 400),
        ({"files": {"file": pdf}, "data": {"user_id": "nope"}}, 400),
        ({"files": {"file": pdf}, "data": {"booking_id": "12"}}, 400),
        ({"files": {"file": ("big.pdf", b"0" * (6 * 1024 * 1024), "application/pdf")}}, 413),
        ({"data": b"--x\r\nnot multipart", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, 400),
        ({"data": b"abc", "headers": {"Content-Type": "multipart/form-data"}}, 400),
    ]
    for kwargs, expected in cases:
        response = requests.post(url, timeout=30, **kwargs)
        assert_json_4xx(response, kwargs.get("files") or kwargs.get("data"))
        assert response.status_code == expected, (kwargs.keys(), response.status_code, response.text)
