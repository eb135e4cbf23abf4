"""Operator benchmark: apply N TicketPlatforms across several namespaces to the local control plane
(their pods on the kwok fake nodes) and print time from apply to first status and to Ready (median,
worst), the reconcile duration (p50, p95, from the operator's own histogram), the operator's peak
memory, and the API reads and writes per steady-state resync (counted in the apiserver's audit log).

    .venv/bin/python scripts/bench_operator.py [--count 50] [--namespaces 5] [--resync 10]
    .venv/bin/python scripts/bench_operator.py --count 50 --count 200 --count 500   # one after the other

It starts its own operator process; stop any other (`bash stack/operator.sh stop`, or scale the
in-cluster one to 0) first, since two operators would both act on the objects.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = Path(os.environ.get("TP_RUN_DIR", REPO / ".run"))
CP = RUN / "controlplane"
OPERATOR_USER = "ticketplatform-operator"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
READ_VERBS = {"get", "list"}
APPLIERS = 8  # concurrent kubectl apply processes: one kubectl sends one request at a time

BIN_DIR = subprocess.run(["bash", "-c", f". {REPO}/stack/lib.sh && echo $CP_BIN_DIR"], capture_output=True,
                         text=True, check=True).stdout.strip()

# The platforms land on the kwok nodes through spec.placement (their taint keeps everything else off
# them), one small replica per service: 500 platforms are 2,000 fake pods, within the fake nodes'
# capacity, and the real node's pods would cost real CPU and memory.
SMALL = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
BENCH_SPEC = json.dumps({
    "placement": {"nodeSelector": {"type": "kwok"},
                  "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]},
    "services": {name: {"replicas": 1, "resources": SMALL, "autoscaling": {"enabled": False}}
                 for name in ("frontend", "user-service", "event-catalog", "booking-service")},
})


def kubectl(*args: str, input: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(CP / "kubeconfig")}
    return subprocess.run([f"{BIN_DIR}/kubectl", *args], input=input, capture_output=True, text=True, env=env,
                          check=True).stdout


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def audit_events(start: int, end: int | None = None) -> list[dict]:
    """The apiserver's completed requests between two byte offsets of its audit log."""
    with open(CP / "audit.log", "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    events = []
    for line in data.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("stage") == "ResponseComplete":
            events.append(e)
    return events


def operator_calls(offset: int, namespaces: set[str]) -> tuple[list[dict], list[dict]]:
    """(reads, writes) by the operator after byte `offset` of the audit log, about the benchmark's
    namespaces (and CRD look-ups). Watches are neither: they are the cache's feed."""
    reads, writes = [], []
    for e in audit_events(offset):
        if e.get("user", {}).get("username") != OPERATOR_USER:
            continue
        ref = e.get("objectRef", {})
        ours = ref.get("namespace") in namespaces or ref.get("resource") == "customresourcedefinitions" and ref.get("name")
        if not ours:
            continue
        if e.get("verb") in WRITE_VERBS:
            writes.append(e)
        elif e.get("verb") in READ_VERBS:
            reads.append(e)
    return reads, writes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def histogram(port: int, name: str) -> list[tuple[float, float]]:
    """Cumulative buckets (upper bound, count) of a histogram on the operator's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return sorted((float(s.labels["le"]), s.value) for s in family.samples if s.name == f"{name}_bucket")
    return []


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The upper bound of the bucket holding quantile q (as Prometheus' histogram_quantile, coarse)."""
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return float("nan")


def creation_times() -> dict[tuple[str, str], float]:
    """(namespace, name) -> creationTimestamp (epoch seconds) of every TicketPlatform."""
    from datetime import datetime

    out = kubectl("get", "tp", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name} "
                  "{.metadata.creationTimestamp}{'\\n'}{end}")
    times = {}
    for line in out.splitlines():
        ns, name, stamp = line.split()
        times[(ns, name)] = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return times


