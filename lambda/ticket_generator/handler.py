"""Ticket generator Lambda: an ID proof uploaded to S3 becomes a ticket receipt next to it.

Trigger: S3 ``ObjectCreated:*`` events on the uploads bucket (in AWS directly, or through an SQS
queue as in the local stack; see ../README.md). For every record:

- keys under ``tickets/`` are skipped: they are this function's own output, and the bucket's
  notification cannot exclude a prefix, so the function must never react to them (no recursion);
- objects over 5 MB (by the event's size and by ``head_object``) are refused: logged, no receipt;
- otherwise a receipt is written to ``tickets/<file name without extension>_TICKET.txt``.

The ticket id is derived from the event (bucket, key, ETag, sequencer, event time), so a retried
event rewrites the same receipt instead of issuing a second ticket.

Configuration (environment): ``TICKETS_BUCKET`` (only used when a record names no bucket),
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` (moto locally), ``AWS_REGION``. The S3 client is
built on first use, never at import time.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import posixpath
import threading
from typing import Any
from urllib.parse import quote, unquote_plus

from . import jsonlog

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # 5 MB (MiB): larger ID proofs are refused
TICKETS_PREFIX = "tickets/"
TICKET_SUFFIX = "_TICKET.txt"
DEFAULT_BUCKET = "ticket-platform-uploads"

_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


class TicketGenerationError(RuntimeError):
    """Some records failed for a reason worth retrying (the summary is attached)."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


# -- S3 client ----------------------------------------------------------------------------------


def _region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client() -> Any:
    """The S3 client for the current environment, built lazily and cached per (endpoint, region)."""
    key = (_endpoint(), _region(), os.environ.get("AWS_ACCESS_KEY_ID"))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
                # a custom endpoint (moto, an IP address) has no per-bucket DNS names
                s3={"addressing_style": "path"} if key[0] else None,
            )
            client = boto3.client("s3", region_name=key[1], endpoint_url=key[0], config=config)
            _clients[key] = client
        return client


def reset_clients() -> None:
    """Forget cached clients (tests that change the environment)."""
    with _clients_lock:
        _clients.clear()


# -- naming and formatting ----------------------------------------------------------------------


def ticket_key_for(source_key: str) -> str:
    """``uploads/John Doe.pdf`` -> ``tickets/John Doe_TICKET.txt``."""
    base = posixpath.basename(source_key)
    stem, _ext = posixpath.splitext(base)
    return f"{TICKETS_PREFIX}{stem or base}{TICKET_SUFFIX}"


def ticket_id_for(bucket: str, key: str, etag: str, sequencer: str, event_time: str) -> str:
    digest = hashlib.sha256("|".join([bucket, key, etag, sequencer, event_time]).encode()).hexdigest()
    return f"TKT-{digest[:4]}-{digest[4:8]}-{digest[8:12]}".upper()


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size:,} bytes)"
        value /= 1024
    return f"{size:,} bytes"  # pragma: no cover


