"""Structured logs: one JSON object per line on stdout (CloudWatch Logs and the local invoker's
log file both keep stdout). No dependency beyond the standard library."""

from __future__ import annotations

import datetime as _dt
import json
import sys
import threading
from typing import Any

_lock = threading.Lock()


def log(level: str, event: str, **fields: Any) -> dict[str, Any]:
    """Write one log line and return the record (handy in tests)."""
    record: dict[str, Any] = {
        "ts": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level.upper(),
        "logger": fields.pop("logger", "ticket_generator"),
        "event": event,
    }
    record.update({k: v for k, v in fields.items() if v is not None})
    line = json.dumps(record, default=str, ensure_ascii=False)
    with _lock:
        # sys.stdout is looked up on every call so that redirection (pytest, the invoker) applies.
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return record


def info(event: str, **fields: Any) -> dict[str, Any]:
    return log("INFO", event, **fields)


def warning(event: str, **fields: Any) -> dict[str, Any]:
    return log("WARNING", event, **fields)


def error(event: str, **fields: Any) -> dict[str, Any]:
    return log("ERROR", event, **fields)
