"""boto3 clients built on first use (no I/O at import), shared by the threads of one store."""
from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config as BotoConfig


class LazyClient:
    """A boto3 client for one AWS service, created once on first access; boto3 clients are thread-safe."""

    def __init__(self, service: str, region: str | None, endpoint_url: str | None, **config: Any) -> None:
        self._args = (service, region, endpoint_url)
        self._config = BotoConfig(connect_timeout=2, retries={"max_attempts": 3, "mode": "standard"}, **config)
        self._client: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    service, region, endpoint_url = self._args
                    self._client = boto3.session.Session().client(
                        service, region_name=region, endpoint_url=endpoint_url, config=self._config)
        return self._client
