"""Kafka topic management: desired topics in, per-topic status out.

Pure of Kopf and Kubernetes: the operator builds `TopicSpec`s from `spec.kafka`, calls
`TopicManager.reconcile()` (in a worker thread: the admin client blocks) and copies the returned
`TopicStatus`es into the TicketPlatform's status.

Rules (DESIGN.md, "Details that serious operators get right"):

- A topic that already exists is adopted, never recreated.
- Partitions only grow. A spec with fewer partitions than the topic has, or with a different
  replication factor, is refused for that topic (state `ShrinkRefused` /
  `ReplicationChangeRefused`, with a message naming the spec field) and the topic is left exactly
  as it is: nothing else from that topic's spec is applied until the spec is fixed.
- Topic config: only the keys named in the spec are managed. They are compared with what the
  broker reports (describe_configs) and only the keys that differ are written, with an incremental
  alter (SET); a reconcile where nothing differs writes nothing. Keys the spec does not name are
  left alone (an adopted topic keeps the settings somebody else gave it).
- An unreachable broker raises `KafkaUnavailable` within a few seconds (bounded bootstrap and
  request timeouts). The admin client is then thrown away and rebuilt on the next call, so the
  manager recovers by itself when the broker returns.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kafka.errors as kerrors
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

log = logging.getLogger(__name__)

__all__ = [
    "KafkaUnavailable",
    "TopicOperationError",
    "TopicSpec",
    "TopicStatus",
    "TopicManager",
    "READY",
    "CREATING",
    "ERROR",
    "SHRINK_REFUSED",
    "REPLICATION_CHANGE_REFUSED",
    "default_admin_factory",
]

# TopicStatus.state values.
READY = "Ready"
CREATING = "Creating"  # accepted by the broker, leaders not elected yet
ERROR = "Error"  # the broker refused the request (bad config value, replication > brokers, ...)
SHRINK_REFUSED = "ShrinkRefused"
REPLICATION_CHANGE_REFUSED = "ReplicationChangeRefused"

_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_UNKNOWN_TOPIC = kerrors.UnknownTopicOrPartitionError.errno
_ALREADY_EXISTS = kerrors.TopicAlreadyExistsError.errno


class KafkaUnavailable(Exception):
    """The Kafka cluster could not be reached (or did not answer in time). Retry later."""

    def __init__(self, bootstrap_servers: str, cause: BaseException | str):
        self.bootstrap_servers = bootstrap_servers
        self.cause = cause
        if isinstance(cause, str):
            detail = cause
        elif isinstance(cause, kerrors.KafkaError):  # its str() already starts with the class name
            detail = str(cause)
        else:
            detail = f"{type(cause).__name__}: {cause}"
        super().__init__(f"Kafka at {bootstrap_servers} is unreachable: {detail}")


class TopicOperationError(Exception):
    """The broker refused an operation for a reason other than being unreachable."""


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """One desired topic. `field_path` is where it lives in the CR, used in messages."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)
    field_path: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TOPIC_NAME.match(self.name) or self.name in (".", ".."):
            raise ValueError(f"{self._field('name')}: invalid Kafka topic name {self.name!r}")
        if isinstance(self.partitions, bool) or not isinstance(self.partitions, int) or self.partitions < 1:
            raise ValueError(f"{self._field('partitions')}: must be an integer >= 1, got {self.partitions!r}")
        rf = self.replication_factor
        if isinstance(rf, bool) or not isinstance(rf, int) or rf < 1:
            raise ValueError(f"{self._field('replicationFactor')}: must be an integer >= 1, got {rf!r}")
        # Kafka reports every config value as a string; compare like with like.
        normalized = {str(k): _config_str(v) for k, v in dict(self.config or {}).items()}
        object.__setattr__(self, "config", normalized)
        if not self.field_path:
            object.__setattr__(self, "field_path", f"spec.kafka.topics[{self.name}]")

    def _field(self, leaf: str) -> str:
        base = self.field_path or f"spec.kafka.topics[{self.name}]"
        return f"{base}.{leaf}"

    @property
    def partitions_field(self) -> str:
        return self._field("partitions")

    @property
    def replication_field(self) -> str:
        return self._field("replicationFactor")

    def config_field(self, key: str) -> str:
        return self._field(f"config.{key}")


