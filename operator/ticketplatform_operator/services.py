"""The platform's services, each declared once. The model (spec.services.<name> and its defaults),
render (each service's environment, its migration, the relay), the status count ("N/M"), the local
stack (stack/services.sh) and the tests derive from this table.

A new service is one more entry here, plus its package under services/ (config.py, wsgi.py) and its
Dockerfile services/docker/<name>.Dockerfile. Plain data, no imports beyond the standard library:
the stack scripts run `python -m ticketplatform_operator.services`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]


class Setting(str, Enum):
    """A data-plane setting the operator passes from the spec; the value is its environment variable."""

    KAFKA_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"  # spec.kafka.bootstrapServers (left out while unset)
    BOOKINGS_TOPIC = "BOOKINGS_TOPIC"            # spec.kafka.topics.bookings.name
    RESULTS_TOPIC = "ANALYTICS_TOPIC"            # spec.kafka.topics.results.name
    USERS_TABLE = "USERS_TABLE"                  # the DynamoDB users table
    DEMO_SEED = "CATALOG_SEED"                   # spec.services.<name>.seedDemoData (read by the migration)

    @property
    def env(self) -> str:
        return self.value


def env_prefix(name: str) -> str:
    """user-service -> USER_SERVICE: the prefix of the variables that point at a service."""
    return name.upper().replace("-", "_")


@dataclass(frozen=True)
class Companion:
    """A single process that runs beside a service, from its image and configuration (the outbox
    relay: one per platform, never one per web worker)."""

    name: str    # its Deployment is <platform>-<name>
    module: str  # what it runs: python -m <module>
    port: int    # its health and metrics port


@dataclass(frozen=True)
class ServiceDef:
    name: str         # spec.services.<name>; its children <platform>-<name>; its image and Dockerfile
    package: str      # its Python package under services/
    title: str        # in the CRD: "Container image of the <title>."
    description: str  # in the CRD: spec.services.<name>
    port: int = 8080
    service_type: ServiceType = "ClusterIP"
    exposes: str = ""          # what a Service type other than ClusterIP exposes (for the CRD)
    autoscaling: bool = False  # an HPA by default
    calls: tuple[str, ...] = ()        # backends, each reached through <NAME>_URL
    takes: tuple[Setting, ...] = ()    # data-plane settings from the spec
    env: dict[str, str] = field(default_factory=dict)  # fixed settings
    # Settings it cannot run without in a cluster that the operator does not know: they come from
    # the Secret named by spec.services.<name>.secretRef.
    secrets: tuple[str, ...] = ()
    migrates: bool = False     # `python -m <package>.migrate` runs first, as an init container
    companion: Companion | None = None

    @property
    def url_env(self) -> str:
        """The variable through which a caller finds this service."""
        return f"{env_prefix(self.name)}_URL"


SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef(
        name="frontend", package="frontend",
        title="frontend (API gateway and browser UI)",
        description="The frontend: API gateway and browser UI.",
        service_type="LoadBalancer", exposes="the UI",
        calls=("user-service", "event-catalog", "booking-service"),
        # /api/analytics reads the windowed totals.
        takes=(Setting.KAFKA_BOOTSTRAP, Setting.RESULTS_TOPIC),
    ),
    ServiceDef(
        name="user-service", package="user_service",
        title="user service",
        description="The user service (DynamoDB).",
        autoscaling=True,
        takes=(Setting.USERS_TABLE,),
    ),
    ServiceDef(
        name="event-catalog", package="event_catalog",
        title="event catalog",
        description="The event catalog (PostgreSQL).",
        takes=(Setting.DEMO_SEED,),
        secrets=("DATABASE_URL",),
        migrates=True,
    ),
    ServiceDef(
        name="booking-service", package="booking_service",
        title="booking service",
        description="The booking service (PostgreSQL and Kafka).",
        autoscaling=True,
        calls=("user-service",),
        takes=(Setting.KAFKA_BOOTSTRAP, Setting.BOOKINGS_TOPIC),
        # The relay runs as its companion, not in every web worker.
        env={"OUTBOX_RELAY": "off"},
        secrets=("DATABASE_URL",),
        migrates=True,
        companion=Companion(name="outbox-relay", module="booking_service.relay", port=8080),
    ),
)

BY_NAME: dict[str, ServiceDef] = {s.name: s for s in SERVICES}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def start_order() -> list[ServiceDef]:
    """Backends before their callers (table order otherwise): the order the local stack waits in."""
    done: list[ServiceDef] = []
    while len(done) < len(SERVICES):
        ready = [s for s in SERVICES if s not in done and all(BY_NAME[c] in done for c in s.calls)]
        if not ready:
            raise ValueError(f"services call each other in a cycle: {[s.name for s in SERVICES if s not in done]}")
        done.append(ready[0])
    return done


def main() -> None:
    """One line per service, backends first: `<name> <ENV_PREFIX> <package> <migrates 0|1>`."""
    for s in start_order():
        print(s.name, env_prefix(s.name), s.package, int(s.migrates))


if __name__ == "__main__":
    main()
