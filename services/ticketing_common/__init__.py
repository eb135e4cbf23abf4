"""Shared plumbing of the TicketPlatform services.

Every service is a Flask application factory built on :func:`ticketing_common.app.create_base_app`,
which brings structured JSON logs, Prometheus metrics, JSON error bodies, request ids, ``/health``,
``/ready`` and ``/metrics``. Nothing in this package opens a connection at import time.
"""
from ticketing_common.errors import ApiError

__all__ = ["ApiError"]