def watch_until_ready(keys: set[tuple[str, str]], deadline: float) -> tuple[dict, dict]:
    """When each TicketPlatform first had a status and first was Ready for its generation
    (time.monotonic()), from one watch: polling 500 objects would load the apiserver itself."""
    import kubernetes

    api = kubernetes.client.CustomObjectsApi(kubernetes.config.new_client_from_config(str(CP / "kubeconfig")))
    first_status: dict[tuple[str, str], float] = {}
    ready_at: dict[tuple[str, str], float] = {}
    last_report = time.monotonic()
    while len(ready_at) < len(keys) and time.monotonic() < deadline:
        stream = kubernetes.watch.Watch().stream(api.list_cluster_custom_object, "ticketing.io", "v1alpha1",
                                                 "ticketplatforms", timeout_seconds=10)
        for event in stream:
            obj, now = event["object"], time.monotonic()
            key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
            status = obj.get("status") or {}
            if key in keys and status.get("phase"):
                first_status.setdefault(key, now)
                if status["phase"] == "Ready" and status.get("observedGeneration") == obj["metadata"]["generation"]:
                    ready_at.setdefault(key, now)
            if now - last_report > 10:
                print(f"[{time.strftime('%H:%M:%S')}] {len(first_status)} with status, {len(ready_at)} Ready", flush=True)
                last_report = now
            if len(ready_at) == len(keys) or now > deadline:
                break
    return first_status, ready_at


def ramp_requests(start: int, end: int, namespaces: set[str]) -> dict:
    """Audit events between two offsets: requests per client, and the operator's writes by kind."""
    from collections import Counter

    by_user: Counter = Counter()
    operator_writes: Counter = Counter()
    for e in audit_events(start, end):
        user = e.get("user", {}).get("username", "?")
        # Several components share the admin credentials: their user agent tells them apart.
        agent = (e.get("userAgent") or "?").split("/")[0].split(" ")[0]
        by_user[f"{agent} ({user.replace('system:serviceaccount:', 'sa:')})"] += 1
        ref = e.get("objectRef", {})
        if user == OPERATOR_USER and e.get("verb") in WRITE_VERBS and ref.get("namespace") in namespaces:
            what = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            operator_writes[what] += 1
    return {"by_user": by_user, "operator_writes": operator_writes}


