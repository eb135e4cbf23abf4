"""Bookings per second through the gateway, end to end, with p50/p95/p99 latency.

    .venv/bin/python services/bench_bookings.py                      # 50 clients, 3000 bookings
    .venv/bin/python services/bench_bookings.py --clients 50 --duration 30 --url http://127.0.0.1:18080

Each client is a thread with its own keep-alive connection and its own registered user; it books
one ticket at a time (POST /api/bookings/book) on the events with the most tickets left, as fast as
the platform answers. Every booking goes through the gateway, the user check, the inventory
reservation and the outbox insert; the relay publishes to Kafka in the background. The load
generator runs on the same machine and takes CPU from the services, so the figures are a floor.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections import Counter

import requests


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('FRONTEND_PORT', '18080')}")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000, help="total bookings (ignored with --duration)")
    parser.add_argument("--duration", type=float, default=0, help="run for this many seconds instead")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--events", type=int, default=5, help="spread bookings over the N events with most tickets")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    gw = args.url.rstrip("/")

    try:
        health = requests.get(gw + "/api/health", timeout=10).json()
    except requests.RequestException as exc:
        print(f"gateway {gw} unreachable ({type(exc).__name__}): start the stack with stack/services.sh start",
              file=sys.stderr)
        return 1
    if health.get("down"):
        print(f"gateway reports down services: {health['down']}", file=sys.stderr)
        return 1
    events = requests.get(gw + "/api/events", params={"sort": "-tickets_available", "limit": args.events,
                                                     "available": "true"}, timeout=10).json()
    if not events:
        print("no events with tickets left", file=sys.stderr)
        return 1
    event_ids = [e["event_id"] for e in events]
    stock = sum(e["tickets_available"] for e in events)
    planned = args.requests + args.warmup
    if not args.duration and stock < planned:
        print(f"only {stock} tickets left on the top {len(events)} events; lower --requests", file=sys.stderr)
        return 1

    run = uuid.uuid4().hex[:6]
    users = []
    session = requests.Session()
    for i in range(args.clients):
        r = session.post(gw + "/api/users/register",
                         json={"name": f"Bench User {i}", "email": f"bench-{run}-{i}@example.com"}, timeout=10)
        r.raise_for_status()
        users.append(r.json()["user_id"])

    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    remaining = [args.requests]
    stop_at = [0.0]
    warm = [args.warmup]

    def take() -> tuple[bool, bool]:
        """(go, is_warmup)"""
        with lock:
            if warm[0] > 0:
                warm[0] -= 1
                return True, True
            if args.duration:
                return time.perf_counter() < stop_at[0], False
            if remaining[0] <= 0:
                return False, False
            remaining[0] -= 1
            return True, False

    started = threading.Event()

    def client(i: int) -> None:
        s = requests.Session()
        user_id = users[i]
        n = i
        started.wait()
        while True:
            go, warmup = take()
            if not go:
                return
            n += 1
            body = {"user_id": user_id, "event_id": event_ids[n % len(event_ids)], "ticket_count": 1}
            t0 = time.perf_counter()
            try:
                status = s.post(gw + "/api/bookings/book", json=body, timeout=30).status_code
            except requests.RequestException:
                status = 0
            elapsed = time.perf_counter() - t0
            if not warmup:
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    # warm-up first (connections, caches), then the measured run
    started.set()
    while True:
        with lock:
            if warm[0] <= 0:
                break
        time.sleep(0.01)
    with lock:
        latencies.clear()
        statuses.clear()
    t_start = time.perf_counter()
    stop_at[0] = t_start + args.duration
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start

    ok = statuses.get(200, 0)
    lat = sorted(x * 1000 for x in latencies)
    figures = {
        "clients": args.clients,
        "requests": len(latencies),
        "ok": ok,
        "sold_out_409": statuses.get(409, 0),
        "errors": len(latencies) - ok - statuses.get(409, 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(wall, 2),
        "bookings_per_second": round(ok / wall, 1) if wall else 0,
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(lat[-1], 1) if lat else None,
        "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"bookings through {gw}/api/bookings/book, {args.clients} concurrent clients, {os.cpu_count()} CPUs")
        print(f"  requests      {figures['requests']}  (200: {ok}, 409: {figures['sold_out_409']}, "
              f"other: {figures['errors']})  in {figures['seconds']} s")
        print(f"  throughput    {figures['bookings_per_second']} bookings/s")
        print(f"  latency       p50 {figures['p50_ms']} ms   p95 {figures['p95_ms']} ms   "
              f"p99 {figures['p99_ms']} ms   max {figures['max_ms']} ms")
    return 0 if figures["errors"] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
