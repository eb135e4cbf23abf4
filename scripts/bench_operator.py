"""Operator benchmark: apply N TicketPlatforms across several namespaces to the local control plane
and print time from apply to Ready (median, worst), the operator's peak memory, and API write
calls per steady-state resync (counted in the apiserver's audit log).

    .venv/bin/python scripts/bench_operator.py [--count 50] [--namespaces 5] [--resync 10]

It starts its own operator process; stop any other (`bash stack/operator.sh stop`) first, since two
operators would both act on the objects.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = Path(os.environ.get("TP_RUN_DIR", REPO / ".run"))
CP = RUN / "controlplane"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


BIN_DIR = subprocess.run(["bash", "-c", f". {REPO}/stack/lib.sh && echo $CP_BIN_DIR"], capture_output=True,
                         text=True, check=True).stdout.strip()


def kubectl(*args: str, input: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(CP / "kubeconfig")}
    return subprocess.run([f"{BIN_DIR}/kubectl", *args], input=input, capture_output=True, text=True, env=env,
                          check=True).stdout


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def operator_writes(offset: int, namespaces: set[str]) -> list[dict]:
    out = []
    with open(CP / "audit.log", "rb") as f:
        f.seek(offset)
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if (e.get("user", {}).get("username") == "ticketplatform-operator" and e.get("verb") in WRITE_VERBS
                    and e.get("objectRef", {}).get("namespace") in namespaces):
                out.append(e)
    return out


# The benchmark's platforms land on the kwok nodes through spec.placement (their taint keeps
# everything else off them); the real node's pods would cost real CPU and memory.
FAKE_NODE_SPEC = ('{placement: {nodeSelector: {type: kwok}, '
                  'tolerations: [{key: kwok.x-k8s.io/node, operator: Exists, effect: NoSchedule}]}}')


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--namespaces", type=int, default=5)
    ap.add_argument("--resync", type=float, default=10.0, help="operator resync interval (s)")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()

    subprocess.run(["bash", str(REPO / "stack/controlplane.sh"), "start"], check=True)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds/ticketplatform.yaml"))
    namespaces = [f"bench-{i}" for i in range(args.namespaces)]
    log = open(RUN / "bench-operator.log", "wb")
    env = {**os.environ, "KUBECONFIG": str(CP / "operator.kubeconfig"), "TP_RESYNC_SECONDS": str(args.resync)}
    op = subprocess.Popen([sys.executable, "-m", "ticketplatform_operator", "run"], stdout=log, stderr=subprocess.STDOUT,
                          env=env, cwd=REPO)
    try:
        # With the operator running, leftovers of an earlier run can release their finalizers.
        for ns in namespaces:
            kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=300s")
            kubectl("create", "namespace", ns)
        applied: dict[tuple[str, str], float] = {}
        for i in range(args.count):
            ns = namespaces[i % len(namespaces)]
            name = f"tp-{i:03d}"
            kubectl("-n", ns, "apply", "-f", "-", input=f"apiVersion: ticketing.io/v1alpha1\nkind: TicketPlatform\n"
                    f"metadata: {{name: {name}}}\nspec: {FAKE_NODE_SPEC}\n")
            applied[(ns, name)] = time.monotonic()
        ready_at: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + args.timeout
        while len(ready_at) < len(applied) and time.monotonic() < deadline:
            items = json.loads(kubectl("get", "tp", "-A", "-o", "json"))["items"]
            now = time.monotonic()
            for it in items:
                key = (it["metadata"]["namespace"], it["metadata"]["name"])
                st = it.get("status", {})
                if key in applied and key not in ready_at and st.get("phase") == "Ready" \
                        and st.get("observedGeneration") == it["metadata"]["generation"]:
                    ready_at[key] = now
            time.sleep(0.5)
        latencies = sorted(ready_at[k] - applied[k] for k in ready_at)
        # Steady state: count the operator's writes over several resyncs once everything is Ready.
        time.sleep(3)
        offset = (CP / "audit.log").stat().st_size
        window = 3 * args.resync
        time.sleep(window + 2)
        writes = operator_writes(offset, set(namespaces))
        peak = peak_rss_mib(op.pid)
        for ns in namespaces:
            kubectl("delete", "namespace", ns, "--wait=true", "--timeout=300s")
    finally:
        op.terminate()
        op.wait(timeout=30)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, Python {platform.python_version()}")
    print(f"TicketPlatforms: {args.count} in {len(namespaces)} namespaces; Ready: {len(ready_at)}/{args.count}")
    if latencies:
        print(f"apply -> Ready: median {statistics.median(latencies):.1f} s, worst {latencies[-1]:.1f} s")
    print(f"operator peak memory (VmHWM): {peak:.0f} MiB")
    print(f"API writes in steady state: {len(writes)} over {window:.0f} s "
          f"= {len(writes) / (window / args.resync):.1f} per resync of all {args.count} objects")
    return 0 if len(ready_at) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
