"""The parts of a TicketPlatform outside Kubernetes: Kafka topics and the analytics job.

Each step turns the spec into one condition and its slice of status. Clients are cached per
endpoint and shared by all reconcile loops; every call is idempotent, so a retry after a crash or a
restart adopts what is already there instead of creating it twice."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from . import metrics
from .model import AnalyticsStatus, TicketPlatformSpec, TopicState
from .status import CondResult
from .topics import REPLICATION_CHANGE_REFUSED, SHRINK_REFUSED, KafkaUnavailable, TopicManager
from .topics import TopicSpec as KafkaTopicSpec

NOT_CONFIGURED = "KafkaNotConfigured"


def desired_topics(spec: TicketPlatformSpec) -> list[KafkaTopicSpec]:
    topics = spec.kafka.topics
    return [
        KafkaTopicSpec(name=t.name, partitions=t.partitions, replication_factor=t.replicationFactor,
                       config=dict(t.config), field_path=f"spec.kafka.topics.{key}")
        for key, t in (("bookings", topics.bookings), ("results", topics.results))
    ]


class Subsystems:
    def __init__(self, topic_manager_factory: Callable[[str], TopicManager] = TopicManager):
        self._topic_manager_factory = topic_manager_factory
        self._topic_managers: dict[str, TopicManager] = {}
        self._lock = threading.Lock()

    def topic_manager(self, bootstrap_servers: str) -> TopicManager:
        with self._lock:
            if bootstrap_servers not in self._topic_managers:
                self._topic_managers[bootstrap_servers] = self._topic_manager_factory(bootstrap_servers)
            return self._topic_managers[bootstrap_servers]

    # ---- Kafka topics --------------------------------------------------------------------------
    def topics(self, spec: TicketPlatformSpec) -> tuple[CondResult, list[TopicState]]:
        wanted = desired_topics(spec)
        if not spec.kafka.bootstrapServers:
            return (CondResult("TopicsReady", "Unknown", NOT_CONFIGURED, "spec.kafka.bootstrapServers is not set."),
                    [TopicState(name=t.name, state="NotConfigured") for t in wanted])
        started = time.monotonic()
        try:
            results = self.topic_manager(spec.kafka.bootstrapServers).reconcile(wanted)
        except KafkaUnavailable as exc:
            return (CondResult("TopicsReady", "False", "KafkaUnavailable", str(exc)),
                    [TopicState(name=t.name, state="Unknown", message="broker unreachable") for t in wanted])
        finally:
            metrics.EXTERNAL_SECONDS.labels(target="kafka").observe(time.monotonic() - started)
        states = [TopicState(name=r.name, state=r.state, partitions=r.partitions,
                             replicationFactor=r.replication_factor, message=r.message) for r in results]
        refused = [r for r in results if r.state in (SHRINK_REFUSED, REPLICATION_CHANGE_REFUSED)]
        failed = [r for r in results if not r.ok and r not in refused]
        if refused:
            return CondResult("TopicsReady", "False", refused[0].state, "; ".join(r.message for r in refused)), states
        if failed:
            return CondResult("TopicsReady", "False", "TopicError", "; ".join(f"{r.name}: {r.message}" for r in failed)), states
        return CondResult("TopicsReady", "True", "TopicsReady", ", ".join(f"{r.name} ({r.partitions} partitions)" for r in results)), states

    def delete_topics(self, spec: TicketPlatformSpec) -> list[str]:
        """On TicketPlatform deletion: delete the topics only when deletionPolicy is Delete."""
        if spec.kafka.deletionPolicy != "Delete" or not spec.kafka.bootstrapServers:
            return []
        names = [t.name for t in desired_topics(spec)]
        self.topic_manager(spec.kafka.bootstrapServers).delete(names)
        return names

    # ---- analytics -----------------------------------------------------------------------------
    def analytics(self, namespace: str, name: str, spec: TicketPlatformSpec,
                  previous: dict[str, Any] | None) -> tuple[CondResult, AnalyticsStatus]:
        return (CondResult("AnalyticsReady", "Unknown", "NotYetManaged", "The analytics job is not managed by this operator version."),
                AnalyticsStatus(engine=spec.analytics.engine, state="NotManaged"))

    def cancel_analytics(self, namespace: str, name: str, spec: TicketPlatformSpec, previous: dict[str, Any] | None) -> None:
        return None
