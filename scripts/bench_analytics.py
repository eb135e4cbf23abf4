#!/usr/bin/env python3
"""Measure the local analytics job: freshness and sustained throughput.

    .venv/bin/python scripts/bench_analytics.py [--window 5] [--rate 50] [--duration 60]
                                                [--backlog 200000] [--checkpoint-interval 5]

Runs against the local stack's Kafka broker (started with stack/kafka.sh if it is not running) and
the LocalEngine with PyFlink from stack/flink.sh, on fresh topics, with the job settings the
operator uses (parallelism 1, exactly-once sink, read_committed reader).

1. Freshness. Bookings are produced at --rate per second for --duration seconds, each stamped with
   its produce time (the moment the booking is handed to Kafka, i.e. accepted). For each booking:
   freshness = (time its window's result is readable on analytics-results) - (produce time) - window.
   A booking made at the very end of a window waits only for the window to close, one made at the
   start waits the whole window, so the window length is taken off. What is left is the
   out-of-orderness bound (the watermark must pass the window end), the wait for the checkpoint that
   commits the result transaction, and processing. Also reported: window-close latency, the time
   from a window's end to its result being readable.
2. Throughput. --backlog bookings are written to a fresh topic first; then the job is started and
   the rate at which it drains the backlog is read from the offsets it commits for its consumer
   group (time from the first committed progress to the offset reaching the end): the events per
   second one job (parallelism 1) sustains on this machine, startup excluded.
"""
from __future__ import annotations

import argparse
import json

import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))
sys.path.insert(0, str(REPO_DIR / "operator"))

from kafka import KafkaAdminClient, KafkaProducer, TopicPartition  # noqa: E402

from tests.analytics.kafka_util import Results, create_topics, delete_topics, iso_s, unique  # noqa: E402
from ticketplatform_operator.analytics import RUNNING, JobRequest  # noqa: E402
from ticketplatform_operator.analytics.local import LocalEngine  # noqa: E402