def render_receipt(
    *,
    ticket_id: str,
    bucket: str,
    key: str,
    size: int,
    content_type: str | None,
    uploaded_at: str,
    issued_at: str,
    etag: str,
    request_id: str | None,
) -> str:
    width = 60
    rule, thin = "=" * width, "-" * width
    rows = [
        ("Ticket ID", ticket_id),
        ("Original file", posixpath.basename(key)),
        ("Stored as", f"s3://{bucket}/{key}"),
        ("File size", human_size(size)),
        ("Content type", content_type or "unknown"),
        ("Uploaded at", uploaded_at),
        ("Issued at", issued_at),
        ("Upload ETag", etag or "-"),
        ("Request ID", request_id or "-"),
    ]
    label = max(len(r[0]) for r in rows)
    lines = [
        rule,
        "TICKET PLATFORM - E-TICKET RECEIPT".center(width).rstrip(),
        rule,
        *(f"{name.ljust(label)} : {value}" for name, value in rows),
        thin,
        "Your ID proof was received and your ticket is issued.",
        "Show this ticket ID with the same ID at the venue entrance.",
        f"ID proofs are accepted up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.",
        rule,
    ]
    return "\n".join(lines) + "\n"


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- the handler --------------------------------------------------------------------------------


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda entry point. Returns a summary; raises TicketGenerationError when a record failed
    for a retryable reason (so Lambda / the local invoker retries the event)."""
    request_id = getattr(context, "aws_request_id", None)
    records = (event or {}).get("Records") or []
    summary: dict[str, Any] = {"records": len(records), "generated": [], "skipped": [], "failed": []}
    if not records:
        jsonlog.warning("event.no_records", request_id=request_id, event_keys=sorted((event or {}).keys()))
    for index, record in enumerate(records):
        try:
            outcome = _process_record(record, request_id)
        except Exception as exc:  # noqa: BLE001 - one bad record must not hide the others
            key = _record_key(record)
            jsonlog.error("ticket.failed", request_id=request_id, record=index, key=key,
                          error=f"{type(exc).__name__}: {exc}")
            summary["failed"].append({"key": key, "error": f"{type(exc).__name__}: {exc}"})
            continue
        summary["generated" if outcome.get("ticket_key") else "skipped"].append(outcome)
    jsonlog.info("event.done", request_id=request_id, records=len(records), generated=len(summary["generated"]),
                 skipped=len(summary["skipped"]), failed=len(summary["failed"]))
    if summary["failed"]:
        raise TicketGenerationError(f"{len(summary['failed'])} of {len(records)} record(s) failed", summary)
    return summary


def _record_key(record: dict[str, Any]) -> str | None:
    raw = ((record.get("s3") or {}).get("object") or {}).get("key")
    return unquote_plus(raw) if isinstance(raw, str) else None


def _skip(request_id: str | None, bucket: str | None, key: str | None, reason: str, **extra: Any) -> dict[str, Any]:
    level = jsonlog.warning if reason == "too_large" else jsonlog.info
    level("ticket.skipped", request_id=request_id, bucket=bucket, key=key, reason=reason, **extra)
    return {"bucket": bucket, "key": key, "reason": reason, **extra}


def _process_record(record: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    s3 = record.get("s3") or {}
    bucket = (s3.get("bucket") or {}).get("name") or os.environ.get("TICKETS_BUCKET", DEFAULT_BUCKET)
    obj = s3.get("object") or {}
    key = _record_key(record)
    event_name = record.get("eventName") or ""

    if record.get("eventSource") not in (None, "aws:s3") or not key:
        return _skip(request_id, bucket, key, "not_an_s3_object_event", event_name=event_name)
    if event_name and not event_name.startswith("ObjectCreated"):
        return _skip(request_id, bucket, key, "not_an_upload", event_name=event_name)
    if key.startswith(TICKETS_PREFIX):
        # Our own output (or anything else under tickets/): never react, or we would loop.
        return _skip(request_id, bucket, key, "ticket_output_prefix")
    if key.endswith("/"):
        return _skip(request_id, bucket, key, "folder_marker")

    limit = MAX_UPLOAD_BYTES
    event_size = obj.get("size")
    if isinstance(event_size, int) and event_size > limit:
        return _skip(request_id, bucket, key, "too_large", size=event_size, limit=limit, source="event")

    from botocore.exceptions import ClientError

    client = s3_client()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return _skip(request_id, bucket, key, "object_gone")
        raise
    size = int(head.get("ContentLength", event_size or 0))
    if size > limit:
        return _skip(request_id, bucket, key, "too_large", size=size, limit=limit, source="head_object")

    etag = str(obj.get("eTag") or head.get("ETag") or "").strip('"')
    event_time = record.get("eventTime") or ""
    ticket_id = ticket_id_for(bucket, key, etag, str(obj.get("sequencer") or ""), event_time)
    ticket_key = ticket_key_for(key)
    last_modified = head.get("LastModified")
    uploaded_at = event_time or (last_modified.isoformat() if last_modified is not None else "unknown")
    body = render_receipt(
        ticket_id=ticket_id,
        bucket=bucket,
        key=key,
        size=size,
        content_type=head.get("ContentType"),
        uploaded_at=uploaded_at,
        issued_at=_utc_now(),
        etag=etag,
        request_id=request_id,
    )
    client.put_object(
        Bucket=bucket,
        Key=ticket_key,
        Body=body.encode("utf-8"),
        ContentType="text/plain; charset=utf-8",
        # S3 user metadata must be ASCII: quote the source key
        Metadata={"ticket-id": ticket_id, "source-key": quote(key, safe="/")},
    )
    jsonlog.info("ticket.generated", request_id=request_id, bucket=bucket, key=key, size=size,
                 ticket_id=ticket_id, ticket_key=ticket_key)
    return {"bucket": bucket, "key": key, "size": size, "ticket_id": ticket_id, "ticket_key": ticket_key}
