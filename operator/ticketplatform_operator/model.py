"""The TicketPlatform API. This pydantic model is the single source of truth: the CRD's schema is
generated from it (crd.py), the operator parses every object with it, and `render` consumes it."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from kubernetes.utils.quantity import parse_quantity
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, create_model, field_validator, model_validator

from .services import SERVICES, ServiceDef, ServiceType, Setting

GROUP = "ticketing.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TicketPlatform"
PLURAL = "ticketplatforms"
SINGULAR = "ticketplatform"
SHORT_NAMES = ["tp"]

SERVICE_NAMES = tuple(s.name for s in SERVICES)  # declared once, in services.py

# An OCI image reference: [registry[:port]/]path[:tag][@sha256:digest], lower-case path components.
IMAGE_PATTERN = (
    r"^[a-z0-9]+([._-][a-z0-9]+)*(\.[a-z0-9]+([._-][a-z0-9]+)*)*(:[0-9]+)?"
    r"(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
TOPIC_NAME_PATTERN = r"^[a-zA-Z0-9._-]{1,249}$"
# Kubernetes label keys ([prefix/]name) and values, as the apiserver validates them.
# ([.] rather than an escaped dot: the key pattern also goes into a CEL string literal.)
LABEL_KEY_PATTERN = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                     r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# A percentage is at most 100%, as the apiserver checks it on a PodDisruptionBudget.
INT_OR_PERCENT_PATTERN = r"^(100|[0-9]{1,2})%$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/ticketplatform"
DEFAULT_IMAGE_TAG = "0.1.0"


def _cel(rule: str, message_expression: str, field_path: str | None = None, plain: bool = False) -> dict[str, str]:
    """One CEL rule for the CRD's x-kubernetes-validations; fieldPath makes the error name the field.
    `plain` uses a fixed message where a messageExpression would exceed the CEL cost budget."""
    out = {"rule": rule, ("message" if plain else "messageExpression"): message_expression}
    if field_path:
        out["fieldPath"] = field_path
    return out


class ApiModel(BaseModel):
    # Unknown fields are errors, as they are at the apiserver (kubectl's strict field validation).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Quantities(ApiModel):
    cpu: str = Field(pattern=QUANTITY_PATTERN, max_length=32, description="CPU quantity, e.g. 100m or 1.")
    memory: str = Field(pattern=QUANTITY_PATTERN, max_length=32, description="Memory quantity, e.g. 128Mi or 1Gi.")


class Resources(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("quantity(self.requests.cpu).compareTo(quantity(self.limits.cpu)) <= 0",
                     "'requests.cpu (' + self.requests.cpu + ') must not exceed limits.cpu (' + self.limits.cpu + ')'",
                     ".requests.cpu"),
                _cel("quantity(self.requests.memory).compareTo(quantity(self.limits.memory)) <= 0",
                     "'requests.memory (' + self.requests.memory + ') must not exceed limits.memory (' + self.limits.memory + ')'",
                     ".requests.memory"),
            ]
        }
    )
    requests: Quantities = Field(
        default_factory=lambda: Quantities(cpu="100m", memory="128Mi"),
        description="Resources the scheduler reserves for each pod.",
    )
    limits: Quantities = Field(
        default_factory=lambda: Quantities(cpu="500m", memory="512Mi"),
        description="Upper bound of resources each pod may use.",
    )

    @model_validator(mode="after")
    def _requests_within_limits(self) -> "Resources":
        for res in ("cpu", "memory"):
            req, lim = getattr(self.requests, res), getattr(self.limits, res)
            if parse_quantity(req) > parse_quantity(lim):
                raise ValueError(f"requests.{res} ({req}) must not exceed limits.{res} ({lim})")
        return self


class Autoscaling(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("self.minReplicas <= self.maxReplicas",
                     "minReplicas must not exceed maxReplicas", ".minReplicas", plain=True),
            ]
        }
    )
    enabled: bool = Field(default=False, description="Create a HorizontalPodAutoscaler for this service; the operator then leaves spec.replicas to it.")
    minReplicas: int = Field(default=2, ge=1, le=1000, description="Lower bound of replicas the autoscaler keeps.")
    maxReplicas: int = Field(default=10, ge=1, le=1000, description="Upper bound of replicas the autoscaler may scale to.")
    targetCPUUtilization: int = Field(default=70, ge=1, le=100, description="Average CPU utilisation (percent of requests) the autoscaler aims for.")
    scaleDownStabilizationSeconds: int = Field(default=300, ge=0, le=3600, description="How long the autoscaler waits after load drops before removing replicas (behavior.scaleDown.stabilizationWindowSeconds), in seconds.")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> "Autoscaling":
        if self.minReplicas > self.maxReplicas:
            raise ValueError(f"minReplicas ({self.minReplicas}) must not exceed maxReplicas ({self.maxReplicas})")
        return self


def _autoscaling_on() -> Autoscaling:
    return Autoscaling(enabled=True)


class Toleration(ApiModel):
    """A toleration of a node taint, as in a pod spec."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("self.operator != 'Exists' || !has(self.value) || self.value == ''",
                     "value must be empty when operator is Exists", ".value", plain=True),
                _cel("(has(self.key) && self.key != '') || self.operator == 'Exists'",
                     "operator must be Exists when key is empty", ".operator", plain=True),
                _cel("!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                     "tolerationSeconds requires effect NoExecute", ".tolerationSeconds", plain=True),
            ]
        }
    )
    key: str | None = Field(default=None, pattern=LABEL_KEY_PATTERN, max_length=316, description="Taint key the toleration applies to; empty with operator Exists matches every taint.")
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="Equal (key and value match) or Exists (any value).")
    value: str | None = Field(default=None, pattern=LABEL_VALUE_PATTERN, max_length=63, description="Taint value to match when operator is Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(default=None, description="Taint effect to match; empty matches every effect.")
    tolerationSeconds: int | None = Field(default=None, ge=0, le=2147483647, description="With effect NoExecute: how long the pod stays bound after the taint appears, in seconds.")

    @model_validator(mode="after")
    def _consistent(self) -> "Toleration":
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty when operator is Exists")
        if not self.key and self.operator != "Exists":
            raise ValueError("operator must be Exists when key is empty")
        if self.tolerationSeconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds requires effect NoExecute")
        return self


SpreadPolicy = Literal["ScheduleAnyway", "DoNotSchedule"]


class TopologySpread(ApiModel):
    """Spread of a service's replicas (rendered as topologySpreadConstraints over the service's pods)."""

    nodes: SpreadPolicy | None = Field(default=None, description="Spread across nodes (kubernetes.io/hostname): ScheduleAnyway prefers it, DoNotSchedule requires it. Unset: no constraint.")
    zones: SpreadPolicy | None = Field(default=None, description="Spread across zones (topology.kubernetes.io/zone): ScheduleAnyway prefers it, DoNotSchedule requires it. Unset: no constraint.")
    maxSkew: int = Field(default=1, ge=1, le=100, description="Largest allowed difference in replica count between two nodes (or zones).")


def _no_default(schema: dict[str, Any]) -> None:
    # An unset int-or-string has no default in the CRD (a null default would be invalid there).
    schema.pop("default", None)


# An absolute count or a percentage ("50%"), like a PodDisruptionBudget's own fields.
IntOrPercent = Annotated[int | str | None, WithJsonSchema({"x-kubernetes-int-or-string": True})]


def _int_or_percent_rule(field: str) -> dict[str, str]:
    return _cel(f"!has(self.{field}) || (type(self.{field}) == int ? int(self.{field}) >= 0 : "
                f"string(self.{field}).matches('{INT_OR_PERCENT_PATTERN}'))",
                f"{field} must be a non-negative integer or a percentage such as 50%", f".{field}", plain=True)


class DisruptionBudget(ApiModel):
    """A PodDisruptionBudget for the service's pods: set exactly one of the two fields."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("has(self.minAvailable) != has(self.maxUnavailable)",
                     "set exactly one of minAvailable and maxUnavailable", None, plain=True),
                _int_or_percent_rule("minAvailable"),
                _int_or_percent_rule("maxUnavailable"),
            ]
        }
    )
    minAvailable: IntOrPercent = Field(default=None, json_schema_extra=_no_default, description="Pods that must stay available during voluntary disruptions (node drains): a count, or a percentage such as 50%.")
    maxUnavailable: IntOrPercent = Field(default=None, json_schema_extra=_no_default, description="Pods that may be unavailable during voluntary disruptions (node drains): a count, or a percentage such as 25%.")

    @field_validator("minAvailable", "maxUnavailable")
    @classmethod
    def _int_or_percent(cls, value: int | str | None) -> int | str | None:
        import re

        if value is None or (isinstance(value, int) and value >= 0):
            return value
        if isinstance(value, str) and re.match(INT_OR_PERCENT_PATTERN, value):
            return value
        raise ValueError("must be a non-negative integer or a percentage such as 50%")

    @model_validator(mode="after")
    def _exactly_one(self) -> "DisruptionBudget":
        if (self.minAvailable is None) == (self.maxUnavailable is None):
            raise ValueError("set exactly one of minAvailable and maxUnavailable")
        return self


class Placement(ApiModel):
    """Where pods run. spec.placement applies to every service; a field set under
    spec.services.<name>.placement replaces that field for the one service (unset fields inherit)."""

    nodeSelector: dict[str, Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=63)]] | None = Field(
        default=None,
        description="Node labels the pods require, e.g. {kubernetes.io/arch: amd64}.",
        json_schema_extra={"maxProperties": 64, "x-kubernetes-validations": [
            _cel("self.all(k, k.size() <= 316 && k.matches('" + LABEL_KEY_PATTERN + "'))",
                 "'node selector keys must be label keys ([prefix/]name)'")]},
    )
    tolerations: list[Toleration] | None = Field(default=None, max_length=32, description="Taints the pods tolerate, e.g. to run on dedicated or fake (kwok) nodes.")
    spread: TopologySpread | None = Field(default=None, description="Spread of replicas across nodes and zones.")
    podDisruptionBudget: DisruptionBudget | None = Field(default=None, description="A PodDisruptionBudget per service (minAvailable or maxUnavailable); unset: none.")

    @field_validator("nodeSelector")
    @classmethod
    def _label_keys(cls, selector: dict[str, str] | None) -> dict[str, str] | None:
        import re

        bad = [k for k in selector or {} if len(k) > 316 or not re.match(LABEL_KEY_PATTERN, k)]
        if bad:
            raise ValueError(f"node selector keys must be label keys ([prefix/]name): {', '.join(bad)}")
        return selector

    def merged(self, override: "Placement | None") -> "Placement":
        """This (platform-wide) placement with the fields `override` sets replacing its own."""
        if override is None:
            return self
        changes = {name: getattr(override, name) for name in type(self).model_fields if getattr(override, name) is not None}
        return self.model_copy(update=changes)


class ServiceSpec(ApiModel):
    """Settings shared by the services; each one's defaults come from its declaration (services.py)."""

    image: str = Field(pattern=IMAGE_PATTERN, description="Container image, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/ticketplatform/booking-service:1.4.2.")
    replicas: int = Field(default=2, ge=0, le=1000, description="Replica count, used when autoscaling is off.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the container listens on.")
    serviceType: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(default="ClusterIP", description="Type of the Kubernetes Service in front of the pods.")
    nodePort: int | None = Field(default=None, ge=30000, le=32767, description="Fixed node port of the Service when serviceType is NodePort or LoadBalancer; unset: Kubernetes picks one.")
    resources: Resources = Field(default_factory=Resources, description="CPU and memory requests and limits of each pod.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment variables for the container; they override the ones the operator sets.",
        json_schema_extra={"maxProperties": 128, "x-kubernetes-validations": [
            _cel("self.all(k, k.matches('" + ENV_NAME_PATTERN + "'))",
                 "'environment variable names must match " + ENV_NAME_PATTERN + "'")]},
    )
    secretRef: str | None = Field(default=None, pattern=SECRET_NAME_PATTERN, description="Name of a Secret in the same namespace whose keys become environment variables (credentials such as DATABASE_URL).")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Horizontal pod autoscaling on CPU.")
    serviceAccountName: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, description="ServiceAccount the pods run as, e.g. one annotated with the IAM role Terraform made for this service (IRSA); the operator does not create it.")
    placement: Placement = Field(default_factory=Placement, description="Placement of this service's pods; each field set here replaces the same field of spec.placement.")

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        import re

        bad = [k for k in env if not re.match(ENV_NAME_PATTERN, k)]
        if bad:
            raise ValueError(f"environment variable names must match {ENV_NAME_PATTERN}: {', '.join(bad)}")
        return env


