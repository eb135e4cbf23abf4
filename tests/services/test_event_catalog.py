"""event-catalog against the real PostgreSQL, through HTTP."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import requests
import sqlalchemy as sa

from event_catalog.config import Config
from event_catalog.migrate import migrate
from event_catalog.seed import SEED_EVENTS

REQUIRED = {"event_id", "id", "name", "date", "venue", "tickets_available", "price", "capacity"}


def test_list_is_seeded_and_has_the_contract_fields(services):
    response = requests.get(services.catalog.url + "/events", timeout=10)
    assert response.status_code == 200
    events = response.json()
    assert isinstance(events, list) and len(events) >= 12
    for e in events:
        assert REQUIRED <= e.keys()
        assert e["id"] == e["event_id"] and isinstance(e["event_id"], int)
        assert e["tickets_available"] >= 0
    names = {e["name"] for e in requests.get(services.catalog.url + "/events?limit=500", timeout=10).json()}
    assert {row[0] for row in SEED_EVENTS} <= names
    assert int(response.headers["X-Total-Count"]) >= len(SEED_EVENTS)


def test_schema_comes_from_the_migration_and_rerunning_it_changes_nothing(db):
    with db.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one()
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version_event_catalog")).scalar_one()
    assert version == "ec0001"
    assert migrate(Config.from_env()) == 0  # not empty: no second seed
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one() == before


def test_filter_by_venue_is_case_insensitive(services, make_event):
    venue = "Test Arena " + str(make_event(tickets=5))
    ids = {make_event(tickets=10, venue=venue), make_event(tickets=20, venue=venue)}
    response = requests.get(services.catalog.url + "/events", params={"venue": venue.upper()}, timeout=10)
    assert response.status_code == 200
    assert {e["event_id"] for e in response.json()} == ids
    assert all(e["venue"] == venue for e in response.json())


def test_filter_by_date_range(services):
    events = requests.get(services.catalog.url + "/events?limit=500", timeout=10).json()
    dates = sorted(e["date"] for e in events)
    lo, hi = dates[2][:10], dates[-3][:10]
    ranged = requests.get(services.catalog.url + "/events",
                          params={"date_from": lo, "date_to": hi, "limit": 500}, timeout=10).json()
    assert ranged
    for e in ranged:
        assert lo <= e["date"][:10] <= hi
    expected = [e for e in events if lo <= e["date"][:10] <= hi]
    assert len(ranged) == len(expected)
    # ISO date-times work too
    start = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = requests.get(services.catalog.url + "/events", params={"date_from": start}, timeout=10)
    assert later.status_code == 200 and all(e["date"] >= start for e in later.json())


def test_sorting(services):
    for sort, key, reverse in (("price", "price", False), ("-price", "price", True), ("date", "date", False),
                               ("-date", "date", True), ("name", "name", False),
                               ("-tickets_available", "tickets_available", True)):
        events = requests.get(services.catalog.url + "/events", params={"sort": sort, "limit": 500}, timeout=10).json()
        values = [e[key] for e in events]
        assert values == sorted(values, reverse=reverse), sort


def test_available_filter_and_paging(services):
    available = requests.get(services.catalog.url + "/events", params={"available": "true", "limit": 500},
                             timeout=10).json()
    assert available and all(e["tickets_available"] > 0 for e in available)
    page1 = requests.get(services.catalog.url + "/events", params={"limit": 3, "offset": 0}, timeout=10).json()
    page2 = requests.get(services.catalog.url + "/events", params={"limit": 3, "offset": 3}, timeout=10).json()
    assert len(page1) == 3 and not {e["event_id"] for e in page1} & {e["event_id"] for e in page2}


def test_get_by_id_and_unknown_id(services, make_event):
    event_id = make_event(tickets=7, price=19.99)
    event = requests.get(f"{services.catalog.url}/events/{event_id}", timeout=10)
    assert event.status_code == 200
    body = event.json()
    assert body["event_id"] == event_id and body["tickets_available"] == 7 and body["price"] == 19.99
    for unknown in ("999999999", "0", "abc", "-1", "99999999999999999999"):
        response = requests.get(f"{services.catalog.url}/events/{unknown}", timeout=10)
        assert response.status_code == 404, unknown
        assert "unknown event" in response.json()["error"]


def test_bad_query_parameters_are_400(services):
    for params in ({"sort": "bogus"}, {"date_from": "yesterday"}, {"date_to": "2025-13-45"}, {"limit": "x"},
                   {"limit": "0"}, {"limit": "100000"}, {"offset": "-1"}, {"available": "maybe"},
                   {"date_from": "2030-01-02", "date_to": "2030-01-01"}, {"venue": "v" * 300}):
        response = requests.get(services.catalog.url + "/events", params=params, timeout=10)
        assert response.status_code == 400, params
        assert response.json()["error"], params


def test_ready_checks_postgres(services):
    ready = requests.get(services.catalog.url + "/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"]["postgres"]["ok"] is True


def test_ready_fails_without_postgres(service_env):
    import event_catalog
    from tests.services.conftest import serve

    live = serve("catalog-no-db", event_catalog.create_app(
        {"database_url": "postgresql+psycopg://ticket:ticket@127.0.0.1:9/ticketdb"}))
    try:
        assert requests.get(live.url + "/health", timeout=10).status_code == 200
        ready = requests.get(live.url + "/ready", timeout=20)
        assert ready.status_code == 503 and ready.json()["checks"]["postgres"]["ok"] is False
    finally:
        live.stop()
