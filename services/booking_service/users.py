"""Is this user known? Asked of user-service over HTTP, with a pooled session and a short cache."""
from __future__ import annotations

import threading
import time

import requests
from requests.adapters import HTTPAdapter


class UserServiceUnavailable(Exception):
    pass


class UserDirectory:
    def __init__(self, base_url: str, timeout: float, cache_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=64, max_retries=0))
        self.session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=64, max_retries=0))
        self._known: dict[str, float] = {}
        self._lock = threading.Lock()

    def exists(self, user_id: str, request_id: str | None = None) -> bool:
        now = time.monotonic()
        with self._lock:
            seen = self._known.get(user_id)
            if seen is not None and now - seen < self.cache_seconds:
                return True
        headers = {"X-Request-ID": request_id} if request_id else {}
        try:
            response = self.session.get(f"{self.base_url}/users/{user_id}", timeout=self.timeout, headers=headers)
        except requests.RequestException as exc:
            raise UserServiceUnavailable(f"{type(exc).__name__}") from exc
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise UserServiceUnavailable(f"user-service answered {response.status_code}")
        with self._lock:
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[user_id] = now
        return True

    def check(self) -> dict:
        response = self.session.get(f"{self.base_url}/health", timeout=self.timeout)
        response.raise_for_status()
        return {"url": self.base_url}
