"""The local data plane works with the clients the services use: a real Kafka broker (kafka-python),
a real PostgreSQL (psycopg 3 and SQLAlchemy), and moto's AWS endpoint (boto3).

Run alone with: .venv/bin/python -m pytest -p tests.fixtures.dataplane tests/test_dataplane.py -v
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
import sqlalchemy
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaTimeoutError
from kafka.serializer import DefaultSerializer, JsonSerializer

from tests.fixtures.dataplane import KafkaBroker, Moto, Postgres, port_open


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, partitions: int = 1) -> str:
    name = unique("tp-dataplane")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-dataplane")
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        deadline = time.monotonic() + 30
        while name not in admin.list_topics():
            assert time.monotonic() < deadline, f"topic {name} did not appear"
            time.sleep(0.2)
    finally:
        admin.close()
    return name


def json_producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        retries=5,
        value_serializer=JsonSerializer(),
        key_serializer=DefaultSerializer(),
    )


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0, **config) -> list[dict]:
    """Read `topic` from the beginning until `expected` records arrived (or fail after `timeout`)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        value_deserializer=JsonSerializer(),
        **config,
    )
    try:
        if "group_id" in config:
            consumer.subscribe([topic])
        else:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
        records: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(r.value for r in batch)
        assert len(records) >= expected, f"read {len(records)} of {expected} records from {topic}"
        return records
    finally:
        consumer.close()


def test_kafka_round_trip(kafka: KafkaBroker) -> None:
    topic = create_topic(kafka.bootstrap_servers, partitions=3)
    booking = {
        "event_id": 7, "user_id": "u-1", "ticket_count": 2,
        "timestamp": "2026-01-01T00:00:00Z", "booking_id": unique("b"),
    }
    producer = json_producer(kafka.bootstrap_servers)
    try:
        meta = producer.send(topic, key=booking["booking_id"], value=booking).get(timeout=30)
    finally:
        producer.close()
    assert meta.topic == topic and meta.offset == 0

    # As the analytics job and the services read: a consumer group on the topic.
    records = read_all(kafka.bootstrap_servers, topic, 1, group_id=unique("tp-group"))
    assert records == [booking]


def test_kafka_does_not_create_topics_on_demand(kafka: KafkaBroker) -> None:
    missing = unique("tp-missing")
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, max_block_ms=2000)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send(missing, b"x").get(timeout=5)
    finally:
        producer.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    try:
        assert missing not in admin.list_topics()
    finally:
        admin.close()


def test_kafka_keeps_messages_across_restart(kafka: KafkaBroker) -> None:
    topic = create_topic(kafka.bootstrap_servers)
    before = [{"booking_id": unique("before"), "n": i} for i in range(5)]
    producer = json_producer(kafka.bootstrap_servers)
    try:
        for value in before:
            producer.send(topic, key=value["booking_id"], value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()

    with kafka.outage():
        assert not kafka.is_running()
        assert not port_open(kafka.host, kafka.port), "broker port still open after stop"

    assert kafka.is_running()
    after = {"booking_id": unique("after"), "n": 5}
    producer = json_producer(kafka.bootstrap_servers)
    try:
        producer.send(topic, key=after["booking_id"], value=after).get(timeout=30)
    finally:
        producer.close()
    assert read_all(kafka.bootstrap_servers, topic, 6) == before + [after]


def test_postgres_connection_and_transactions(postgres: Postgres) -> None:
    table = unique("t").replace("-", "_")
    with psycopg.connect(postgres.dsn) as conn:
        assert conn.execute("select current_user, current_database()").fetchone() == ("ticket", "ticketdb")
        with conn.transaction():
            conn.execute(f"create table {table} (id serial primary key, name text not null)")
            conn.execute(f"insert into {table} (name) values (%s)", ("committed",))
        with pytest.raises(psycopg.errors.NotNullViolation):
            with conn.transaction():
                conn.execute(f"insert into {table} (name) values (%s)", ("rolled back",))
                conn.execute(f"insert into {table} (name) values (null)")
        assert conn.execute(f"select name from {table}").fetchall() == [("committed",)]

    # The URL the services get (SQLAlchemy with the psycopg 3 driver) reaches the same data.
    engine = sqlalchemy.create_engine(postgres.url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sqlalchemy.text(f"select count(*) from {table}")).scalar_one() == 1
            conn.execute(sqlalchemy.text(f"drop table {table}"))
    finally:
        engine.dispose()

    with psycopg.connect(postgres.admin_dsn) as admin:
        owner = admin.execute(
            "select pg_get_userbyid(datdba) from pg_database where datname = 'ticketdb'"
        ).fetchone()
        assert owner == ("ticket",)


def test_moto_dynamodb_and_s3(moto: Moto) -> None:
    dynamodb = moto.client("dynamodb")
    table = unique("ticket-booking-users")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    dynamodb.put_item(TableName=table, Item={"userId": {"S": "u-1"}, "name": {"S": "Ada"}})
    item = dynamodb.get_item(TableName=table, Key={"userId": {"S": "u-1"}}, ConsistentRead=True)["Item"]
    assert item == {"userId": {"S": "u-1"}, "name": {"S": "Ada"}}

    s3 = moto.client("s3")
    bucket = unique("tp-uploads")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="uploads/ada.txt", Body=b"id proof")
    assert s3.get_object(Bucket=bucket, Key="uploads/ada.txt")["Body"].read() == b"id proof"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["uploads/ada.txt"]


def test_dataplane_env_names_the_running_servers(
    dataplane_env: dict[str, str], kafka: KafkaBroker, postgres: Postgres, moto: Moto
) -> None:
    assert dataplane_env["KAFKA_BOOTSTRAP_SERVERS"] == kafka.bootstrap_servers
    assert dataplane_env["DATABASE_URL"] == postgres.url
    assert dataplane_env["DATABASE_URL"].startswith("postgresql+psycopg://ticket:ticket@127.0.0.1:")
    assert dataplane_env["AWS_ENDPOINT_URL"] == moto.endpoint_url
    assert dataplane_env["AWS_REGION"] == "us-east-1"
    assert dataplane_env["AWS_ACCESS_KEY_ID"] == "testing"
    assert dataplane_env["AWS_SECRET_ACCESS_KEY"] == "testing"