@dataclasses.dataclass
class TopicStatus:
    """What reconcile() found and did for one topic."""

    name: str
    state: str
    partitions: int | None = None  # as the broker has it now
    replication_factor: int | None = None  # as the broker has it now
    message: str = ""
    field: str | None = None  # the spec field at fault, if any
    changes: list[str] = dataclasses.field(default_factory=list)  # e.g. ["created"], ["partitions 3->6"]

    @property
    def ok(self) -> bool:
        return self.state == READY


def _config_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_unavailable(exc: BaseException) -> bool:
    """Errors that mean "cannot talk to the cluster right now", as opposed to a refusal."""
    if isinstance(exc, (OSError, TimeoutError, kerrors.UnknownBrokerIdError)):
        return True
    if isinstance(exc, kerrors.KafkaError):
        # Connection, timeout, node-not-ready, not-controller, cancelled, ... (all retriable).
        # UnknownTopicOrPartition is retriable too but never escapes: it is read from responses.
        return bool(getattr(exc, "retriable", False))
    # kafka-python raises a bare RuntimeError when it cannot find the controller.
    return isinstance(exc, RuntimeError) and "controller" in str(exc).lower()


def _preflight(servers: list[str], timeout_s: float) -> None:
    """A plain TCP connect to the bootstrap servers: fails in milliseconds on a refused port, where
    the admin client's own bootstrap retries with back-off until its timeout."""
    errors = []
    for server in servers:
        host, _, port = server.rpartition(":")
        host = host.strip("[]") or "localhost"
        try:
            socket.create_connection((host, int(port or 9092)), timeout=timeout_s).close()
            return
        except (OSError, ValueError) as exc:
            errors.append(f"{server}: {exc}")
    raise KafkaUnavailable(",".join(servers), "; ".join(errors))


class _ClosingKafkaAdminClient(KafkaAdminClient):
    """KafkaAdminClient that cleans up after a failed bootstrap.

    kafka-python 3.0 starts its IO thread before bootstrapping in __init__; when the bootstrap
    times out the half-built client is never returned, so nobody can close it and the thread and
    its selector leak (one per retry while the broker is down).
    """

    def __init__(self, **configs: Any):
        try:
            super().__init__(**configs)
        except BaseException:
            for closer in ("_metrics", "_client"):
                try:
                    getattr(self, closer).close()
                except Exception:  # noqa: BLE001
                    pass
            try:
                self._net.stop()
            except Exception:  # noqa: BLE001
                pass
            raise


def default_admin_factory(**configs: Any) -> KafkaAdminClient:
    """The admin client TopicManager uses unless given another factory (same keyword arguments)."""
    return _ClosingKafkaAdminClient(**configs)