def run(count: int, n_namespaces: int, resync: float, timeout: float) -> bool:
    namespaces = [f"bench-{i}" for i in range(n_namespaces)]
    metrics_port = free_port()
    log = open(RUN / "bench-operator.log", "wb")
    env = {**os.environ, "KUBECONFIG": str(CP / "operator.kubeconfig"), "TP_RESYNC_SECONDS": str(resync),
           "OPERATOR_METRICS_PORT": str(metrics_port), "OPERATOR_METRICS_ADDR": "127.0.0.1"}
    op = subprocess.Popen([sys.executable, "-m", "ticketplatform_operator", "run"], stdout=log, stderr=subprocess.STDOUT,
                          env=env, cwd=REPO)
    try:
        # With the operator running, leftovers of an earlier run can release their finalizers.
        for ns in namespaces:
            kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=true", "--timeout=300s")
            kubectl("create", "namespace", ns)
        docs = [f"apiVersion: ticketing.io/v1alpha1\nkind: TicketPlatform\nmetadata: {{name: tp-{i:03d}, "
                f"namespace: {namespaces[i % n_namespaces]}}}\nspec: {BENCH_SPEC}\n" for i in range(count)]
        print(f"[{time.strftime('%H:%M:%S')}] applying {count} TicketPlatforms ({APPLIERS} kubectl in parallel)", flush=True)
        ramp_offset = (CP / "audit.log").stat().st_size
        started = time.monotonic()
        started_wall = time.time()
        with ThreadPoolExecutor(APPLIERS) as pool:
            list(pool.map(lambda chunk: kubectl("apply", "--server-side", "-f", "-", input="---\n".join(chunk)),
                          [docs[i::APPLIERS] for i in range(APPLIERS)]))
        applied_in = time.monotonic() - started
        created = creation_times()
        keys = {(namespaces[i % n_namespaces], f"tp-{i:03d}") for i in range(count)}
        first_status, ready_at = watch_until_ready(keys, started + timeout)
        # Per object from its own creation (creationTimestamp, to the second), as a user applying
        # one TicketPlatform sees it; the whole batch from the start of the first apply.
        wall = lambda t: started_wall + (t - started)  # noqa: E731
        firsts = sorted(wall(t) - created[k] for k, t in first_status.items() if k in created)
        latencies = sorted(wall(t) - created[k] for k, t in ready_at.items() if k in created)
        all_ready = max(ready_at.values()) - started if len(ready_at) == count else None
        reconcile = histogram(metrics_port, "ticketplatform_reconcile_duration_seconds")
        # Steady state: count the operator's reads and writes over several resyncs once all is Ready.
        time.sleep(resync + 3)
        offset = (CP / "audit.log").stat().st_size
        window = 3 * resync
        time.sleep(window + 2)
        reads, writes = operator_calls(offset, set(namespaces))
        peak = peak_rss_mib(op.pid)
        ramp = ramp_requests(ramp_offset, offset, set(namespaces))
        kubectl("delete", "namespace", *namespaces, "--wait=true", "--timeout=900s")
    finally:
        op.terminate()
        op.wait(timeout=30)
    resyncs = window / resync
    print(f"TicketPlatforms: {count} in {n_namespaces} namespaces (applied in {applied_in:.1f} s); "
          f"Ready: {len(ready_at)}/{count}")
    if firsts:
        print(f"created -> first status: median {statistics.median(firsts):.1f} s, worst {firsts[-1]:.1f} s")
    if latencies:
        print(f"created -> Ready: median {statistics.median(latencies):.1f} s, worst {latencies[-1]:.1f} s")
    if all_ready is not None:
        print(f"first apply -> all {count} Ready: {all_ready:.1f} s")
    if reconcile:
        print(f"reconcile duration: p50 <= {quantile(reconcile, 0.5)} s, p95 <= {quantile(reconcile, 0.95)} s "
              f"({int(reconcile[-1][1])} reconciles)")
    print(f"operator peak memory (VmHWM): {peak:.0f} MiB")
    print(f"API calls in steady state over {window:.0f} s ({resyncs:.0f} resyncs of all {count}): "
          f"{len(reads)} reads, {len(writes)} writes = {len(reads) / resyncs:.1f} reads and "
          f"{len(writes) / resyncs:.1f} writes per resync")
    print("where the apiserver's requests went from the first apply to steady state (by client):")
    for user, n in ramp["by_user"].most_common(8):
        print(f"  {n:>7} {user}")
    print("  the operator's writes: " + ", ".join(f"{n} {what}" for what, n in ramp["operator_writes"].most_common()))
    for kind, events in (("read", reads), ("write", writes)):
        for e in events[:5]:
            ref = e["objectRef"]
            print(f"  {kind}: {e['verb']} {ref.get('resource')}/{ref.get('name') or ''} in {ref.get('namespace') or '-'}")
    return len(ready_at) == count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, action="append", help="TicketPlatforms (repeatable: one run each); default 50")
    ap.add_argument("--namespaces", type=int, default=5)
    ap.add_argument("--resync", type=float, default=10.0, help="operator resync interval (s)")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()

    subprocess.run(["bash", str(REPO / "stack/controlplane.sh"), "start"], check=True)
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds/ticketplatform.yaml"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, Python {platform.python_version()}")
    ok = True
    for count in args.count or [50]:
        print(f"--- {count} TicketPlatforms", flush=True)
        ok = run(count, args.namespaces, args.resync, args.timeout) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