def _image(service: str) -> str:
    return f"{DEFAULT_IMAGE_REPOSITORY}/{service}:{DEFAULT_IMAGE_TAG}"


class DatabaseServiceSpec(ServiceSpec):
    """A service with a PostgreSQL schema: its migration runs in an init container of each pod."""

    migrationSecretRef: str | None = Field(default=None, pattern=SECRET_NAME_PATTERN, description="Secret whose keys become the environment of the migration init container (a DATABASE_URL with the schema owner's role); unset: secretRef.")


def _attribute(name: str) -> str:
    """spec.services.user-service is Services.user_service in Python."""
    return name.replace("-", "_")


def _service_spec(svc: ServiceDef) -> type[ServiceSpec]:
    """spec.services.<name>: the shared settings with this service's defaults, from its declaration."""
    fields: dict[str, Any] = {
        "image": (str, Field(default=_image(svc.name), pattern=IMAGE_PATTERN, description=f"Container image of the {svc.title}.")),
    }
    if svc.port != ServiceSpec.model_fields["port"].default:
        fields["port"] = (int, Field(default=svc.port, ge=1, le=65535, description="Port the container listens on."))
    if svc.service_type != "ClusterIP":
        fields["serviceType"] = (ServiceType, Field(default=svc.service_type, description=f"Type of the Kubernetes Service in front of the pods; {svc.service_type} exposes {svc.exposes}."))
    if svc.autoscaling:
        on = _autoscaling_on()
        fields["autoscaling"] = (Autoscaling, Field(default_factory=_autoscaling_on, description=f"Horizontal pod autoscaling on CPU; on by default ({on.minReplicas} to {on.maxReplicas} replicas)."))
    if Setting.DEMO_SEED in svc.takes:
        fields["seedDemoData"] = (bool, Field(default=False, description="Fill an empty catalogue with demo events when the schema is migrated (for demos and local runs)."))
    name = "".join(part.title() for part in svc.name.split("-")) + "Spec"  # e.g. BookingServiceSpec
    return create_model(name, __base__=DatabaseServiceSpec if svc.migrates else ServiceSpec, __module__=__name__,
                        __doc__=svc.description, **fields)


