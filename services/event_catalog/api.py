from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import Blueprint, current_app, jsonify, request

from event_catalog.repository import SORTS, EventFilter, EventRepository
from ticketing_common.errors import ApiError
from ticketing_common.validation import query_int

bp = Blueprint("events", __name__)

MAX_EVENT_ID = 2**31 - 1


def _repo() -> EventRepository:
    return current_app.extensions["event_repository"]


def _parse_when(name: str, *, end_of_day: bool) -> datetime | None:
    """``YYYY-MM-DD`` (a whole day) or an ISO-8601 date-time (UTC when no offset is given)."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime.combine(day, time(0, 0), tzinfo=timezone.utc)
            return start + timedelta(days=1) if end_of_day else start
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"query parameter {name} must be a date (YYYY-MM-DD) or an ISO-8601 date-time",
                       field=name) from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _short_arg(name: str, max_len: int = 200) -> str | None:
    value = (request.args.get(name) or "").strip()
    if len(value) > max_len:
        raise ApiError(400, f"query parameter {name} must be at most {max_len} characters", field=name)
    return value or None


@bp.get("/events")
def list_events():
    sort = (request.args.get("sort") or "date").strip()
    if sort not in SORTS:
        raise ApiError(400, f"query parameter sort must be one of {', '.join(SORTS)}", field="sort")
    available = (request.args.get("available") or "").strip().lower()
    if available not in ("", "true", "false", "1", "0"):
        raise ApiError(400, "query parameter available must be true or false", field="available")
    f = EventFilter(
        venue=_short_arg("venue"), city=_short_arg("city"), category=_short_arg("category", 50),
        q=_short_arg("q"),
        date_from=_parse_when("date_from", end_of_day=False),
        date_to=_parse_when("date_to", end_of_day=True),
        available_only=available in ("true", "1"),
        sort=sort,
        limit=query_int("limit", 100, minimum=1, maximum=500),
        offset=query_int("offset", 0, minimum=0, maximum=1_000_000),
    )
    if f.date_from and f.date_to and f.date_from >= f.date_to:
        raise ApiError(400, "date_from must be before date_to", field="date_from")
    events, total = _repo().list(f)
    response = jsonify(events)
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.get("/events/<event_id>")
def get_event(event_id: str):
    if not event_id.isdigit() or not 0 < int(event_id) <= MAX_EVENT_ID:
        raise ApiError(404, f"unknown event {event_id[:64]}")
    event = _repo().get(int(event_id))
    if event is None:
        raise ApiError(404, f"unknown event {event_id}")
    return jsonify(event)
