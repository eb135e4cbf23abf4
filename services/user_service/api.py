from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ticketing_common.errors import ApiError
from ticketing_common.validation import _EMAIL_RE, field_email, field_str, json_body, parse_uuid
from user_service.store import EmailTaken, StoreUnavailable, UserStore

bp = Blueprint("users", __name__)


def _store() -> UserStore:
    return current_app.extensions["user_store"]


def _unavailable(exc: Exception) -> ApiError:
    current_app.logger.warning("user store unavailable: %s", exc)
    return ApiError(503, "user store (DynamoDB) unavailable")


@bp.post("/users")
def create_user():
    body = json_body()
    name = field_str(body, "name", max_len=100)
    email = field_email(body, "email")
    try:
        user = _store().create_user(name, email)
    except EmailTaken:
        raise ApiError(409, "email already registered", field="email") from None
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    return jsonify(user), 201


@bp.get("/users/<user_id>")
def get_user(user_id: str):
    canonical = parse_uuid(user_id)
    if canonical is None:
        raise ApiError(404, f"unknown user {user_id[:64]}")
    try:
        user = _store().get_user(canonical)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    if user is None:
        raise ApiError(404, f"unknown user {canonical}")
    return jsonify(user)


@bp.get("/users")
def find_user():
    email = (request.args.get("email") or "").strip()
    if not email:
        raise ApiError(400, "query parameter email is required", field="email")
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise ApiError(400, "email is not a valid email address", field="email")
    try:
        user = _store().find_by_email(email)
    except StoreUnavailable as exc:
        raise _unavailable(exc) from None
    if user is None:
        raise ApiError(404, "no user with that email")
    return jsonify(user)