SERVICE_SPECS: dict[str, type[ServiceSpec]] = {svc.name: _service_spec(svc) for svc in SERVICES}


class _ServicesBase(ApiModel):
    def by_name(self) -> dict[str, ServiceSpec]:
        return {name: getattr(self, _attribute(name)) for name in SERVICE_NAMES}


# spec.services: one field per service, named as the service (spec.services.booking-service).
Services = create_model("Services", __base__=_ServicesBase, __module__=__name__, **{
    _attribute(svc.name): (SERVICE_SPECS[svc.name], Field(default_factory=SERVICE_SPECS[svc.name], alias=svc.name, description=svc.description))
    for svc in SERVICES
})


class MonitoringSpec(ApiModel):
    enabled: bool = Field(default=True, description="Create a ServiceMonitor (Prometheus Operator) for the services' /metrics.")
    interval: str = Field(default="30s", pattern=r"^[0-9]+(s|m)$", description="Scrape interval, e.g. 30s.")


class TopicSpec(ApiModel):
    name: str = Field(pattern=TOPIC_NAME_PATTERN, description="Kafka topic name.")
    partitions: int = Field(default=3, ge=1, le=10000, description="Partition count; partitions can only grow.")
    replicationFactor: int = Field(default=1, ge=1, le=32, description="Replication factor; it cannot change once the topic exists.")
    config: dict[str, str] = Field(default_factory=dict, description="Topic configuration, e.g. retention.ms.")


