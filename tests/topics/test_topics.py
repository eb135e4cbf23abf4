"""TopicManager against the real Kafka broker (stack/kafka.sh), one unique topic name per test.

What is checked is read back with a separate KafkaAdminClient, not taken from the manager's word.
The broker-outage test stops the shared broker and starts it again; it runs last in this module.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from ticketplatform_operator.topics import (
    ERROR,
    READY,
    REPLICATION_CHANGE_REFUSED,
    SHRINK_REFUSED,
    KafkaUnavailable,
    TopicManager,
    TopicSpec,
    default_admin_factory,
)

BOOKINGS_FIELD = "spec.kafka.topics.bookings"
WRITE_METHODS = ("create_topics", "create_partitions", "alter_configs", "delete_topics", "reset_configs")

# Upper bound for "the broker is down" to surface as KafkaUnavailable (bootstrap 5 s, requests 8 s
# by default; in practice a refused connection fails in milliseconds).
UNAVAILABLE_BOUND_S = 15.0


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(kafka):
    client = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="tp-topics-test",
                              request_timeout_ms=10000, reconnect_backoff_max_ms=1000)
    yield client
    client.close()


@pytest.fixture
def topic(request, kafka):
    """A unique topic name; it (and any `<name>-*` sibling the test made) is deleted afterwards."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name)[:40].strip("-")
    name = f"tp-test-{slug}-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        with TopicManager(kafka.bootstrap_servers) as cleaner:
            cleaner.delete([name, f"{name}-rf"])
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's result
        pass


class CountingAdmin:
    """Wraps a real admin client and counts calls per method."""

    def __init__(self, inner):
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return attr(*args, **kwargs)

        return counted

    def writes(self) -> dict[str, int]:
        return {m: n for m, n in self.calls.items() if m in WRITE_METHODS}


@pytest.fixture
def counting_manager(kafka):
    admins: list[CountingAdmin] = []

    def factory(**configs):
        wrapped = CountingAdmin(default_admin_factory(**configs))
        admins.append(wrapped)
        return wrapped

    manager = TopicManager(kafka.bootstrap_servers, admin_factory=factory)
    manager.admins = admins  # type: ignore[attr-defined]
    yield manager
    manager.close()


@pytest.fixture
def manager(kafka):
    with TopicManager(kafka.bootstrap_servers) as m:
        yield m


def actual_partitions(admin, name: str) -> int:
    (info,) = admin.describe_topics([name])
    assert info["error_code"] == 0, info
    return len(info["partitions"])


def actual_config(admin, name: str, keys: list[str]) -> dict[str, str]:
    result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, keys)], config_filter="all")
    return {k: v["value"] for k, v in result["topic"][name].items()}


def spec(name: str, partitions: int = 3, rf: int = 1, config: dict | None = None) -> TopicSpec:
    return TopicSpec(name, partitions, rf, config or {}, BOOKINGS_FIELD)


# -- tests -------------------------------------------------------------------------------------


def test_create(manager, admin, topic):
    (status,) = manager.reconcile([spec(topic, 3, 1, {"retention.ms": "3600000", "cleanup.policy": "delete"})])

    assert status.state == READY, status
    assert (status.partitions, status.replication_factor) == (3, 1)
    assert status.changes == ["created"]
    assert topic in admin.list_topics()
    assert actual_partitions(admin, topic) == 3
    assert actual_config(admin, topic, ["retention.ms", "cleanup.policy"]) == {
        "retention.ms": "3600000", "cleanup.policy": "delete"}


def test_adopt_existing_topic(counting_manager, admin, topic):
    admin.create_topics({topic: {"num_partitions": 4, "replication_factor": 1}})
    admin.wait_for_topics([topic])

    (status,) = counting_manager.reconcile([spec(topic, 4, 1)])

    assert status.state == READY, status
    assert status.partitions == 4
    assert status.changes == []
    (client,) = counting_manager.admins
    assert client.writes() == {}, "an existing topic must be adopted, not recreated"


def test_adopt_topic_created_concurrently(kafka, admin, topic):
    """Someone creates the topic between the manager's describe and its create: adopt, don't fail."""

    class Racing(CountingAdmin):
        def create_topics(self, new_topics, **kwargs):
            admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
            return self._inner.create_topics(new_topics, **kwargs)

    with TopicManager(kafka.bootstrap_servers, admin_factory=lambda **c: Racing(default_admin_factory(**c))) as m:
        (status,) = m.reconcile([spec(topic, 2)])

    assert status.state == READY, status
    assert status.changes == ["adopted"]
    assert actual_partitions(admin, topic) == 2


def test_partition_growth(manager, admin, topic):
    manager.reconcile([spec(topic, 2)])
    assert actual_partitions(admin, topic) == 2

    (status,) = manager.reconcile([spec(topic, 5)])

    assert status.state == READY, status
    assert status.partitions == 5
    assert status.changes == ["partitions 2->5"]
    assert actual_partitions(admin, topic) == 5


