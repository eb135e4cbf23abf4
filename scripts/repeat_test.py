#!/usr/bin/env python3
"""Runs one test (or a few) N times in a row and prints how many passed and how long each run
took: the way to show a once-flaky test is fixed, without putting a loop in the suite.

    .venv/bin/python scripts/repeat_test.py --times 20 [--one-session] \\
        tests/operator/test_topics_operator.py::test_deletion_policy_retain_and_delete

By default each run is its own pytest session (fixtures set up anew each time); --one-session runs
all repetitions in one session (shared fixtures, as in the suite: much faster).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", type=int, default=20)
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument("--one-session", action="store_true", help="all repetitions in one pytest session")
    parser.add_argument("tests", nargs="+", help="pytest node ids")
    args = parser.parse_args()

    if args.one_session:
        return one_session(args.times, args.tests)
    durations: list[float] = []
    failures = 0
    for run in range(1, args.times + 1):
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.tests],
                              cwd=REPO, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        durations.append(elapsed)
        ok = proc.returncode == 0
        failures += not ok
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        print(f"run {run:>3}/{args.times}: {'passed' if ok else 'FAILED'} in {elapsed:.1f} s  ({last})", flush=True)
        if not ok:
            print(proc.stdout[-4000:])
            if args.stop_on_failure:
                break
    print(f"{len(durations) - failures}/{len(durations)} passed; median {statistics.median(durations):.1f} s, "
          f"max {max(durations):.1f} s")
    return 1 if failures else 0


def pytest_generate_tests(metafunc):  # this module is also the pytest plugin of --one-session
    import os

    times = int(os.environ.get("TP_REPEAT_TIMES", "0"))
    if times:
        metafunc.fixturenames.append("tp_repeat")
        metafunc.parametrize("tp_repeat", range(1, times + 1), ids=lambda i: f"repeat{i}")


def one_session(times: int, tests: list[str]) -> int:
    """Each test parametrized `times` times (this module as a plugin); outcomes from JUnit XML."""
    import os
    import tempfile
    import xml.etree.ElementTree as ET

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        started = time.monotonic()
        env = {**os.environ, "TP_REPEAT_TIMES": str(times),
               "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "repeat_test",
                               f"--junitxml={report}", *tests], cwd=REPO, env=env)
        elapsed = time.monotonic() - started
        cases = ET.parse(report).getroot().iter("testcase")
        results = [(c.get("name"), float(c.get("time", 0)), not any(ch.tag in ("failure", "error") for ch in c))
                   for c in cases]
    for i, (name, seconds, ok) in enumerate(results, 1):
        print(f"run {i:>3}/{len(results)}: {name} {'passed' if ok else 'FAILED'} in {seconds:.1f} s", flush=True)
    passed = sum(ok for _, _, ok in results)
    durations = [s for _, s, _ in results] or [0.0]
    print(f"{passed}/{len(results)} passed (of {times * len(tests)} asked); median {statistics.median(durations):.1f} s, "
          f"max {max(durations):.1f} s; session {elapsed:.0f} s")
    return 0 if proc.returncode == 0 and passed == times * len(tests) else 1


if __name__ == "__main__":
    sys.exit(main())
