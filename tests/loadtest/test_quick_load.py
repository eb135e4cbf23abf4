"""The gateway load test (loadtest/, Locust in its own .venv-loadtest).

- the profile and the summary maths (pure modules, loaded from the main venv without Locust);
- a run against a closed port breaks the error threshold and exits non-zero;
- the quick profile (LOADTEST_QUICK=1: 4 s stages, 1 -> 5 -> 10 -> 15 -> 5 -> 0 users) against the
  real local stack (stack/services.sh: the four services on 18080-18083 over Kafka, PostgreSQL and
  moto) holds the thresholds, p95 < 500 ms and errors < 10 %, and reaches all six cases.

The stack is started for the test when it is not already running and stopped again afterwards; a
stack that was running before (make up) is reused and left running.
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOADTEST = REPO / "loadtest"
SIX_CASES = ["GET /", "POST /api/users/register", "GET /api/events", "POST /api/bookings/book",
             "GET /api/users/[id]/bookings", "GET /api/health"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"loadtest_{name}", LOADTEST / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


stages = _load("stages")
summary = _load("summary")


def _bash(*args: str, timeout: float, check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=check, env=env)


# -- pure parts ----------------------------------------------------------------------------------
def test_full_profile_is_k6_stages():
    full, quick = stages.stages_from_env({})
    assert not quick
    assert [(s.duration, s.target) for s in full] == [(60.0, t) for t in (10, 50, 100, 150, 50, 0)]
    assert stages.total_duration(full) == 360
    # linear ramps between targets, as k6 does
    assert stages.target_users(full, 0) == 0
    assert stages.target_users(full, 30) == 5
    assert stages.target_users(full, 60) == 10
    assert stages.target_users(full, 150) == 75
    assert stages.target_users(full, 239.9) == 150
    assert stages.target_users(full, 240) == 150
    assert stages.target_users(full, 270) == 100
    assert stages.target_users(full, 359) <= 1
    assert stages.target_users(full, 360) is None  # the shape stops the run
    assert max(stages.target_users(full, t / 2) for t in range(720)) == 150
    assert [stages.stage_index(full, t) for t in (0, 59.9, 60, 359.9, 360)] == [0, 0, 1, 5, None]


def test_quick_profile_and_overrides():
    quick, is_quick = stages.stages_from_env({"LOADTEST_QUICK": "1"})
    assert is_quick
    assert [s.target for s in quick] == [1, 5, 10, 15, 5, 0]
    assert 15 <= stages.total_duration(quick) <= 30
    thirty, _ = stages.stages_from_env({"LOADTEST_STAGE_SECONDS": "30"})
    assert [(s.duration, s.target) for s in thirty] == [(30.0, t) for t in (10, 50, 100, 150, 50, 0)]
    custom = stages.parse_stages("30s:10, 1m:150,500ms:0")
    assert [(s.duration, s.target) for s in custom] == [(30, 10), (60, 150), (0.5, 0)]
    with pytest.raises(ValueError):
        stages.parse_stages("1m")


def test_summary_figures_and_thresholds():
    S = summary.Sample
    ok = [S(t=i / 10, name="GET /api/events", ms=float(i), failed=False, status=200, stage=0) for i in range(1, 101)]
    result = summary.build_summary(ok, 10.0)
    assert result["requests"] == 100 and result["requests_per_second"] == 10.0
    assert result["latency_ms"]["p50"] == 50.5 and result["latency_ms"]["p95"] == pytest.approx(95.05, abs=0.1)
    assert result["passed"] and all(t["ok"] for t in result["thresholds"].values())

    slow = ok + [S(t=9.9, name="POST /api/bookings/book", ms=900.0, failed=False, status=200, stage=0)] * 10
    assert not summary.build_summary(slow, 10.0)["thresholds"]["p95 < 500 ms"]["ok"]

    failing = ok + [S(t=9.9, name="GET /api/health", ms=1.0, failed=True, status=503, stage=0)] * 12
    result = summary.build_summary(failing, 10.0)
    assert result["error_rate"] == pytest.approx(12 / 112, abs=1e-4)
    assert not result["passed"]
    assert result["endpoints"]["GET /api/health"]["status_codes"] == {"503": 12}


# -- Locust runs ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loadtest_venv() -> Path:
    """.venv-loadtest from loadtest/requirements.txt (cached by stack/loadtest.sh)."""
    done = _bash("stack/loadtest.sh", "setup", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return REPO / ".venv-loadtest"


def test_broken_threshold_exits_non_zero(loadtest_venv, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "summary.json"

    env = {**os.environ, "LOADTEST_STAGES": "2s:1,1s:0"}
    done = _bash("loadtest/run.sh", "--no-preflight", "--keep-users", "--url", f"http://127.0.0.1:{port}",
                 "--summary", str(out), timeout=120, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["error_rate"] == 1.0 and not result["passed"]
    assert not result["thresholds"]["error rate < 10%"]["ok"]
    assert "ConnectionRefusedError" in json.dumps(result["errors"])


@pytest.fixture(scope="module")
def gateway_stack() -> str:
    """The local stack's gateway: reused when stack/services.sh reports it running, else started
    here and stopped at the end."""
    was_running = _bash("stack/services.sh", "status", timeout=60).returncode == 0
    if not was_running:
        started = _bash("stack/services.sh", "start", timeout=540)
        if started.returncode != 0:
            _bash("stack/services.sh", "stop", timeout=120)
            pytest.fail("stack/services.sh start failed:\n" + started.stdout + started.stderr[-4000:])
    try:
        yield "http://127.0.0.1:18080"
    finally:
        if not was_running:
            _bash("stack/services.sh", "stop", timeout=120)


def test_quick_profile_holds_thresholds_against_the_stack(loadtest_venv, gateway_stack, tmp_path):
    out = tmp_path / "quick.json"
    done = _bash("loadtest/run.sh", "--quick", "--url", gateway_stack, "--summary", str(out), timeout=300)
    log = done.stdout[-3000:] + done.stderr[-6000:]
    assert out.exists(), log
    result = json.loads(out.read_text())
    assert result["profile"]["quick"] and result["profile"]["peak_target_users"] == 15

    lat, err = result["latency_ms"]["p95"], result["error_rate"]
    assert lat is not None and lat < 500, f"p95 {lat} ms\n{log}"
    assert err < 0.10, f"error rate {err}: {result['errors']}\n{log}"
    assert result["passed"], result["thresholds"]
    assert done.returncode == 0, log

    # all six cases of the gateway contract were exercised, and the business flow went through
    counts = {case: result["endpoints"].get(case, {}).get("requests", 0) for case in SIX_CASES}
    assert all(n > 0 for n in counts.values()), counts
    assert result["endpoints_without_requests"] == []
    checks = result["checks"]
    for name in ("register: has user_id, name, email, created_at",
                 "events: each has event_id, id, name, date, venue, tickets_available"):
        assert checks[name]["passes"] > 0, checks
    # Bookings went through (unless earlier runs on this stack have sold out the whole catalogue:
    # then every booking is an expected 409).
    bookings = result["bookings"]
    if (bookings["catalogue_tickets_at_start"] or 0) > 100:
        assert bookings["confirmed"] > 0, bookings
        for name in ("book: has booking_id and status", "my bookings: holds the booking just made"):
            assert checks[name]["passes"] > 0, checks
    else:
        assert bookings["sold_out_409"] > 0, bookings
    assert "cleanup: deleted" in done.stderr, done.stderr[-2000:]  # the run's users left the table
