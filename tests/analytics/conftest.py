"""Analytics tests: the Flink job on the real broker of stack/kafka.sh (the `kafka` fixture), run by
the LocalEngine with PyFlink from stack/flink.sh, and the Dataproc engine against the local gRPC
JobController server (the `dataproc_server` fixture).

The fixtures are imported rather than named in `pytest_plugins`, which pytest accepts only in the
top-level conftest (a whole-suite run fails to collect otherwise); `pytest tests/analytics` and a
whole-suite run both work.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.dataplane import kafka  # noqa: F401  (fixture)
from tests.fixtures.dataproc_server import dataproc_server  # noqa: F401  (fixture)

REPO_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def flink_env() -> dict[str, str]:
    """PyFlink venv + Kafka connector jar, installed (or found cached) by `stack/flink.sh setup`."""
    proc = subprocess.run(["bash", str(REPO_DIR / "stack" / "flink.sh"), "setup"], cwd=REPO_DIR,
                          capture_output=True, text=True, timeout=1800)
    print(proc.stderr, end="")
    if proc.returncode != 0:
        raise RuntimeError(f"stack/flink.sh setup failed:\n{proc.stderr[-4000:]}")
    env: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env