class KafkaTopics(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("self.bookings.name != self.results.name",
                     "'bookings and results must be two different topics, both are named ' + self.results.name",
                     ".results.name"),
            ]
        }
    )
    bookings: TopicSpec = Field(default_factory=lambda: TopicSpec(name="ticket-bookings"), description="Topic the booking service publishes accepted bookings to.")
    results: TopicSpec = Field(default_factory=lambda: TopicSpec(name="analytics-results"), description="Topic the analytics job writes windowed totals to.")

    @model_validator(mode="after")
    def _two_topics(self) -> "KafkaTopics":
        if self.bookings.name == self.results.name:
            raise ValueError(f"bookings and results must be two different topics, both are named {self.results.name}")
        return self


class KafkaSpec(ApiModel):
    bootstrapServers: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+:[0-9]+(,[A-Za-z0-9._-]+:[0-9]+)*$", description="Comma-separated Kafka bootstrap servers (host:port), e.g. the MSK brokers. Unset: no Kafka, so topics and the analytics job are reported NotConfigured.")
    topics: KafkaTopics = Field(default_factory=KafkaTopics, description="The topics the operator creates and grows.")
    deletionPolicy: Literal["Retain", "Delete"] = Field(default="Retain", description="What happens to the topics when the TicketPlatform is deleted.")


