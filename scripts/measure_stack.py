#!/usr/bin/env python3
"""Measures the embedded default (README command 1) and prints the figures the README quotes:

  - `make up` wall time and the time of each phase (stack/up.sh prints "phase NAME: Ns"),
    from the warm cache, or with --cold from an empty build cache (a temporary TP_CACHE_DIR,
    removed afterwards; Go's and pip's own caches are not cleared);
  - memory of the whole stack once idle (proportional set size, summed per part: control plane,
    node, pods, data plane);
  - apply -> Ready of examples/local.yaml on the real node (the platform deleted, then applied
    again with the images already on the node).

It stops and restarts the stack (`make down`, `make up`): do not run it beside `make test`.

    .venv/bin/python scripts/measure_stack.py [--cold] [--idle-seconds 60]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASE = re.compile(r"phase (\S+): (\d+)s")

# Which part of the stack a process belongs to, by its command line (first match wins).
PARTS = [
    ("control plane", re.compile(r"/(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok)\b")),
    ("node", re.compile(r"/(kubelet|kube-proxy)\b|\bcontainerd\b(?!-shim)")),
    ("container shims", re.compile(r"containerd-shim")),
    ("data plane: Kafka", re.compile(r"kafka\.Kafka")),
    ("data plane: PostgreSQL", re.compile(r"postgres")),
    ("data plane: moto", re.compile(r"moto_server")),
    ("lambda invoker", re.compile(r"lambda|invoker")),
]


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}")
    return elapsed, proc.stdout


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def in_pod(pid: int) -> bool:
    try:
        return "kubepods" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def stack_memory() -> dict[str, int]:
    """PSS per part of the stack, in KiB (processes in a pod's cgroup count as pods)."""
    totals: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if not cmdline:
            continue
        if in_pod(pid):
            part = "pods (platform, operator, CoreDNS, metrics-server)"
        else:
            part = next((name for name, pattern in PARTS if pattern.search(cmdline)), None)
            if part is None:
                continue
        totals[part] = totals.get(part, 0) + pss_kib(pid)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold", action="store_true", help="build from an empty TP_CACHE_DIR")
    parser.add_argument("--idle-seconds", type=float, default=60, help="wait before reading memory")
    args = parser.parse_args()

    env = dict(os.environ)
    cold_cache = None
    if args.cold:
        cold_cache = tempfile.mkdtemp(prefix="tp-cold-cache-")
        env["TP_CACHE_DIR"] = cold_cache
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cores; cache: {env.get('TP_CACHE_DIR', 'default')}")
    try:
        run(["make", "down"], env)
        elapsed, out = run(["make", "up"], env)
        print(f"make up ({'cold' if args.cold else 'warm'}): {elapsed:.0f} s")
        for name, seconds in PHASE.findall(out):
            print(f"  {name:<14} {seconds:>5} s")

        time.sleep(args.idle_seconds)
        memory = stack_memory()
        print(f"memory of the idle stack after {args.idle_seconds:.0f} s (PSS):")
        for part, kib in sorted(memory.items(), key=lambda kv: -kv[1]):
            print(f"  {part:<52} {kib / 1024:>7.0f} MiB")
        print(f"  {'total':<52} {sum(memory.values()) / 1024:>7.0f} MiB")

        run(["bash", "stack/platform.sh", "delete"], env)
        elapsed, _ = run(["bash", "stack/platform.sh", "apply"], env)
        print(f"apply -> Ready of examples/local.yaml (images on the node): {elapsed:.1f} s")
    finally:
        if cold_cache:
            # The stack runs binaries from the temporary cache: stop it before removing it.
            subprocess.run(["make", "down"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.rmtree(cold_cache, ignore_errors=True)
            print("cold cache removed; the stack is stopped (make up restarts it from the usual cache)")


if __name__ == "__main__":
    main()
