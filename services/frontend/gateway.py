"""Forwarding to the backends: one pooled ``requests.Session`` per backend, connect and read
timeouts, and errors that name the backend."""
from __future__ import annotations

import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ticketing_common.errors import ApiError


class Backend:
    def __init__(self, name: str, base_url: str, connect_timeout: float, read_timeout: float) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=100, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def request(self, method: str, path: str, *, params: Any = None, data: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: Any = None) -> requests.Response:
        try:
            return self.session.request(method, self.base_url + path, params=params, data=data,
                                        headers=headers, timeout=timeout or self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise ApiError(504, f"{self.name} did not answer in time", service=self.name) from None
        except requests.RequestException:
            raise ApiError(503, f"{self.name} unavailable", service=self.name) from None

    def forward(self, method: str, path: str, *, params: Any = None, data: bytes | None = None,
                headers: dict[str, str] | None = None, ok_status: int | None = None) -> tuple[Any, int]:
        """Call the backend and return (json, status) for Flask; 201 becomes ``ok_status`` if given."""
        response = self.request(method, path, params=params, data=data, headers=headers)
        try:
            body = response.json()
        except ValueError:
            raise ApiError(502, f"{self.name} returned an invalid response (HTTP {response.status_code})",
                           service=self.name) from None
        status = response.status_code
        if status >= 500 and status not in (503, 504):
            raise ApiError(502, f"{self.name} failed (HTTP {status})", service=self.name)
        if status in (503, 504) and isinstance(body, dict):
            body.setdefault("service", self.name)
        if ok_status is not None and 200 <= status < 300:
            status = ok_status
        return body, status

    def probe(self, timeout: float) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            response = self.session.get(self.base_url + "/ready", timeout=(timeout, timeout))
        except requests.RequestException as exc:
            return {"status": "down", "error": f"{type(exc).__name__}", "url": self.base_url}
        latency = round((time.perf_counter() - start) * 1000, 1)
        entry: dict[str, Any] = {"status": "up" if response.status_code == 200 else "not ready",
                                 "latency_ms": latency}
        try:
            checks = response.json().get("checks", {})
            failing = [name for name, c in checks.items() if not c.get("ok")]
            if failing:
                entry["failing"] = failing
        except (ValueError, AttributeError):
            pass
        return entry
