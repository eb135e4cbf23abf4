"""JSON error bodies for every 4xx/5xx: ``{"error": reason}``, never an HTML page or a traceback."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger("ticketing.errors")


class ApiError(Exception):
    """An error with an HTTP status and a one-line reason the client can act on."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    def to_response(self):
        body: dict[str, Any] = {"error": self.message}
        body.update(self.details)
        response = jsonify(body)
        response.status_code = self.status
        return response


_SHORT_REASONS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    406: "not acceptable",
    408: "request timeout",
    409: "conflict",
    411: "Content-Length required",
    413: "request body too large",
    414: "URI too long",
    415: "unsupported media type",
    422: "unprocessable entity",
    429: "too many requests",
    431: "request header fields too large",
    500: "internal server error",
    501: "not implemented",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def _http_reason(exc: HTTPException) -> str:
    code = exc.code or 500
    if code == 404:
        return f"not found: {request.path}"
    if code == 405:
        return f"method {request.method} not allowed on {request.path}"
    if isinstance(exc, RequestEntityTooLarge) or code == 413:
        limit = request.max_content_length or current_app.config.get("MAX_CONTENT_LENGTH")
        return f"request body too large (limit {limit} bytes)" if limit else "request body too large"
    # Werkzeug's default descriptions are long HTML-oriented sentences; keep ours short, but keep a
    # description that someone set on purpose (abort(400, "...")).
    default = type(exc).description
    if exc.description and exc.description != default:
        return str(exc.description)
    return _SHORT_REASONS.get(code, exc.name.lower() if exc.name else "error")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return exc.to_response()

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        response = jsonify({"error": _http_reason(exc)})
        response.status_code = code
        if code == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        response = jsonify({"error": "internal server error"})
        response.status_code = 500
        return response
