"""ID-proof uploads and generated tickets in S3.

Uploads go to ``uploads/<user_id>/<upload_id>-<file name>`` with the user, booking and original
name as object metadata; the ticket generator (a Lambda triggered by the upload) writes
``tickets/<name>_TICKET.txt`` and ignores ``tickets/``. ``GET /api/tickets`` lists ``tickets/``.
"""
from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timezone
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from frontend.config import Config
from ticketing_common.aws import LazyClient

log = logging.getLogger("frontend.tickets")

UPLOAD_PREFIX = "uploads/"
TICKET_PREFIX = "tickets/"
ALLOWED_EXTENSIONS = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg",
                      ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif", ".txt": "text/plain"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StorageUnavailable(Exception):
    pass


def safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base).strip("._") or "file"
    stem, dot, ext = base.rpartition(".")
    if dot and len(base) > 100:
        base = stem[: 100 - len(ext) - 1] + "." + ext
    return base[:100]


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TicketStore:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.bucket = config.tickets_bucket
        self._client = LazyClient("s3", config.aws_region, config.aws_endpoint_url, read_timeout=10,
                                  max_pool_connections=20, s3={"addressing_style": "path"})
        self._bucket_ready = False

    @property
    def client(self):
        return self._client.get()

    def ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise
            if not self.config.create_bucket:
                raise StorageUnavailable(f"bucket {self.bucket} does not exist") from None
            log.info("creating S3 bucket", extra={"bucket": self.bucket})
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.config.aws_region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.aws_region}
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as exc2:
                if exc2.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        self._bucket_ready = True

    def check(self) -> dict[str, Any]:
        self.ensure_bucket()
        self.client.head_bucket(Bucket=self.bucket)
        return {"bucket": self.bucket}

    def _guard(self, fn, **kwargs):
        try:
            self.ensure_bucket()
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)[:200]) from exc

    def upload(self, stream: IO[bytes], filename: str, content_type: str, *, user_id: str | None,
               booking_id: str | None) -> dict[str, Any]:
        upload_id = uuid.uuid4().hex[:12]
        name = safe_filename(filename)
        owner = user_id or "anonymous"
        key = f"{UPLOAD_PREFIX}{owner}/{upload_id}-{name}"
        metadata = {"upload-id": upload_id, "original-name": name, "user-id": owner}
        if booking_id:
            metadata["booking-id"] = booking_id
        self._guard(self.client.put_object, Bucket=self.bucket, Key=key, Body=stream.read(),
                    ContentType=content_type, Metadata=metadata)
        return {"upload_id": upload_id, "key": key, "file_name": name, "bucket": self.bucket,
                "status": "uploaded", "uploaded_at": _iso(datetime.now(timezone.utc))}

    def _list(self, prefix: str, limit: int = 500) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            self.ensure_bucket()
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, PaginationConfig={"MaxItems": limit}):
                for obj in page.get("Contents", []):
                    items.append({"key": obj["Key"], "name": obj["Key"][len(prefix):].rsplit("/", 1)[-1],
                                  "size": obj["Size"], "last_modified": _iso(obj["LastModified"])})
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(str(exc)[:200]) from exc
        items.sort(key=lambda i: i["last_modified"], reverse=True)
        return items

    def list_tickets(self) -> list[dict[str, Any]]:
        return self._list(TICKET_PREFIX)

    def list_uploads(self, user_id: str) -> list[dict[str, Any]]:
        uploads = self._list(f"{UPLOAD_PREFIX}{user_id}/")
        for u in uploads:
            upload_id, _, file_name = u["name"].partition("-")
            u["upload_id"], u["file_name"] = upload_id, file_name
        return uploads

    def read_ticket(self, key: str, max_bytes: int = 256 * 1024) -> bytes | None:
        try:
            self.ensure_bucket()
            obj = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StorageUnavailable(str(exc)[:200]) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(str(exc)[:200]) from exc
        return obj["Body"].read(max_bytes)
