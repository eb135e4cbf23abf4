"""README command 1 after the suite (the two commands in either order on one machine): `make down`
stops everything the tests left running, then `make up` brings the embedded default back from the
cache with the platform Ready on the real node. Runs last (tests/conftest.py orders it)."""
from __future__ import annotations

import re
import subprocess
import time
import urllib.request

from tests.fixtures.controlplane import REPO_DIR


def _make(target: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", target], cwd=REPO_DIR, capture_output=True, text=True, timeout=timeout)


def test_make_down_then_make_up_from_the_cache() -> None:
    down = _make("down", 600)
    assert down.returncode == 0, down.stderr[-3000:]
    # Nothing listens any more (read from the kernel's socket table: no connection is attempted,
    # since HOST_ADDR itself is gone): the apiserver, the kubelet, the UI's NodePort, Kafka,
    # PostgreSQL, moto.
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    ports = {int(line.split()[3].rsplit(":", 1)[1]) for line in listening.splitlines() if line.strip()}
    assert not ports & {16443, 10250, 30080, 19092, 19094, 15432, 15000}, listening
    # ... and HOST_ADDR, now gone from lo, is blackholed rather than routed off the machine.
    route = subprocess.run(["ip", "route", "get", "10.213.0.1"], capture_output=True, text=True)
    assert route.returncode != 0, route.stdout  # "RTNETLINK answers: Invalid argument": a blackhole

    started = time.monotonic()
    up = _make("up", 1500)
    elapsed = time.monotonic() - started
    assert up.returncode == 0, up.stderr[-4000:]
    print(f"make up from the cache took {elapsed:.0f}s")
    row = next(line for line in up.stdout.splitlines() if line.startswith("local "))
    assert re.search(r"\bReady\b", row) and "4/4" in row, up.stdout
    url = re.search(r"UI:\s+(http://127\.0\.0\.1:\d+/)", up.stdout)
    assert url, up.stdout
    with urllib.request.urlopen(url.group(1), timeout=10) as r:
        assert "<title>TicketPlatform" in r.read().decode()
