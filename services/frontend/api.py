"""The gateway contract of DESIGN.md (``/api/...``) and the UI at ``/``."""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, jsonify, request, send_from_directory

from frontend.gateway import Backend
from frontend.tickets import ALLOWED_EXTENSIONS, TICKET_PREFIX, StorageUnavailable, TicketStore
from ticketing_common.errors import ApiError
from ticketing_common.validation import parse_uuid

bp = Blueprint("gateway", __name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def _backend(name: str) -> Backend:
    return current_app.extensions["backends"][name]


def _store() -> TicketStore:
    return current_app.extensions["ticket_store"]


def _headers(json_body: bool = False) -> dict[str, str]:
    headers = {"X-Request-ID": getattr(g, "request_id", "")}
    if json_body:
        headers["Content-Type"] = request.headers.get("Content-Type") or "application/json"
    return headers


def _seg(value: str) -> str:
    """A path parameter, kept as one URL segment when forwarded."""
    return quote(value, safe="")


def _storage_error(exc: Exception) -> ApiError:
    current_app.logger.warning("S3 unavailable: %s", exc)
    return ApiError(503, "ticket storage (S3) unavailable", service="s3")


# -- UI ----------------------------------------------------------------------------------------
@bp.get("/")
def index():
    response = send_from_directory(STATIC_DIR, "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


# -- health ------------------------------------------------------------------------------------
@bp.get("/api/health")
def api_health():
    backends: dict[str, Backend] = current_app.extensions["backends"]
    timeout = current_app.config["FRONTEND"].health_timeout
    pool: ThreadPoolExecutor = current_app.extensions["health_pool"]
    futures = {name: pool.submit(b.probe, timeout) for name, b in backends.items()}
    services = {"frontend": {"status": "up"}}
    for name, future in futures.items():
        services[name] = future.result()
    try:
        _store().check()
        services["s3"] = {"status": "up"}
    except Exception as exc:  # noqa: BLE001
        services["s3"] = {"status": "down", "error": type(exc).__name__}
    feed = current_app.extensions.get("analytics_feed")
    analytics = {"source": "kafka" if feed else "none", "connected": bool(feed and feed.connected)}
    down = [name for name, s in services.items() if s["status"] != "up"]
    return jsonify({"status": "ok" if not down else "degraded", "down": down, "services": services,
                    "analytics": analytics})


# -- users -------------------------------------------------------------------------------------
@bp.post("/api/users/register")
def register():
    body, status = _backend("user-service").forward("POST", "/users", data=request.get_data(),
                                                    headers=_headers(True), ok_status=200)
    return jsonify(body), status


@bp.get("/api/users")
def find_user():
    body, status = _backend("user-service").forward("GET", "/users", params={"email": request.args.get("email", "")},
                                                    headers=_headers())
    return jsonify(body), status


@bp.get("/api/users/<user_id>")
def get_user(user_id: str):
    body, status = _backend("user-service").forward("GET", f"/users/{_seg(user_id)}", headers=_headers())
    return jsonify(body), status


@bp.get("/api/users/<user_id>/bookings")
def user_bookings(user_id: str):
    body, status = _backend("booking-service").forward("GET", f"/users/{_seg(user_id)}/bookings",
                                                       headers=_headers())
    return jsonify(body), status


# -- events ------------------------------------------------------------------------------------
@bp.get("/api/events")
def list_events():
    response = _backend("event-catalog").request("GET", "/events", params=request.args, headers=_headers())
    try:
        body = response.json()
    except ValueError:
        raise ApiError(502, "event-catalog returned an invalid response", service="event-catalog") from None
    if response.status_code >= 500 and response.status_code not in (503, 504):
        raise ApiError(502, f"event-catalog failed (HTTP {response.status_code})", service="event-catalog")
    out = jsonify(body)
    out.status_code = response.status_code
    if "X-Total-Count" in response.headers:
        out.headers["X-Total-Count"] = response.headers["X-Total-Count"]
    return out


@bp.get("/api/events/<event_id>")
def get_event(event_id: str):
    body, status = _backend("event-catalog").forward("GET", f"/events/{_seg(event_id)}", headers=_headers())
    return jsonify(body), status


# -- bookings ----------------------------------------------------------------------------------
@bp.post("/api/bookings/book")
def book():
    body, status = _backend("booking-service").forward("POST", "/bookings", data=request.get_data(),
                                                       headers=_headers(True), ok_status=200)
    return jsonify(body), status


@bp.get("/api/bookings/<booking_id>")
def get_booking(booking_id: str):
    body, status = _backend("booking-service").forward("GET", f"/bookings/{_seg(booking_id)}", headers=_headers())
    return jsonify(body), status


# -- tickets -----------------------------------------------------------------------------------
def _optional_uuid_form(name: str) -> str | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    value = parse_uuid(raw)
    if value is None:
        raise ApiError(400, f"{name} must be a UUID", field=name)
    return value


@bp.post("/api/tickets/upload")
def upload_ticket():
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "upload must be multipart/form-data with a file field named 'file'")
    upload = request.files.get("file")  # parses the body: 413 past MAX_UPLOAD_BYTES
    if upload is None:
        raise ApiError(400, "a file field named 'file' is required", field="file")
    filename = (upload.filename or "").strip()
    if not filename:
        raise ApiError(400, "the uploaded file has no name", field="file")
    ext = Path(filename).suffix.lower()
    if ext not in ALLOWED_EXTENSIONS:
        raise ApiError(415, f"ID proof must be one of {', '.join(sorted(ALLOWED_EXTENSIONS))}", field="file")
    data = upload.stream.read()
    if not data:
        raise ApiError(400, "the uploaded file is empty", field="file")
    user_id = _optional_uuid_form("user_id")
    booking_id = _optional_uuid_form("booking_id")
    try:
        result = _store().upload(io.BytesIO(data), filename, ALLOWED_EXTENSIONS[ext], user_id=user_id,
                                 booking_id=booking_id)
    except StorageUnavailable as exc:
        raise _storage_error(exc) from None
    result["size"] = len(data)
    current_app.logger.info("ID proof uploaded", extra={"key": result["key"], "size": len(data)})
    return jsonify(result)


@bp.get("/api/tickets")
def list_tickets():
    raw_user = (request.args.get("user_id") or "").strip()
    user_id = parse_uuid(raw_user) if raw_user else None
    if raw_user and user_id is None:
        raise ApiError(400, "query parameter user_id must be a UUID", field="user_id")
    try:
        tickets = _store().list_tickets()
        uploads = _store().list_uploads(user_id) if user_id else []
    except StorageUnavailable as exc:
        raise _storage_error(exc) from None
    if user_id:
        # A generated ticket is named after its upload; keep the ones that belong to this user's uploads.
        ids = {u["upload_id"] for u in uploads}
        tickets = [t for t in tickets if user_id in t["key"] or any(i in t["key"] for i in ids)]
        for u in uploads:
            u["ticket"] = next((t["key"] for t in tickets if u["upload_id"] in t["key"]), None)
            u["status"] = "ticket ready" if u["ticket"] else "uploaded"
    return jsonify({"bucket": _store().bucket, "tickets": tickets, "uploads": uploads})


@bp.get("/api/tickets/content")
def ticket_content():
    key = (request.args.get("key") or "").strip()
    if not key.startswith(TICKET_PREFIX) or ".." in key or len(key) > 512:
        raise ApiError(400, f"query parameter key must name an object under {TICKET_PREFIX}", field="key")
    try:
        data = _store().read_ticket(key)
    except StorageUnavailable as exc:
        raise _storage_error(exc) from None
    if data is None:
        raise ApiError(404, f"no ticket {key}")
    return Response(data, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"})


# -- analytics ---------------------------------------------------------------------------------
@bp.get("/api/analytics")
def analytics():
    feed = current_app.extensions.get("analytics_feed")
    response = jsonify(feed.results() if feed else [])
    response.headers["X-Analytics-Source"] = "kafka" if feed else "none"
    return response
