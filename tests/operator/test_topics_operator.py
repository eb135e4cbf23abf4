"""Kafka topics owned by the operator, against the real broker and the real control plane."""
from __future__ import annotations

import json
import uuid

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from tests.fixtures.controlplane import wait_until
from tests.fixtures.operator import apply_tp, get_tp, tp_manifest, wait_phase


def _spec(kafka, suffix, partitions=3, config=None, policy="Retain"):
    return json.dumps({
        "kafka": {"bootstrapServers": kafka.bootstrap_servers, "deletionPolicy": policy, "topics": {
            "bookings": {"name": f"bookings-{suffix}", "partitions": partitions, "config": config or {}},
            "results": {"name": f"results-{suffix}", "partitions": 1},
        }},
        "analytics": {"enabled": False},
    })


def _admin(kafka):
    return KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers, client_id="test-topics-operator")


def _partitions(kafka, topic):
    admin = _admin(kafka)
    try:
        described = admin.describe_topics([topic])
        return len(described[0]["partitions"]) if described and not described[0].get("error_code") else None
    finally:
        admin.close()


def _topics(kafka):
    admin = _admin(kafka)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _topic_config(kafka, topic, key):
    admin = _admin(kafka)
    try:
        result = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, [key])], config_filter="all")
        return result["topic"][topic][key]["value"]
    finally:
        admin.close()


def _condition(tp, kind):
    return next(c for c in tp["status"]["conditions"] if c["type"] == kind)


def test_topics_created_grown_shrink_refused_and_configured(controlplane, operator, namespace, kafka):
    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix)))
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    assert _partitions(kafka, f"bookings-{suffix}") == 3 and _partitions(kafka, f"results-{suffix}") == 1
    assert [t["state"] for t in tp["status"]["topics"]] == ["Ready", "Ready"]
    assert _condition(tp, "TopicsReady")["status"] == "True"

    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix, partitions=5, config={"retention.ms": "3600000"})))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=60)
    assert _partitions(kafka, f"bookings-{suffix}") == 5
    assert _topic_config(kafka, f"bookings-{suffix}", "retention.ms") == "3600000"

    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix, partitions=2)))
    tp = wait_phase(cp, namespace, "tickets", "Degraded", timeout=60)
    cond = _condition(tp, "TopicsReady")
    assert cond["status"] == "False" and cond["reason"] == "ShrinkRefused"
    assert "spec.kafka.topics.bookings.partitions" in cond["message"]
    assert _partitions(kafka, f"bookings-{suffix}") == 5, "a refused shrink leaves the topic alone"


def test_deletion_policy_retain_and_delete(controlplane, operator, namespace, kafka):
    cp = controlplane
    keep, drop = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    apply_tp(cp, namespace, tp_manifest("keep", _spec(kafka, keep, policy="Retain")))
    apply_tp(cp, namespace, tp_manifest("drop", _spec(kafka, drop, policy="Delete")))
    wait_phase(cp, namespace, "keep", "Ready", timeout=120)
    wait_phase(cp, namespace, "drop", "Ready", timeout=120)
    cp.kubectl("-n", namespace, "delete", "tp", "keep", "drop", "--timeout=90s")
    topics = _topics(kafka)
    assert {f"bookings-{keep}", f"results-{keep}"} <= topics, "Retain keeps the topics"
    wait_until(lambda: not ({f"bookings-{drop}", f"results-{drop}"} & _topics(kafka)), timeout=30,
               message="topics deleted under deletionPolicy Delete")


def test_unreachable_broker_degrades_then_recovers(controlplane, operator, namespace, kafka):
    cp, suffix = controlplane, uuid.uuid4().hex[:8]
    apply_tp(cp, namespace, tp_manifest("tickets", _spec(kafka, suffix)))
    wait_phase(cp, namespace, "tickets", "Ready", timeout=120)
    with kafka.outage():
        tp = wait_phase(cp, namespace, "tickets", "Degraded", timeout=60)
        cond = _condition(tp, "TopicsReady")
        assert cond["reason"] == "KafkaUnavailable" and "unreachable" in cond["message"]
    tp = wait_phase(cp, namespace, "tickets", "Ready", timeout=90)
    assert _condition(tp, "TopicsReady")["status"] == "True"
    assert get_tp(cp, namespace, "tickets")["status"]["topics"][0]["state"] == "Ready"
