"""The services' runtime settings that a read-only root filesystem needs, and the standalone
relay's health endpoints, without a data plane."""
from __future__ import annotations

import importlib
import json
import urllib.error
import urllib.request

import pytest


def _load_gunicorn_conf(monkeypatch, **env: str):
    for key in ("GUNICORN_WORKER_TMP_DIR", "GUNICORN_CONTROL_SOCKET"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import ticketing_common.gunicorn_conf as conf

    return importlib.reload(conf)


def test_gunicorn_temp_files_go_where_the_pod_can_write(monkeypatch):
    conf = _load_gunicorn_conf(monkeypatch, GUNICORN_WORKER_TMP_DIR="/tmp")
    assert conf.worker_tmp_dir == "/tmp"
    # No control socket under $HOME (read-only in a pod, shared between the Procfile's gunicorns).
    assert conf.control_socket_disable is True


def test_gunicorn_control_socket_only_when_asked(monkeypatch):
    conf = _load_gunicorn_conf(monkeypatch, GUNICORN_CONTROL_SOCKET="/tmp/gunicorn.ctl")
    assert conf.control_socket_disable is False and conf.control_socket == "/tmp/gunicorn.ctl"
    assert _load_gunicorn_conf(monkeypatch).worker_tmp_dir is None


def test_gunicorn_settings_are_known_to_gunicorn(monkeypatch):
    """A misspelt setting in the config module would be silently ignored by gunicorn."""
    from gunicorn.config import Config

    conf = _load_gunicorn_conf(monkeypatch, GUNICORN_WORKER_TMP_DIR="/tmp")
    known = set(Config().settings)
    ours = {k for k, v in vars(conf).items() if not k.startswith("_") and not callable(v) and k not in ("os", "shutil")}
    assert ours <= known, ours - known


def test_the_app_creates_a_missing_metrics_dir(monkeypatch, tmp_path):
    """A fresh emptyDir has no prometheus/ subdirectory: the app makes it before any metric exists."""
    from flask import Flask

    from ticketing_common.metrics import init_metrics

    target = tmp_path / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(target))
    init_metrics(Flask("t"))
    assert target.is_dir()


class _Relay:
    """Stands in for OutboxRelay.health(): the endpoints only need that."""

    def __init__(self, live: bool, ready: bool, error: str | None = None):
        self.result = (live, ready, {"seconds_since_last_pass": 1.0, **({"last_error": error} if error else {})})
        self.asked: list[float] = []

    def health(self, stall_seconds: float):
        self.asked.append(stall_seconds)
        return self.result


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def serve_relay():
    from prometheus_client import CollectorRegistry, Counter

    from booking_service.relay import serve_health

    servers = []

    def start(relay):
        registry = CollectorRegistry()
        Counter("outbox_messages_published_total", "published", registry=registry).inc(3)
        server = serve_health(relay, registry, 0, addr="127.0.0.1", stall_seconds=42)
        servers.append(server)
        return server.server_port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_relay_health_ready_and_metrics(serve_relay):
    relay = _Relay(live=True, ready=True)
    port = serve_relay(relay)
    status, body = _get(port, "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = _get(port, "/ready")
    assert status == 200 and json.loads(body)["service"] == "outbox-relay"
    status, body = _get(port, "/metrics")
    assert status == 200 and "outbox_messages_published_total 3.0" in body
    assert relay.asked == [42, 42]


def test_relay_not_ready_names_the_error_but_stays_live(serve_relay):
    port = serve_relay(_Relay(live=True, ready=False, error="OperationalError: connection refused"))
    assert _get(port, "/health")[0] == 200
    status, body = _get(port, "/ready")
    assert status == 503
    assert json.loads(body) == {"status": "not ready", "service": "outbox-relay", "seconds_since_last_pass": 1.0,
                                "last_error": "OperationalError: connection refused"}


def test_relay_stalled_fails_liveness(serve_relay):
    port = serve_relay(_Relay(live=False, ready=False))
    status, body = _get(port, "/health")
    assert status == 503 and json.loads(body)["status"] == "stalled"


def test_relay_health_follows_its_passes(monkeypatch):
    from booking_service.relay import OutboxRelay

    relay = OutboxRelay(engine=None, bootstrap_servers="127.0.0.1:1")
    live, ready, details = relay.health(stall_seconds=60)
    assert (live, ready) == (True, False) and details["last_error"] == "no pass yet"
    relay._pass_done(None)
    assert relay.health(60)[:2] == (True, True)
    relay._pass_done("OperationalError: gone")
    assert relay.health(60)[:2] == (True, False)
    relay._pass_done(None)
    relay.last_pass_at -= 61
    assert relay.health(60)[:2] == (False, False)
