"""Parsing and validating JSON request bodies with clear 400s.

Every helper raises :class:`ApiError` with a reason that names the field, e.g.
``{"error": "ticket_count must be an integer between 1 and 10", "field": "ticket_count"}``.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

from flask import request

from ticketing_common.errors import ApiError

# Pragmatic address check: one @, no spaces, a dot in the domain, sane lengths (RFC 5321 limits).
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400/413/415 that says what is wrong with it."""
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, f"Content-Type must be application/json, got {mimetype}")
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if not raw or not raw.strip():
        raise ApiError(400, "request body must be a JSON object, got an empty body")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {_type_name(body)}")
    return body


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _missing(name: str) -> ApiError:
    return ApiError(400, f"{name} is required", field=name)


def field_str(body: dict[str, Any], name: str, *, max_len: int = 200, min_len: int = 1,
              required: bool = True) -> str | None:
    if name not in body or body[name] is None:
        if required:
            raise _missing(name)
        return None
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string, got {_type_name(value)}", field=name)
    value = value.strip()
    if len(value) < min_len:
        raise ApiError(400, f"{name} must not be empty" if min_len == 1 else
                       f"{name} must be at least {min_len} characters", field=name)
    if len(value) > max_len:
        raise ApiError(400, f"{name} must be at most {max_len} characters", field=name)
    if any(ord(c) < 32 for c in value):
        raise ApiError(400, f"{name} must not contain control characters", field=name)
    return value


def field_email(body: dict[str, Any], name: str = "email") -> str:
    value = field_str(body, name, max_len=254)
    assert value is not None
    local, _, _domain = value.partition("@")
    if not _EMAIL_RE.match(value) or len(local) > 64:
        raise ApiError(400, f"{name} is not a valid email address", field=name)
    return value


def field_int(body: dict[str, Any], name: str, *, minimum: int | None = None, maximum: int | None = None,
              required: bool = True, allow_numeric_string: bool = False) -> int | None:
    if name not in body or body[name] is None:
        if required:
            raise _missing(name)
        return None
    value = body[name]
    if allow_numeric_string and isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,18}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ApiError(400, f"{name} must be an integer, got {_type_name(value)}", field=name)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            raise ApiError(400, f"{name} must be an integer between {minimum} and {maximum}", field=name)
        if minimum is not None:
            raise ApiError(400, f"{name} must be >= {minimum}", field=name)
        raise ApiError(400, f"{name} must be <= {maximum}", field=name)
    return value


def field_uuid(body: dict[str, Any], name: str) -> str:
    value = field_str(body, name, max_len=64)
    assert value is not None
    canonical = parse_uuid(value)
    if canonical is None:
        raise ApiError(400, f"{name} must be a UUID", field=name)
    return canonical


def parse_uuid(value: str) -> str | None:
    """The canonical lowercase form of a UUID string, or None if it is not one."""
    try:
        return str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError, TypeError):
        return None


def query_int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be an integer", field=name) from None
    if value < minimum or value > maximum:
        raise ApiError(400, f"query parameter {name} must be between {minimum} and {maximum}", field=name)
    return value
