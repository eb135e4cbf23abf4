"""Fixtures for the service tests: the four services served in-process by real HTTP servers
(werkzeug, one thread per request) on free ports, against the real data plane (PostgreSQL, Kafka,
moto) of stack/*.sh, plus the outbox relay as a thread.

The data-plane fixtures come from tests.fixtures.dataplane. They are imported here rather than named
in ``pytest_plugins``, which pytest only accepts in the top-level conftest.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

# The service packages live in services/ (the editable install maps them too; this also covers a
# venv installed before a package existed).
_SERVICES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "services")
if _SERVICES_DIR not in sys.path:
    sys.path.insert(0, _SERVICES_DIR)

from tests.fixtures.dataplane import Moto, dataplane_env, kafka, postgres, run_stack  # noqa: F401  (fixtures)

REPO_DIR = os.path.dirname(_SERVICES_DIR)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class LiveServer:
    name: str
    app: Any
    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


def serve(name: str, app: Any) -> LiveServer:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"serve-{name}", daemon=True)
    thread.start()
    live = LiveServer(name, app, server, thread)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if requests.get(live.url + "/health", timeout=1).status_code == 200:
                return live
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start")


# -- environment and data plane ----------------------------------------------------------------
@pytest.fixture(scope="session")
def moto() -> Moto:  # noqa: F811
    """tests.fixtures.dataplane's ``moto``, with a cheaper check for a moto that already runs.

    Workaround: ``stack/moto.sh start`` probes readiness with ``/moto-api/data.json``, a dump of all
    of moto's state with a 2 s timeout; once the shared moto holds a few MB of state (other suites,
    benchmarks) that dump takes longer and the probe fails though moto answers. A running moto that
    answers STS GetCallerIdentity is reused; otherwise the stack script starts it as usual.
    """
    import subprocess

    from botocore.config import Config as BotoConfig

    if subprocess.run(["bash", os.path.join(REPO_DIR, "stack", "moto.sh"), "status"],
                      capture_output=True).returncode == 0:
        settings = run_stack("moto.sh", "env", timeout=30)
        running = Moto(endpoint_url=settings["AWS_ENDPOINT_URL"], region=settings["AWS_REGION"],
                       access_key_id=settings["AWS_ACCESS_KEY_ID"],
                       secret_access_key=settings["AWS_SECRET_ACCESS_KEY"])
        try:
            running.client("sts", config=BotoConfig(connect_timeout=2, read_timeout=15,
                                                    retries={"max_attempts": 2})).get_caller_identity()
            return running
        except Exception:  # noqa: BLE001 - fall through to the stack script
            pass
    settings = run_stack("moto.sh", "start")
    return Moto(endpoint_url=settings["AWS_ENDPOINT_URL"], region=settings["AWS_REGION"],
                access_key_id=settings["AWS_ACCESS_KEY_ID"], secret_access_key=settings["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="session")
def test_database_url(postgres):  # noqa: F811
    """A database of its own for this test session, next to ``ticketdb``: the services' migrations
    create it (as they create ticketdb on a fresh server) and it is dropped at the end, so the tests
    never touch the data of a running local stack."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres.url).set(database=f"ticketdb_test_{uuid.uuid4().hex[:8]}")
    yield url.render_as_string(hide_password=False)
    engine = sa.create_engine(make_url(postgres.url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def users_table(moto):  # noqa: F811
    """A users table of its own for the session (same schema: user-service creates it at start-up),
    deleted at the end, so moto's state does not grow with every test run."""
    name = unique("test-ticket-booking-users")
    yield name
    try:
        moto.client("dynamodb").delete_table(TableName=name)
    except Exception:  # noqa: BLE001 - never created (tests deselected)
        pass


@pytest.fixture(scope="session")
def service_env(dataplane_env, test_database_url, users_table):  # noqa: F811
    """The data plane's settings in os.environ for the session (the services read config from it)."""
    settings = {**dataplane_env, "DATABASE_URL": test_database_url, "USERS_TABLE": users_table}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    yield settings
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def delete_bucket(moto, bucket: str) -> None:  # noqa: F811
    s3 = moto.client("s3")
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - never created
        pass


@pytest.fixture(scope="session")
def migrated(service_env, test_database_url):
    """Both migrations, as the services' start-up commands run them (the first creates the database)."""
    from booking_service.config import Config as BookingConfig
    from booking_service.migrate import migrate as migrate_bookings
    from event_catalog.config import Config as CatalogConfig
    from event_catalog.migrate import migrate as migrate_catalog

    migrate_catalog(CatalogConfig.from_env())
    migrate_bookings(BookingConfig.from_env())
    return test_database_url


@pytest.fixture(scope="session")
def db(migrated):
    engine = sa.create_engine(migrated)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def kafka_admin(kafka):  # noqa: F811
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="test-services")
    yield admin
    admin.close()


def create_topic(admin, name: str, partitions: int = 3) -> str:
    from kafka.admin import NewTopic

    admin.create_topics([NewTopic(name=name, num_partitions=partitions, replication_factor=1)])
    return name


def delete_topic(bootstrap_servers: str, name: str) -> None:
    """Clean-up with a client of its own: the session's admin client may not have survived a broker
    restart by another test (kafka-python keeps a dead connection for a while)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="test-services-cleanup")
    try:
        admin.delete_topics([name])
    finally:
        admin.close()


@pytest.fixture(scope="session")
def bookings_topic(kafka, kafka_admin):  # noqa: F811
    name = create_topic(kafka_admin, unique("test-ticket-bookings"))
    yield name
    delete_topic(kafka.bootstrap_servers, name)


@pytest.fixture(scope="session")
def analytics_topic(kafka, kafka_admin):  # noqa: F811
    name = create_topic(kafka_admin, unique("test-analytics-results"), partitions=1)
    yield name
    delete_topic(kafka.bootstrap_servers, name)


# -- the four services -------------------------------------------------------------------------
@dataclass
class Services:
    user: LiveServer
    catalog: LiveServer
    booking: LiveServer
    frontend: LiveServer
    relay: Any
    bookings_topic: str
    analytics_topic: str
    tickets_bucket: str
    bootstrap_servers: str
    extra: dict = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.frontend.url


@pytest.fixture(scope="session")
def services(service_env, migrated, kafka, moto, bookings_topic, analytics_topic):  # noqa: F811
    import booking_service
    import event_catalog
    import frontend
    import user_service
    from booking_service.config import Config as BookingConfig
    from booking_service.relay import relay_from_config
    from ticketing_common.config import resolve

    user = serve("user-service", user_service.create_app())
    catalog = serve("event-catalog", event_catalog.create_app())
    booking_overrides = {"user_service_url": user.url, "bookings_topic": bookings_topic, "outbox_relay": "off",
                         "relay_poll_interval": 0.1}
    booking = serve("booking-service", booking_service.create_app(booking_overrides))
    # The relay as the standalone process runs it (python -m booking_service.relay), in a thread.
    relay = relay_from_config(resolve(BookingConfig, booking_overrides)).start()
    bucket = unique("test-uploads")
    front = serve("frontend", frontend.create_app({
        "user_service_url": user.url, "event_catalog_url": catalog.url, "booking_service_url": booking.url,
        "kafka_bootstrap_servers": kafka.bootstrap_servers, "analytics_topic": analytics_topic,
        "tickets_bucket": bucket,
    }))
    s = Services(user, catalog, booking, front, relay, bookings_topic, analytics_topic, bucket,
                 kafka.bootstrap_servers)
    yield s
    s.relay.stop()  # the relay running now: a test may have replaced the first one
    feed = front.app.extensions.get("analytics_feed")
    if feed:
        feed.stop()
    for live in (front, booking, catalog, user):
        live.stop()
    delete_bucket(moto, bucket)


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def make_event(db) -> Callable[..., int]:
    """Insert an event straight into the catalog table (the API has no create); returns its id."""

    def _make(tickets: int = 50, capacity: int | None = None, price: float = 42.5, venue: str | None = None,
              days: int = 30) -> int:
        with db.begin() as conn:
            return conn.execute(sa.text(
                "INSERT INTO event (name, venue, city, date, price, currency, capacity, tickets_available, description) "
                "VALUES (:name, :venue, 'Testville', now() + make_interval(days => :days), :price, 'USD', :cap, :n, 'test') "
                "RETURNING event_id"),
                {"name": unique("Test Event"), "venue": venue or unique("Test Venue"), "days": days,
                 "price": price, "cap": capacity or max(tickets, 1), "n": tickets}).scalar_one()

    return _make


@pytest.fixture
def new_user(services) -> Callable[[], dict]:
    def _new() -> dict:
        response = requests.post(services.user.url + "/users",
                                 json={"name": "Test User", "email": f"{uuid.uuid4().hex[:12]}@example.com"}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    return _new


def consume(bootstrap: str, topic: str, *, until: Callable[[list[dict]], bool], timeout: float = 60.0,
            settle: float = 0.0, key_filter: Callable[[dict], bool] | None = None) -> list[dict]:
    """Read ``topic`` from the beginning until ``until(messages)`` holds (then ``settle`` seconds more,
    to catch any extra message), or the timeout. Each message is the decoded JSON plus ``_key``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        messages: list[dict] = []
        deadline = time.monotonic() + timeout
        settle_until = None
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    msg = json.loads(r.value)
                    msg["_key"] = r.key.decode() if r.key else None
                    msg["_partition"] = r.partition
                    if key_filter is None or key_filter(msg):
                        messages.append(msg)
            if settle_until is None and until(messages):
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
        return messages
    finally:
        consumer.close()
