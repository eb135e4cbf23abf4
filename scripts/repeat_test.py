#!/usr/bin/env python3
"""Runs one test (or a few) N times in a row in one pytest session each, and prints how many
passed and how long each run took: the way to show a once-flaky test is fixed, without putting a
loop in the suite.

    .venv/bin/python scripts/repeat_test.py --times 20 \\
        tests/operator/test_topics_operator.py::test_deletion_policy_retain_and_delete
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
    parser.add_argument("tests", nargs="+", help="pytest node ids")
    args = parser.parse_args()

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


if __name__ == "__main__":
    sys.exit(main())