class DataprocSpec(ApiModel):
    projectId: str = Field(min_length=1, description="Google Cloud project of the Dataproc cluster.")
    region: str = Field(default="us-central1", min_length=1, description="Region of the Dataproc cluster.")
    cluster: str = Field(min_length=1, description="Name of the Dataproc cluster (with the Flink component) that Terraform created.")
    jobFileUri: str = Field(pattern=r"^gs://.+", description="GCS URI of the analytics job file, e.g. gs://bucket/analytics_job.py.")
    connectorJarUri: str = Field(pattern=r"^gs://.+\.jar$", description="GCS URI of the Flink Kafka connector jar.")


class KubernetesAnalyticsSpec(ApiModel):
    """The analytics job as a pod in the platform's namespace (engine kubernetes)."""

    image: str = Field(default=_image("analytics-job"), pattern=IMAGE_PATTERN, description="Container image of the analytics job (PyFlink with the Kafka connector; its default command runs the job, configured through TP_ANALYTICS_* environment variables).")
    resources: Resources = Field(
        default_factory=lambda: Resources(requests=Quantities(cpu="250m", memory="1Gi"),
                                          limits=Quantities(cpu="2", memory="1536Mi")),
        description="CPU and memory of the job's pod: Flink's JobManager and TaskManager share one JVM, so about 1Gi of memory is a sensible request.",
    )
    checkpointClaimName: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253, description="Name of an existing PersistentVolumeClaim (ReadWriteOnce is enough) for the job's checkpoints, so they survive the pod being replaced. Unset: an emptyDir, which keeps checkpoints across container restarts only; a new pod resumes from the consumer-group offsets the last checkpoint committed.")


class AnalyticsSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel("self.engine != 'dataproc' || has(self.dataproc)",
                     "'dataproc settings are required when engine is dataproc'", ".dataproc"),
            ]
        }
    )
    enabled: bool = Field(default=True, description="Run the real-time booking analytics job.")
    engine: Literal["local", "dataproc", "kubernetes"] = Field(default="local", description="Where the Flink job runs: local (Flink from PyFlink on the operator's machine), dataproc, or kubernetes (a pod in the platform's namespace).")
    windowSeconds: int = Field(default=60, ge=1, le=86400, description="Length of the tumbling event-time window, in seconds.")
    outOfOrdernessSeconds: int = Field(default=5, ge=0, le=3600, description="How late an event may arrive and still be counted, in seconds.")
    parallelism: int = Field(default=1, ge=1, le=256, description="Flink job parallelism.")
    jobFile: str = Field(default="flink/analytics_job.py", min_length=1, description="Path of the job file for the local engine.")
    dataproc: DataprocSpec | None = Field(default=None, description="Dataproc settings, required when engine is dataproc.")
    kubernetes: KubernetesAnalyticsSpec = Field(default_factory=KubernetesAnalyticsSpec, description="Settings of the kubernetes engine: image, resources, checkpoint volume.")

    @model_validator(mode="after")
    def _dataproc_settings(self) -> "AnalyticsSpec":
        if self.engine == "dataproc" and self.dataproc is None:
            raise ValueError("dataproc settings are required when engine is dataproc")
        return self


class TicketPlatformSpec(ApiModel):
    services: Services = Field(default_factory=Services, description=f"The services: {', '.join(SERVICE_NAMES)}.")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, description="Prometheus scraping of the services.")
    kafka: KafkaSpec = Field(default_factory=KafkaSpec, description="Kafka connection and the topics the operator manages.")
    analytics: AnalyticsSpec = Field(default_factory=AnalyticsSpec, description="The Flink analytics job.")
    url: str | None = Field(default=None, pattern=r"^https?://.+", description="Public URL of the UI; when unset the operator reports the frontend Service's load-balancer address.")
    placement: Placement = Field(default_factory=Placement, description="Placement of every service's pods (node selector, tolerations, spread, disruption budget); spec.services.<name>.placement overrides it field by field.")

    def placement_for(self, service: str) -> Placement:
        """The effective placement of one service."""
        return self.placement.merged(self.services.by_name()[service].placement)


