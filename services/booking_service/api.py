from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from booking_service.repository import BookingRepository, SoldOut, UnknownEvent
from booking_service.users import UserDirectory, UserServiceUnavailable
from ticketing_common.errors import ApiError
from ticketing_common.validation import field_int, field_str, json_body, parse_uuid

bp = Blueprint("bookings", __name__)

MAX_TICKETS_PER_BOOKING = 10
MAX_EVENT_ID = 2**31 - 1


def _repo() -> BookingRepository:
    return current_app.extensions["booking_repository"]


def _users() -> UserDirectory:
    return current_app.extensions["user_directory"]


def _user_exists(user_id: str) -> bool:
    try:
        return _users().exists(user_id, getattr(g, "request_id", None))
    except UserServiceUnavailable as exc:
        current_app.logger.warning("user-service unavailable: %s", exc)
        raise ApiError(503, "user-service unavailable", service="user-service") from None


@bp.post("/bookings")
def create_booking():
    body = json_body()
    raw_user = field_str(body, "user_id", max_len=64)
    event_id = field_int(body, "event_id", minimum=1, maximum=MAX_EVENT_ID, allow_numeric_string=True)
    ticket_count = field_int(body, "ticket_count", minimum=1, maximum=MAX_TICKETS_PER_BOOKING)
    user_id = parse_uuid(raw_user)
    if user_id is None or not _user_exists(user_id):
        raise ApiError(404, f"unknown user {raw_user}", field="user_id")
    try:
        booking = _repo().book(user_id, event_id, ticket_count)
    except UnknownEvent:
        raise ApiError(404, f"unknown event {event_id}", field="event_id") from None
    except SoldOut as exc:
        reason = "sold out" if exc.tickets_available == 0 else f"only {exc.tickets_available} tickets left"
        raise ApiError(409, reason, tickets_available=exc.tickets_available) from None
    current_app.logger.info("booking confirmed", extra={"booking_id": booking["booking_id"],
                                                        "event_id": event_id, "ticket_count": ticket_count})
    return jsonify(booking), 201


@bp.get("/bookings/<booking_id>")
def get_booking(booking_id: str):
    canonical = parse_uuid(booking_id)
    booking = _repo().get(canonical) if canonical else None
    if booking is None:
        raise ApiError(404, f"unknown booking {booking_id[:64]}")
    return jsonify(booking)


@bp.get("/users/<user_id>/bookings")
def user_bookings(user_id: str):
    canonical = parse_uuid(user_id)
    if canonical is None:
        raise ApiError(404, f"unknown user {user_id[:64]}")
    bookings = _repo().for_user(canonical)
    if not bookings and not _user_exists(canonical):
        raise ApiError(404, f"unknown user {canonical}")
    return jsonify(bookings)
