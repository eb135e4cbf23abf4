"""Analytics engines: where the Flink job of a TicketPlatform runs (spec.analytics.engine).

    from ticketplatform_operator.analytics import JobRequest, JobStatus, make_engine, request_from_spec
    engine = make_engine("local")            # or "dataproc", "kubernetes"
    status = engine.ensure(request_from_spec(ns, name, spec), JobStatus.from_status(old_status))

See base.py for the contract; local.py, dataproc.py and kubernetes.py for the engines.
"""
from __future__ import annotations

from typing import Any

from .base import (CANCELLED, CANCELLING, DONE, FAILED, PENDING, RESTARTING, RUNNING, STATES, TERMINAL_STATES,
                   UNKNOWN, AnalyticsEngine, JobRequest, JobStatus, request_from_spec)


def make_engine(name: str, **kwargs: Any) -> AnalyticsEngine:
    """The engine for spec.analytics.engine. Imports lazily: the local engine needs no Google
    libraries, the Dataproc engine no Flink, the kubernetes engine neither."""
    if name == "local":
        from .local import LocalEngine
        return LocalEngine(**kwargs)
    if name == "dataproc":
        from .dataproc import DataprocEngine
        return DataprocEngine(**kwargs)
    if name == "kubernetes":
        from .kubernetes import KubernetesEngine
        return KubernetesEngine(**kwargs)
    raise ValueError(f"unknown analytics engine {name!r} (local, dataproc or kubernetes)")


__all__ = ["AnalyticsEngine", "JobRequest", "JobStatus", "make_engine", "request_from_spec", "STATES",
           "TERMINAL_STATES", "PENDING", "RUNNING", "RESTARTING", "CANCELLING", "CANCELLED", "FAILED", "DONE",
           "UNKNOWN"]