def stack(script: str, *args: str) -> dict[str, str]:
    out = subprocess.run(["bash", str(REPO_DIR / "stack" / script), *args], cwd=REPO_DIR, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def start_job(engine: LocalEngine, request: JobRequest, timeout: float = 300) -> float:
    engine.ensure(request, None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.ensure(request, None).state == RUNNING:
            return time.time()
        time.sleep(0.25)
    raise SystemExit(f"job did not start; see {engine.job_dir(request) / 'job.log'}")


def freshness(args, bootstrap: str, engine: LocalEngine) -> dict[str, float]:
    source, results_topic = unique("bench-bookings"), unique("bench-results")
    create_topics(bootstrap, (source, 1), (results_topic, 1))
    request = JobRequest.build("bench", "freshness", window_seconds=args.window, out_of_orderness_seconds=args.ooo,
                               bootstrap_servers=bootstrap, source_topic=source, results_topic=results_topic,
                               checkpoint_interval_seconds=args.checkpoint_interval, idle_timeout_seconds=5)
    try:
        start_job(engine, request)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        results = Results(bootstrap, results_topic)
        produced: list[tuple[int, str, int]] = []   # (produce ms, event id, window end ms)
        w_ms = args.window * 1000
        interval = 1.0 / args.rate
        print(f"freshness: producing {args.rate}/s for {args.duration}s, window {args.window}s, "
              f"out-of-orderness {args.ooo}s, checkpoints every {args.checkpoint_interval}s", flush=True)
        t_end = time.monotonic() + args.duration
        i = 0
        next_at = time.monotonic()
        while time.monotonic() < t_end:
            now_ms = int(time.time() * 1000)
            eid = i % 5 + 1
            producer.send(source, json.dumps({"event_id": eid, "user_id": "bench", "ticket_count": 1,
                                              "timestamp": now_ms, "booking_id": f"b{i}"}).encode())
            produced.append((now_ms, eid, (now_ms // w_ms + 1) * w_ms))
            i += 1
            next_at += interval
            results.poll(0)
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        # Keep time moving (one booking a second) until the last measured window is out.
        last_end = produced[-1][2]
        deadline = time.monotonic() + args.window + args.ooo + 3 * args.checkpoint_interval + 60
        while time.monotonic() < deadline:
            producer.send(source, json.dumps({"event_id": 0, "user_id": "bench", "ticket_count": 1,
                                              "timestamp": int(time.time() * 1000)}).encode())
            producer.flush()
            results.poll(1.0)
            if any(m["window_end"] == iso_s(last_end) for m in results.messages):
                break
        producer.close()
        seen: dict[tuple[int, str], float] = {}
        for msg, at in zip(results.messages, results.arrival):
            seen.setdefault((msg["event_id"], msg["window_end"]), at)
        fresh = [seen[(eid, iso_s(wend))] - p_ms / 1000 - args.window
                 for p_ms, eid, wend in produced if (eid, iso_s(wend)) in seen]
        close_lat = [at - datetime.fromisoformat(wend_iso.replace("Z", "+00:00")).timestamp()
                     for (eid, wend_iso), at in seen.items() if eid != 0]
        missing = sum(1 for _, eid, wend in produced if (eid, iso_s(wend)) not in seen)
        counts = sum(m["total_tickets"] for m in results.messages if m["event_id"] != 0)
        results.close()
        return {"bookings": len(produced), "missing": missing, "counted": counts,
                "fresh_p50": pct(fresh, 0.5), "fresh_p95": pct(fresh, 0.95), "fresh_max": max(fresh, default=float("nan")),
                "fresh_min": min(fresh, default=float("nan")),
                "close_p50": pct(close_lat, 0.5), "close_p95": pct(close_lat, 0.95), "close_max": max(close_lat, default=float("nan"))}
    finally:
        engine.cancel(request, None)
        delete_topics(bootstrap, source, results_topic)


def throughput(args, bootstrap: str, engine: LocalEngine) -> dict[str, float]:
    source, results_topic = unique("bench-backlog"), unique("bench-backlog-results")
    create_topics(bootstrap, (source, 1), (results_topic, 1))
    request = JobRequest.build("bench", "throughput", window_seconds=args.window, out_of_orderness_seconds=args.ooo,
                               bootstrap_servers=bootstrap, source_topic=source, results_topic=results_topic,
                               checkpoint_interval_seconds=1, idle_timeout_seconds=5)
    try:
        print(f"throughput: writing a backlog of {args.backlog} bookings", flush=True)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=256 * 1024)
        base = 1_893_456_000_000
        t0 = time.monotonic()
        for i in range(args.backlog):
            ts = base + i * 10            # 100 bookings per second of event time
            producer.send(source, json.dumps({"event_id": i % 50 + 1, "user_id": f"u{i % 997}", "ticket_count": i % 4 + 1,
                                              "timestamp": ts if i % 2 else time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) + f".{ts % 1000:03d}Z",
                                              "booking_id": f"b{i}"}).encode())
        producer.flush()
        producer.close()
        print(f"throughput: backlog written in {time.monotonic() - t0:.1f}s; starting the job", flush=True)
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        tp = TopicPartition(source, 0)
        started = start_job(engine, request)
        first_progress = None
        samples: list[tuple[float, int]] = []
        deadline = time.time() + 1800
        while time.time() < deadline:
            offsets = admin.list_group_offsets({request.group_id: [tp]}).get(request.group_id, {})
            off = offsets[tp].offset if tp in offsets else 0
            now = time.time()
            samples.append((now, off))
            if off > 0 and first_progress is None:
                first_progress = (now, off)
            if off >= args.backlog:
                break
            time.sleep(0.5)
        admin.close()
        end_t, end_off = samples[-1]
        if first_progress is None or end_off < args.backlog:
            raise SystemExit("the job did not drain the backlog in time")
        steady = (end_off - first_progress[1]) / max(1e-9, end_t - first_progress[0])
        overall = end_off / max(1e-9, end_t - started)
        return {"events": args.backlog, "steady_eps": steady, "with_warmup_eps": overall,
                "drain_seconds": end_t - started}
    finally:
        engine.cancel(request, None)
        delete_topics(bootstrap, source, results_topic)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--window", type=int, default=5, help="window length in seconds (default 5)")
    p.add_argument("--ooo", type=int, default=2, help="out-of-orderness bound in seconds (default 2)")
    p.add_argument("--checkpoint-interval", type=float, default=5.0, help="seconds (default 5, as in the operator)")
    p.add_argument("--rate", type=float, default=50, help="bookings per second for the freshness run")
    p.add_argument("--duration", type=float, default=60, help="seconds of bookings for the freshness run")
    p.add_argument("--backlog", type=int, default=200_000, help="bookings for the throughput run (0 = skip)")
    p.add_argument("--skip-freshness", action="store_true")
    args = p.parse_args()

    bootstrap = stack("kafka.sh", "start")["KAFKA_BOOTSTRAP_SERVERS"]
    env = stack("flink.sh", "setup")
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as run_dir:
        engine = LocalEngine(run_dir=run_dir, python=env["FLINK_PYTHON"], connector_jar=env["FLINK_KAFKA_CONNECTOR_JAR"],
                             supervise_interval=None)
        if not args.skip_freshness:
            f = freshness(args, bootstrap, engine)
            print(f"\nfreshness ({f['bookings']} bookings, {f['missing']} without a result, "
                  f"{f['counted']} tickets counted):")
            print(f"  produce -> result, minus the {args.window}s window: p50 {f['fresh_p50']:.2f}s  "
                  f"p95 {f['fresh_p95']:.2f}s  min {f['fresh_min']:.2f}s  max {f['fresh_max']:.2f}s")
            print(f"  window end -> result readable (read_committed): p50 {f['close_p50']:.2f}s  "
                  f"p95 {f['close_p95']:.2f}s  max {f['close_max']:.2f}s", flush=True)
        if args.backlog:
            t = throughput(args, bootstrap, engine)
            print(f"\nthroughput ({t['events']} bookings, parallelism 1):")
            print(f"  steady: {t['steady_eps']:.0f} events/s; including job start: {t['with_warmup_eps']:.0f} events/s "
                  f"(drained in {t['drain_seconds']:.1f}s)", flush=True)
        engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