def test_shrink_refused(manager, admin, topic):
    manager.reconcile([spec(topic, 6, 1, {"retention.ms": "3600000"})])

    # the bad spec also changes config: nothing of it applies while it is refused
    (status,) = manager.reconcile([spec(topic, 3, 1, {"retention.ms": "7200000"})])

    assert status.state == SHRINK_REFUSED, status
    assert status.field == f"{BOOKINGS_FIELD}.partitions"
    assert status.message.startswith(
        f"{BOOKINGS_FIELD}.partitions: cannot shrink from 6 to 3; Kafka partitions only grow"), status.message
    assert status.partitions == 6
    assert actual_partitions(admin, topic) == 6
    assert actual_config(admin, topic, ["retention.ms"]) == {"retention.ms": "3600000"}

    # fixing the spec makes the topic Ready again and applies the config
    (status,) = manager.reconcile([spec(topic, 6, 1, {"retention.ms": "7200000"})])
    assert status.state == READY, status
    assert actual_config(admin, topic, ["retention.ms"]) == {"retention.ms": "7200000"}


def test_replication_change_refused(manager, admin, topic):
    manager.reconcile([spec(topic, 2, 1)])

    (status,) = manager.reconcile([spec(topic, 2, 2)])

    assert status.state == REPLICATION_CHANGE_REFUSED, status
    assert status.field == f"{BOOKINGS_FIELD}.replicationFactor"
    assert "cannot change the replication factor from 1 to 2" in status.message
    assert status.replication_factor == 1


def test_config_change_applied(manager, admin, topic):
    manager.reconcile([spec(topic, 1, 1, {"retention.ms": "3600000"})])

    (status,) = manager.reconcile([spec(topic, 1, 1, {"retention.ms": "86400000", "segment.bytes": "10485760"})])

    assert status.state == READY, status
    assert status.changes == ["config retention.ms=86400000, segment.bytes=10485760"]
    assert actual_config(admin, topic, ["retention.ms", "segment.bytes"]) == {
        "retention.ms": "86400000", "segment.bytes": "10485760"}


def test_noop_reconcile_writes_nothing(counting_manager, topic):
    desired = [spec(topic, 3, 1, {"retention.ms": "3600000", "cleanup.policy": "delete"})]
    counting_manager.reconcile(desired)
    (client,) = counting_manager.admins
    assert client.writes() == {"create_topics": 1}
    client.calls.clear()

    for _ in range(3):
        (status,) = counting_manager.reconcile(desired)
        assert status.state == READY and status.changes == [], status

    assert client.writes() == {}, client.calls
    assert set(client.calls) <= {"describe_topics", "describe_configs"}, client.calls


def test_spec_errors_name_the_field(manager, topic):
    # refused at creation: an unknown config key, a replication factor above the broker count
    unknown, too_many_replicas = manager.reconcile([
        spec(topic, 1, 1, {"no.such.setting": "1"}),
        TopicSpec(topic + "-rf", 1, 3, {}, "spec.kafka.topics.analytics"),
    ])
    assert unknown.state == ERROR, unknown
    assert unknown.field == f"{BOOKINGS_FIELD}.config.no.such.setting", unknown
    assert unknown.message.startswith(f"{BOOKINGS_FIELD}.config.no.such.setting: "), unknown.message
    assert too_many_replicas.state == ERROR, too_many_replicas
    assert too_many_replicas.field == "spec.kafka.topics.analytics.replicationFactor"
    assert "replication" in too_many_replicas.message.lower()

    # refused on an existing topic: an unknown key, then a value the broker rejects
    (created,) = manager.reconcile([spec(topic, 1)])
    assert created.state == READY
    (unknown,) = manager.reconcile([spec(topic, 1, 1, {"no.such.setting": "1"})])
    assert unknown.state == ERROR and unknown.field == f"{BOOKINGS_FIELD}.config.no.such.setting", unknown
    (bad_value,) = manager.reconcile([spec(topic, 1, 1, {"retention.ms": "soon"})])
    assert bad_value.state == ERROR and bad_value.field == f"{BOOKINGS_FIELD}.config.retention.ms", bad_value
    assert "retention.ms" in bad_value.message


def test_delete_is_idempotent(manager, admin, topic):
    manager.reconcile([spec(topic, 1)])
    assert topic in admin.list_topics()

    manager.delete([topic, topic + "-never-existed"])
    assert topic not in admin.list_topics()

    manager.delete([topic])  # again: no error
    manager.delete([])


def test_broker_down_then_recovery(kafka, manager, topic):
    """Runs last: stops the shared broker, expects KafkaUnavailable fast, then recovery."""
    manager.reconcile([spec(topic, 1)])  # a warm admin client, connected before the outage

    with kafka.outage():
        for attempt in range(2):  # the warm client fails, then a fresh one fails at connect
            started = time.monotonic()
            with pytest.raises(KafkaUnavailable) as info:
                manager.reconcile([spec(topic, 2)])
            elapsed = time.monotonic() - started
            print(f"broker down, attempt {attempt}: KafkaUnavailable after {elapsed:.2f}s: {info.value}")
            assert elapsed < UNAVAILABLE_BOUND_S, f"attempt {attempt}: took {elapsed:.1f}s"
            assert kafka.bootstrap_servers in str(info.value)
            assert "unreachable" in str(info.value)
        with pytest.raises(KafkaUnavailable):
            manager.delete([topic])

    # broker back (kafka.start() waited for metadata): the same manager recovers by itself
    deadline = time.monotonic() + 60
    while True:
        try:
            (status,) = manager.reconcile([spec(topic, 2)])
            break
        except KafkaUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert status.state == READY, status
    assert status.partitions == 2
    # a fresh client to check: a kafka-python client that lived through the outage stays in
    # reconnect back-off for a while ("No node_id provided"), which is why TopicManager rebuilds its own
    fresh = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="tp-topics-test-after")
    try:
        assert actual_partitions(fresh, topic) == 2
    finally:
        fresh.close()