class TopicManager:
    """Creates, grows, configures and deletes Kafka topics with kafka-python's admin client.

    Thread-safe (one call at a time). Use as a context manager or call close().
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        request_timeout_ms: int = 8000,
        admin_factory: Callable[..., Any] | None = None,
        *,
        connect_timeout_ms: int = 5000,
        client_id: str = "ticketplatform-operator",
        ready_timeout_ms: int = 5000,
    ):
        if isinstance(bootstrap_servers, str):
            servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
        else:
            servers = [s.strip() for s in bootstrap_servers if s and s.strip()]
        if not servers:
            raise ValueError("bootstrap_servers is empty")
        self.bootstrap_servers = ",".join(servers)
        self._servers = servers
        self.request_timeout_ms = int(request_timeout_ms)
        self.connect_timeout_ms = int(connect_timeout_ms)
        self.ready_timeout_ms = int(ready_timeout_ms)
        self.client_id = client_id
        self._admin_factory = admin_factory or default_admin_factory
        self._admin: Any = None
        self._lock = threading.RLock()
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> TopicManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_admin()

    def _drop_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001 - closing a broken client must not mask the cause
                log.debug("closing the Kafka admin client failed", exc_info=True)

    def _get_admin(self) -> Any:
        if self._closed:
            raise RuntimeError("TopicManager is closed")
        if self._admin is None:
            _preflight(self._servers, min(self.connect_timeout_ms / 1000, 3.0))
            try:
                self._admin = self._admin_factory(
                    bootstrap_servers=self._servers,
                    client_id=self.client_id,
                    request_timeout_ms=self.request_timeout_ms,
                    bootstrap_timeout_ms=self.connect_timeout_ms,
                    # recover quickly once the broker is back
                    reconnect_backoff_max_ms=1000,
                )
            except Exception as exc:
                if _is_unavailable(exc):
                    raise KafkaUnavailable(self.bootstrap_servers, exc) from exc
                raise
        return self._admin

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One admin call; connectivity failures drop the client and become KafkaUnavailable."""
        admin = self._get_admin()
        try:
            return getattr(admin, method)(*args, **kwargs)
        except KafkaUnavailable:
            raise
        except Exception as exc:
            if _is_unavailable(exc):
                log.warning("Kafka admin call %s failed, dropping the client: %s", method, exc)
                self._drop_admin()
                raise KafkaUnavailable(self.bootstrap_servers, exc) from exc
            raise

    # -- public API -------------------------------------------------------------------------

    def reconcile(self, desired: Iterable[TopicSpec]) -> list[TopicStatus]:
        """Bring the cluster in line with `desired`; one status per spec, in order.

        Raises KafkaUnavailable when the cluster cannot be reached; per-topic refusals are
        reported in the statuses, not raised.
        """
        specs = list(desired)
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ValueError(f"{spec.field_path}.name: topic {spec.name!r} is listed twice")
            seen.add(spec.name)
        if not specs:
            return []
        with self._lock:
            return self._reconcile(specs)

    def delete(self, names: Iterable[str]) -> None:
        """Delete the named topics; topics that do not exist are fine (idempotent)."""
        names = list(dict.fromkeys(names))
        if not names:
            return
        with self._lock:
            result = self._call("delete_topics", names, timeout_ms=self.request_timeout_ms, raise_errors=False)
            failures = []
            for topic in result.get("topics", []):
                code = topic.get("error_code", 0)
                if code in (0, _UNKNOWN_TOPIC):
                    continue
                err = kerrors.for_code(code)
                if getattr(err, "retriable", False):
                    self._drop_admin()
                    raise KafkaUnavailable(self.bootstrap_servers, f"deleting {topic.get('name')}: {err.__name__}")
                failures.append(f"{topic.get('name')}: {err.__name__} {topic.get('error_message') or ''}".strip())
            if failures:
                raise TopicOperationError("cannot delete topics: " + "; ".join(failures))
            # Deletion is asynchronous in Kafka; wait (bounded) until metadata no longer lists them,
            # so a following reconcile does not mistake a dying topic for one to adopt.
            deadline = time.monotonic() + self.ready_timeout_ms / 1000
            while time.monotonic() < deadline:
                if not self._existing(names):
                    return
                time.sleep(0.2)
            log.info("topics %s still listed after delete; Kafka finishes deleting them asynchronously", names)

    # -- internals --------------------------------------------------------------------------

    def _existing(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """name -> {partitions, replication_factor, not_ready} for the topics that exist."""
        if not names:
            return {}
        topics = self._call("describe_topics", names)
        out: dict[str, dict[str, Any]] = {}
        for topic in topics:
            name = topic.get("name")
            code = topic.get("error_code", 0)
            if name not in names or code == _UNKNOWN_TOPIC:
                continue
            partitions = topic.get("partitions") or []
            replicas = [len(p.get("replica_nodes") or []) for p in partitions]
            not_ready = None
            if code != 0:
                not_ready = kerrors.for_code(code).__name__
            elif not partitions or any(p.get("leader_id", -1) < 0 for p in partitions):
                not_ready = "partition leaders not elected yet"
            out[name] = {
                "partitions": len(partitions) if partitions else None,
                "replication_factor": max(replicas) if replicas else None,
                "not_ready": not_ready,
            }
        return out

    def _reconcile(self, specs: list[TopicSpec]) -> list[TopicStatus]:
        names = [s.name for s in specs]
        existing = self._existing(names)
        statuses: dict[str, TopicStatus] = {}

        # 1. Create the missing ones (one request), adopting any that appear meanwhile.
        missing = [s for s in specs if s.name not in existing]
        if missing:
            statuses.update(self._create(missing))
            raced = [n for n, st in statuses.items() if st.state == "_adopt"]
            if raced:
                for n in raced:
                    del statuses[n]
                existing.update(self._existing(raced))

        # 2. Existing topics: refuse irreversible changes, grow partitions, then config.
        to_configure: list[TopicSpec] = []
        for spec in specs:
            if spec.name in statuses:
                continue
            info = existing.get(spec.name)
            if info is None:  # vanished between calls
                statuses[spec.name] = TopicStatus(spec.name, CREATING, message="topic is being created or deleted")
                continue
            status = TopicStatus(
                spec.name,
                READY,
                partitions=info["partitions"],
                replication_factor=info["replication_factor"],
                changes=["adopted"] if spec.name in {s.name for s in missing} else [],
            )
            statuses[spec.name] = status
            if not self._check_irreversible(spec, status):
                continue
            if info["partitions"] is not None and spec.partitions > info["partitions"]:
                self._grow(spec, status)
                if status.state != READY:
                    continue
            to_configure.append(spec)
            if info["not_ready"] and status.state == READY:
                status.state, status.message = CREATING, info["not_ready"]

        if to_configure:
            self._configure(to_configure, statuses)

        return [statuses[s.name] for s in specs]

    def _create(self, specs: list[TopicSpec]) -> dict[str, TopicStatus]:
        request = {
            s.name: {
                "num_partitions": s.partitions,
                "replication_factor": s.replication_factor,
                "configs": dict(s.config),
            }
            for s in specs
        }
        by_name = {s.name: s for s in specs}
        result = self._call("create_topics", request, timeout_ms=self.request_timeout_ms, raise_errors=False)
        statuses: dict[str, TopicStatus] = {}
        created: list[str] = []
        for topic in result.get("topics", []):
            name = topic.get("name")
            spec = by_name.get(name)
            if spec is None:
                continue
            code = topic.get("error_code", 0)
            if code == 0:
                created.append(name)
                statuses[name] = TopicStatus(
                    name, READY, spec.partitions, spec.replication_factor, message="created", changes=["created"]
                )
                log.info("created topic %s (partitions=%s, replication=%s)", name, spec.partitions,
                         spec.replication_factor)
            elif code == _ALREADY_EXISTS:
                statuses[name] = TopicStatus(name, "_adopt")  # resolved by the caller
            else:
                err = kerrors.for_code(code)
                if getattr(err, "retriable", False) and code != _UNKNOWN_TOPIC:
                    self._drop_admin()
                    raise KafkaUnavailable(self.bootstrap_servers, f"creating {name}: {err.__name__}")
                detail = topic.get("error_message") or getattr(err, "description", "")
                blamed = self._blame(spec, err, detail)
                statuses[name] = TopicStatus(
                    name,
                    ERROR,
                    message=f"{blamed}: cannot create topic {name}: {err.__name__}: {detail}",
                    field=blamed,
                )
        for spec in specs:  # a topic the broker did not answer for
            statuses.setdefault(spec.name, TopicStatus(spec.name, CREATING, message="no answer for this topic yet"))
        if created:
            # Ready means usable: visible in the broker's metadata with a leader for every partition.
            def all_ready() -> bool:
                infos = self._existing(created)
                return len(infos) == len(created) and not any(i["not_ready"] for i in infos.values())

            if not self._await(all_ready):
                for name in created:
                    statuses[name].state = CREATING
                    statuses[name].message = "created; partition leaders not elected yet"
        return statuses

    @staticmethod
    def _blame(spec: TopicSpec, err: type, detail: str = "") -> str:
        """The spec field a broker refusal is about."""
        if err is kerrors.InvalidPartitionsError:
            return spec.partitions_field
        if err in (kerrors.InvalidReplicationFactorError, kerrors.InvalidReplicationAssignmentError):
            return spec.replication_field
        if err is kerrors.InvalidConfigurationError and spec.config:
            named = [k for k in spec.config if k in (detail or "")]
            return spec.config_field(max(named, key=len)) if named else spec._field("config")
        return spec.field_path

    def _check_irreversible(self, spec: TopicSpec, status: TopicStatus) -> bool:
        problems: list[tuple[str, str, str]] = []
        if status.partitions is not None and spec.partitions < status.partitions:
            problems.append((
                SHRINK_REFUSED,
                spec.partitions_field,
                f"cannot shrink from {status.partitions} to {spec.partitions}; Kafka partitions only grow",
            ))
        if status.replication_factor is not None and spec.replication_factor != status.replication_factor:
            problems.append((
                REPLICATION_CHANGE_REFUSED,
                spec.replication_field,
                f"cannot change the replication factor from {status.replication_factor} to "
                f"{spec.replication_factor}; reassigning replicas is not done by the operator",
            ))
        if not problems:
            return True
        status.state = problems[0][0]
        status.field = problems[0][1]
        status.message = "; ".join(f"{fld}: {msg}" for _, fld, msg in problems) + "; the topic is left unchanged"
        log.warning("topic %s: %s", spec.name, status.message)
        return False

    def _grow(self, spec: TopicSpec, status: TopicStatus) -> None:
        before = status.partitions
        result = self._call(
            "create_partitions", {spec.name: spec.partitions}, timeout_ms=self.request_timeout_ms, raise_errors=False
        )
        for res in getattr(result, "results", []) or []:
            code = getattr(res, "error_code", 0)
            if code == 0:
                continue
            err = kerrors.for_code(code)
            if getattr(err, "retriable", False) and code != _UNKNOWN_TOPIC:
                self._drop_admin()
                raise KafkaUnavailable(self.bootstrap_servers, f"growing {spec.name}: {err.__name__}")
            status.state = ERROR
            status.field = spec.partitions_field
            status.message = (f"{spec.partitions_field}: cannot grow from {before} to {spec.partitions}: "
                              f"{err.__name__}: {getattr(res, 'error_message', '') or ''}").rstrip(": ")
            return
        status.partitions = spec.partitions
        status.changes.append(f"partitions {before}->{spec.partitions}")
        log.info("topic %s: partitions %s -> %s", spec.name, before, spec.partitions)

        def grown() -> bool:
            info = self._existing([spec.name]).get(spec.name)
            return bool(info) and info["partitions"] == spec.partitions and not info["not_ready"]

        if not self._await(grown):
            status.state = CREATING
            status.message = f"partitions {before}->{spec.partitions} accepted, new partitions not ready yet"

    def _configure(self, specs: list[TopicSpec], statuses: dict[str, TopicStatus]) -> None:
        wanted = [s for s in specs if s.config]
        if not wanted:
            return
        resources = [ConfigResource(ConfigResourceType.TOPIC, s.name, list(s.config)) for s in wanted]
        described = self._call("describe_configs", resources, config_filter="all")
        topic_configs = described.get("topic", {}) if isinstance(described, dict) else {}
        for spec in wanted:
            status = statuses[spec.name]
            current = topic_configs.get(spec.name, {})
            unknown = [k for k in spec.config if k not in current]
            if unknown:
                status.state = ERROR
                status.field = spec.config_field(unknown[0])
                status.message = "; ".join(f"{spec.config_field(k)}: unknown topic config" for k in unknown)
                continue
            diff = {k: v for k, v in spec.config.items() if (current[k] or {}).get("value") != v}
            if not diff:
                continue
            result = self._call(
                "alter_configs",
                [ConfigResource(ConfigResourceType.TOPIC, spec.name, dict(diff))],
                raise_on_unknown=False,
                incremental=True,
            )
            outcome = (result.get("topic", {}) if isinstance(result, dict) else {}).get(spec.name, "OK")
            if outcome != "OK":
                keys = ", ".join(sorted(diff))
                status.state = ERROR
                status.field = spec.config_field(sorted(diff)[0]) if len(diff) == 1 else spec._field("config")
                status.message = f"{status.field}: cannot set {keys}: {outcome}"
                continue
            status.changes.append("config " + ", ".join(f"{k}={v}" for k, v in sorted(diff.items())))
            log.info("topic %s: config %s", spec.name, diff)
            if not self._await(lambda: self._config_visible(spec.name, diff)):
                status.message = "config change accepted by the controller, not yet visible on the broker"

    def _config_visible(self, name: str, diff: dict[str, str]) -> bool:
        described = self._call("describe_configs", [ConfigResource(ConfigResourceType.TOPIC, name, list(diff))],
                               config_filter="all")
        current = described.get("topic", {}).get(name, {})
        return all((current.get(k) or {}).get("value") == v for k, v in diff.items())

    def _await(self, predicate: Callable[[], bool]) -> bool:
        """Poll until predicate() (bounded by ready_timeout_ms). KRaft applies a change on the
        controller first; the broker's metadata cache, which answers describe calls, follows a
        few milliseconds later. Waiting here keeps "Ready" truthful and the next reconcile a no-op."""
        deadline = time.monotonic() + self.ready_timeout_ms / 1000
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
