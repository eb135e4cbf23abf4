"""Prometheus metrics for a Flask app: request count, latency histogram and error count, labelled by
route (the URL rule, not the raw path, so ids do not explode cardinality), method and status.

Under gunicorn with several workers set ``PROMETHEUS_MULTIPROC_DIR`` (the gunicorn config in this
package empties it at start; ``ensure_multiprocess_dir`` creates it if missing, e.g. on a fresh
emptyDir); ``/metrics`` then aggregates all workers.
"""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        labels = ["route", "method", "status"]
        self.requests = Counter("http_requests_total", "HTTP requests handled", labels, registry=registry)
        self.errors = Counter("http_request_errors_total", "HTTP requests answered with a 4xx or 5xx",
                              labels, registry=registry)
        self.latency = Histogram("http_request_duration_seconds", "HTTP request latency", labels,
                                 buckets=LATENCY_BUCKETS, registry=registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        if status >= 400:
            self.errors.labels(*labels).inc()


def ensure_multiprocess_dir() -> str | None:
    """Create ``PROMETHEUS_MULTIPROC_DIR`` if it is set and missing (prometheus-client writes its
    per-process files there as soon as a metric exists, and fails if the directory does not)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
    return path


def route_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def init_metrics(app: Flask) -> HttpMetrics:
    ensure_multiprocess_dir()
    # One registry per app: several apps can live in one process (the tests do that).
    registry = CollectorRegistry(auto_describe=True)
    metrics = HttpMetrics(registry)
    app.extensions["http_metrics"] = metrics

    @app.before_request
    def _start_timer():
        g._metrics_start = time.perf_counter()

    @app.after_request
    def _record(response):
        start = getattr(g, "_metrics_start", None)
        if start is not None:
            metrics.observe(route_label(), request.method, response.status_code, time.perf_counter() - start)
        return response

    @app.get("/metrics")
    def prometheus_metrics():
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            aggregate = CollectorRegistry()
            multiprocess.MultiProcessCollector(aggregate)
            payload = generate_latest(aggregate)
        else:
            payload = generate_latest(registry)
        return Response(payload, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                        headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics
