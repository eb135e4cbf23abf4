"""The operator's own Prometheus metrics."""
from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("ticketplatform_reconcile_total", "Reconciles of TicketPlatform objects.", ["result"])
RECONCILE_ERRORS = Counter("ticketplatform_reconcile_errors_total", "Reconciles that raised an error.", ["reason"])
RECONCILE_SECONDS = Histogram("ticketplatform_reconcile_duration_seconds", "Time one reconcile takes.")
API_WRITES = Counter("ticketplatform_api_writes_total", "Write calls the operator made to the Kubernetes API.", ["verb", "kind"])
EXTERNAL_SECONDS = Histogram("ticketplatform_external_call_duration_seconds", "Latency of calls to Kafka and the analytics engine.", ["target"])
PLATFORMS = Gauge("ticketplatform_platforms", "TicketPlatform objects per phase.", ["phase"])