# ---- status -------------------------------------------------------------------------------------

class Condition(BaseModel):
    type: str = Field(description="Condition type, e.g. Ready or DeploymentsReady.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="One-word CamelCase reason.")
    message: str = Field(default="", description="Human-readable details.")
    lastTransitionTime: str = Field(description="When the status last changed.")
    observedGeneration: int | None = Field(default=None, description="Generation of the spec this condition describes.")


class ServiceStatus(BaseModel):
    ready: int = Field(default=0, description="Ready replicas.")
    desired: int = Field(default=0, description="Desired replicas.")


class TopicState(BaseModel):
    name: str = Field(description="Kafka topic name.")
    state: str = Field(description="Ready, Creating, Error, ShrinkRefused, ReplicationChangeRefused, Unknown or NotConfigured.")
    partitions: int | None = Field(default=None, description="Partitions the topic has.")
    replicationFactor: int | None = Field(default=None, description="Replication factor of the topic.")
    message: str = Field(default="", description="Details, e.g. why a change was refused.")


class AnalyticsStatus(BaseModel):
    engine: str = Field(default="", description="local, dataproc or kubernetes.")
    state: str = Field(default="", description="Job state: PENDING, RUNNING, RESTARTING, FAILED, CANCELLED, UNKNOWN; Disabled or NotConfigured when no job runs.")
    jobId: str | None = Field(default=None, description="Id of the running job.")
    lastStateChange: str | None = Field(default=None, description="When the job state last changed.")
    message: str = Field(default="", description="Details of the job state.")
    specHash: str | None = Field(default=None, description="Hash of the job settings the running job was submitted with.")
    restarts: int = Field(default=0, description="Consecutive failures of the current job (drives the restart back-off).")
    location: str | None = Field(default=None, description="Where the job runs, enough to cancel it without the spec (kept while the spec is invalid): projects/<project>/regions/<region>/clusters/<cluster> for dataproc.")


class KafkaStatus(BaseModel):
    """What deleting the platform must do to its topics, recorded from the last valid spec."""

    bootstrapServers: str | None = Field(default=None, description="Kafka bootstrap servers the topics were created on.")
    deletionPolicy: str | None = Field(default=None, description="Retain or Delete: what deleting the TicketPlatform does to the topics.")


class TicketPlatformStatus(BaseModel):
    phase: Literal["Pending", "Progressing", "Ready", "Degraded", "Failed"] = Field(default="Pending", description="Pending, Progressing, Ready, Degraded or Failed.")
    observedGeneration: int | None = Field(default=None, description="Generation of the spec the status describes.")
    conditions: list[Condition] = Field(default_factory=list, description="Conditions per subsystem, rolled up into Ready.")
    services: dict[str, ServiceStatus] = Field(default_factory=dict, description="Ready and desired replicas per service.")
    readyServices: str = Field(default=f"0/{len(SERVICE_NAMES)}", description=f"Services whose replicas are all ready, as N/{len(SERVICE_NAMES)}.")
    topics: list[TopicState] = Field(default_factory=list, description="State of each Kafka topic.")
    analytics: AnalyticsStatus = Field(default_factory=AnalyticsStatus, description="State of the analytics job.")
    kafka: KafkaStatus = Field(default_factory=KafkaStatus, description="Where the topics live and their deletion policy, from the last valid spec.")
    url: str | None = Field(default=None, description="URL of the UI.")


def parse_spec(spec: dict[str, Any] | None) -> TicketPlatformSpec:
    """Parse a TicketPlatform's spec; raises pydantic.ValidationError naming the field."""
    return TicketPlatformSpec.model_validate(spec or {})


def describe_validation_error(error: Any) -> str:
    """A one-line message naming each bad field as a spec path, e.g. spec.services.frontend.replicas."""
    parts = []
    for err in error.errors():
        path = "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        parts.append(f"{path}: {err['msg']}")
    return "; ".join(parts)
