"""user-service against moto's DynamoDB, through HTTP."""
from __future__ import annotations

import uuid

import requests

import user_service
from tests.services.conftest import serve, unique


def _email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.com"


def test_create_and_get_user(services):
    email = _email()
    created = requests.post(services.user.url + "/users", json={"name": "  Ada Lovelace ", "email": email}, timeout=10)
    assert created.status_code == 201, created.text
    user = created.json()
    assert set(user) == {"user_id", "name", "email", "created_at"}
    assert user["name"] == "Ada Lovelace" and user["email"] == email
    assert str(uuid.UUID(user["user_id"])) == user["user_id"]
    assert user["created_at"].endswith("Z")

    fetched = requests.get(f"{services.user.url}/users/{user['user_id']}", timeout=10)
    assert fetched.status_code == 200
    assert fetched.json() == user

    by_email = requests.get(services.user.url + "/users", params={"email": email.upper()}, timeout=10)
    assert by_email.status_code == 200 and by_email.json()["user_id"] == user["user_id"]


def test_email_is_unique_case_insensitively(services):
    email = _email()
    first = requests.post(services.user.url + "/users", json={"name": "A", "email": email}, timeout=10)
    assert first.status_code == 201
    again = requests.post(services.user.url + "/users", json={"name": "B", "email": email.upper()}, timeout=10)
    assert again.status_code == 409
    assert again.json() == {"error": "email already registered", "field": "email"}


def test_concurrent_registrations_with_one_email_create_one_user(services):
    from concurrent.futures import ThreadPoolExecutor

    email = _email()
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda i: requests.post(services.user.url + "/users",
                                                      json={"name": f"U{i}", "email": email}, timeout=20).status_code,
                              range(10)))
    assert codes.count(201) == 1 and codes.count(409) == 9, codes


def test_user_item_layout_in_dynamodb(services, moto, users_table):
    from user_service.config import Config

    assert Config.from_env({}).table_name == "ticket-booking-users"  # the default; tests use their own
    user = requests.post(services.user.url + "/users", json={"name": "Grace", "email": _email()}, timeout=10).json()
    ddb = moto.client("dynamodb")
    table = ddb.describe_table(TableName=users_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}]
    item = ddb.get_item(TableName=users_table, Key={"userId": {"S": user["user_id"]}})["Item"]
    assert item["name"]["S"] == "Grace" and item["itemType"]["S"] == "user"
    claim = ddb.get_item(TableName=users_table, Key={"userId": {"S": "email#" + user["email"].lower()}})["Item"]
    assert claim["ownerUserId"]["S"] == user["user_id"] and claim["itemType"]["S"] == "email-claim"


def test_unknown_user_is_404(services):
    for user_id in (str(uuid.uuid4()), "not-a-uuid", "email%23someone@example.com"):
        response = requests.get(f"{services.user.url}/users/{user_id}", timeout=10)
        assert response.status_code == 404
        assert "unknown user" in response.json()["error"]


def test_service_creates_its_table_at_start(service_env, moto):
    table = unique("test-users")
    app = user_service.create_app({"table_name": table})
    live = serve("user-service-fresh-table", app)
    try:
        names = moto.client("dynamodb").list_tables()["TableNames"]
        assert table in names
        ready = requests.get(live.url + "/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["checks"]["dynamodb"]["ok"]
        created = requests.post(live.url + "/users", json={"name": "X", "email": _email()}, timeout=10)
        assert created.status_code == 201
        # A second instance finds the table and does not fail.
        user_service.create_app({"table_name": table})
    finally:
        live.stop()
        moto.client("dynamodb").delete_table(TableName=table)


def test_readiness_fails_when_dynamodb_is_unreachable(service_env):
    app = user_service.create_app({"aws_endpoint_url": "http://127.0.0.1:9", "table_name": unique("t")})
    live = serve("user-service-no-dynamo", app)
    try:
        assert requests.get(live.url + "/health", timeout=10).status_code == 200
        ready = requests.get(live.url + "/ready", timeout=30)
        assert ready.status_code == 503 and ready.json()["checks"]["dynamodb"]["ok"] is False
        created = requests.post(live.url + "/users", json={"name": "X", "email": _email()}, timeout=30)
        assert created.status_code == 503
        assert created.json()["error"] == "user store (DynamoDB) unavailable"
    finally:
        live.stop()


def test_metrics_are_labelled_by_route(services):
    requests.get(f"{services.user.url}/users/{uuid.uuid4()}", timeout=10)
    text = requests.get(services.user.url + "/metrics", timeout=10).text
    assert 'http_requests_total{method="GET",route="/users/<user_id>",status="404"}' in text
    assert 'http_request_errors_total{method="GET",route="/users/<user_id>",status="404"}' in text
    assert "http_request_duration_seconds_bucket" in text
