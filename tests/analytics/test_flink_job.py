"""The analytics job end to end: real Kafka broker, real Flink (PyFlink MiniCluster), run by LocalEngine.

Bookings with event times the test controls go into a fresh source topic; what the job commits to a
fresh results topic is read with isolation.level=read_committed and compared with sums computed
here. Windows are a few seconds long and parallelism is 1 (the machine has 2 cores, shared).
"""
from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from ticketplatform_operator.analytics import (CANCELLED, FAILED, PENDING, RESTARTING, RUNNING, JobRequest,
                                               make_engine)
from ticketplatform_operator.analytics.local import LocalEngine, local_job_id

from .kafka_util import Bookings, Results, booking, create_topics, delete_topics, iso, iso_s, unique

# 2030-01-01T00:00:00Z: a multiple of every window length used here.
T0 = 1_893_456_000_000
START_TIMEOUT = 180      # a cold JVM + MiniCluster on a busy 2-core machine
RESULT_TIMEOUT = 120

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def topics(kafka):
    source, results = unique("tp-test-bookings"), unique("tp-test-results")
    # Two source partitions, of which the tests fill only partition 0: the empty one holds the
    # watermark back until the idle-source timeout marks it idle, so progress proves the timeout works.
    create_topics(kafka.bootstrap_servers, (source, 2), (results, 1))
    yield source, results
    delete_topics(kafka.bootstrap_servers, source, results)


def make_engine_for(tmp_path: Path, flink_env: dict[str, str], **kwargs) -> LocalEngine:
    return LocalEngine(run_dir=tmp_path / "analytics", python=flink_env["FLINK_PYTHON"],
                       connector_jar=flink_env["FLINK_KAFKA_CONNECTOR_JAR"], **kwargs)


def job_request(kafka, topics, name: str, **overrides) -> JobRequest:
    source, results = topics
    fields = dict(window_seconds=5, out_of_orderness_seconds=2, parallelism=1,
                  bootstrap_servers=kafka.bootstrap_servers, source_topic=source, results_topic=results,
                  checkpoint_interval_seconds=1, idle_timeout_seconds=1)
    fields.update(overrides)
    return JobRequest.build("test", name, **fields)


def wait_state(engine: LocalEngine, request: JobRequest, states: set[str], timeout: float = START_TIMEOUT):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = engine.ensure(request, None)
        if not seen or seen[-1] != status.state:
            seen.append(status.state)
        if status.state in states:
            return status
        time.sleep(0.5)
    log = (engine.job_dir(request) / "job.log")
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise AssertionError(f"job never reached {states}; states seen {seen}; job.log tail:\n{tail}")


@pytest.fixture
def cleanup_engines():
    engines: list[tuple[LocalEngine, JobRequest]] = []
    yield engines
    for engine, request in engines:
        try:
            engine.cancel(request, None)
        finally:
            engine.shutdown()


def expected_sums(bookings_: list[dict], window_ms: int) -> dict[tuple, int]:
    sums: dict[tuple, int] = defaultdict(int)
    for b in bookings_:
        ts = b["timestamp"]
        ms = ts if isinstance(ts, int) else int(ts) if str(ts).isdigit() else None
        if ms is None:
            from datetime import datetime
            ms = int(datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp() * 1000)
        eid = int(b["event_id"]) if str(b["event_id"]).lstrip("-").isdigit() else b["event_id"]
        sums[(eid, iso_s((ms // window_ms + 1) * window_ms))] += int(b["ticket_count"])
    return dict(sums)


def test_exact_window_sums_and_lateness(kafka, flink_env, topics, tmp_path, cleanup_engines):
    """Exact sums per event per 5 s window; a booking late within the 2 s bound counts, one beyond
    it does not; both timestamp shapes and both event-id shapes are accepted; junk is skipped."""
    engine = make_engine_for(tmp_path, flink_env, supervise_interval=None)
    request = job_request(kafka, topics, "sums")
    cleanup_engines.append((engine, request))
    source, results_topic = topics
    producer = Bookings(kafka.bootstrap_servers, source)
    results = Results(kafka.bootstrap_servers, results_topic)

    # Window W0 = [T0, T0+5s), W1 = [T0+5s, T0+10s), W2 = [T0+10s, T0+15s).
    w0 = [booking(1, 2, T0 + 100), booking("1", 3, iso(T0 + 1200)), booking(2, 1, str(T0 + 2500)),
          booking("vip-gala", 4, iso(T0 + 3000)), booking(1, 1, "2030-01-01T01:00:04.900+01:00")]
    w1 = [booking(2, 5, T0 + 5000), booking(1, 2, iso(T0 + 6500)), booking(2, 2, T0 + 6900)]
    # Max event time is now T0+6.9s, so the watermark is T0+4.9s: a W0 booking at T0+4.95s is late
    # but within the bound, and counts.
    late_within = [booking(1, 7, iso(T0 + 4950))]
    junk = [b"not json at all", {"event_id": 1, "ticket_count": 3}, {"event_id": 1, "ticket_count": "x",
            "timestamp": T0 + 5100}, {"ticket_count": 1, "timestamp": T0 + 5200},
            {"event_id": 2, "ticket_count": 1, "timestamp": "yesterday"}]
    # T0+12.5s moves the watermark to T0+10.5s: W0 and W1 close.
    w2 = [booking(1, 1, T0 + 10_000), booking(3, 6, T0 + 12_500)]
    producer.send_all(w0 + w1 + late_within + junk + w2)

    status = engine.ensure(request, None)
    assert status.state == PENDING
    assert status.job_id == local_job_id(request)
    wait_state(engine, request, {RUNNING})

    expected = expected_sums(w0 + w1 + late_within + w2, 5000)
    w01 = {k: v for k, v in expected.items() if k[1] in (iso_s(T0 + 5000), iso_s(T0 + 10_000))}
    results.wait_for(lambda msgs: len(msgs) >= len(w01), RESULT_TIMEOUT, "the W0 and W1 results")

    # Beyond the bound: the watermark (T0+10.5s) has passed W0 and W1, whose results are out.
    late_beyond = [booking(1, 100, T0 + 1000), booking(2, 100, iso(T0 + 9_900))]
    # Then close W2 (and W3, empty): T0+17.5s moves the watermark to T0+15.5s.
    closer = [booking(9, 1, T0 + 17_500)]
    producer.send_all(late_beyond + closer)
    results.wait_for(lambda msgs: any(m["window_end"] == iso_s(T0 + 15_000) for m in msgs), RESULT_TIMEOUT,
                     "the W2 results")
    results.poll(2)

    got = results.by_key()
    assert {k: v for k, v in got.items()} == {k: [v] for k, v in expected.items() if k[1] <= iso_s(T0 + 15_000)}
    # Spelled out, for the reader:
    assert got[(1, iso_s(T0 + 5000))] == [2 + 3 + 1 + 7]      # int and string ids are one event; late-within counts
    assert got[(2, iso_s(T0 + 5000))] == [1]                  # late-beyond (100) does not count
    assert got[("vip-gala", iso_s(T0 + 5000))] == [4]         # a non-numeric id stays a string
    assert got[(2, iso_s(T0 + 10_000))] == [5 + 2]            # late-beyond (100) does not count
    assert all(m.keys() == {"event_id", "window_end", "total_tickets"} for m in results.messages)
    producer.close()
    results.close()


def _kill_job_group(engine: LocalEngine, request: JobRequest) -> int:
    pid = engine.pid(request)
    assert pid, "no job process to kill"
    os.killpg(pid, signal.SIGKILL)
    return pid


def test_restart_mid_stream_loses_and_double_counts_nothing(kafka, flink_env, topics, tmp_path, cleanup_engines):
    """A stream of bookings over 24 two-second windows; the job is killed (SIGKILL, whole process
    group) mid-stream and restarted by the supervisor with back-off, later stopped and started again
    by a new engine instance (an operator restart). Every window's total is exact, and appears once."""
    engine = make_engine_for(tmp_path, flink_env, supervise_interval=0.5, backoff_base=1.0)
    # Checkpoints every 2 s: results of the windows that close between two checkpoints sit in an
    # open Kafka transaction, which a kill leaves behind for the restarted job to abort.
    request = job_request(kafka, topics, "restart", window_seconds=2, out_of_orderness_seconds=1,
                          checkpoint_interval_seconds=2)
    cleanup_engines.append((engine, request))
    source, results_topic = topics
    producer = Bookings(kafka.bootstrap_servers, source)
    results = Results(kafka.bootstrap_servers, results_topic)

    # 480 bookings, 100 ms of event time apart: 48 s of event time, 24 windows, 3 events.
    stream = [booking(i % 3 + 1, (i * 7) % 4 + 1, T0 + i * 100 if i % 2 else iso(T0 + i * 100)) for i in range(480)]
    batches = [stream[i:i + 80] for i in range(0, 480, 80)]

    engine.ensure(request, None)
    wait_state(engine, request, {RUNNING})
    producer.send_all(batches[0])
    producer.send_all(batches[1])
    results.wait_for(lambda msgs: len(msgs) >= 6, RESULT_TIMEOUT, "first results")

    # Crash 1: kill the whole process group while the next batch is being consumed.
    producer.send_all(batches[2])
    time.sleep(0.5)
    killed = _kill_job_group(engine, request)
    failed = wait_state(engine, request, {FAILED, RESTARTING}, timeout=30)
    assert "exited" in failed.message or failed.state == RESTARTING
    producer.send_all(batches[3])
    status = wait_state(engine, request, {RUNNING})
    assert status.restarts >= 1
    assert engine.pid(request) != killed

    # Operator restart: a new engine adopts the running job instead of starting a second one.
    pid_before = engine.pid(request)
    engine.shutdown()
    engine2 = make_engine_for(tmp_path, flink_env, supervise_interval=0.5, backoff_base=1.0)
    cleanup_engines.append((engine2, request))
    adopted = engine2.ensure(request, None)
    assert adopted.state == RUNNING and engine2.pid(request) == pid_before

    # Stop and start through the engine mid-stream (the job cancels itself, checkpoints kept).
    producer.send_all(batches[4])
    time.sleep(1.0)
    engine2.cancel(request, adopted)
    assert engine2.pid(request) is None
    state = json.loads((engine2.job_dir(request) / "state.json").read_text())
    assert state["state"] == CANCELLED
    producer.send_all(batches[5])
    engine2.ensure(request, None)
    wait_state(engine2, request, {RUNNING})

    # Close the last window: event time T0+50s moves the watermark past T0+48s.
    producer.send_all([booking(99, 1, T0 + 50_000)])
    expected = expected_sums(stream, 2000)
    results.wait_for(lambda msgs: {(m["event_id"], m["window_end"]) for m in msgs} >= set(expected),
                     RESULT_TIMEOUT + 60, "every window of the stream")
    results.poll(3)   # anything duplicated would be committed by now

    got = results.by_key()
    duplicates = {k: v for k, v in got.items() if len(v) > 1}
    assert not duplicates, f"double-counted windows: {duplicates}"
    wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != [v]}
    assert not wrong, f"windows with lost or extra tickets (got, expected): {wrong}"
    assert sum(v[0] for k, v in got.items() if k in expected) == sum(b["ticket_count"] for b in stream)
    assert set(got) - set(expected) <= {(99, iso_s(T0 + 52_000))}
    # It really was restored from checkpoints, twice.
    log = (engine2.job_dir(request) / "job.log").read_text(errors="replace")
    restored = [json.loads(line)["restored_from"] for line in log.splitlines() if line.startswith('{"analytics_job"')]
    assert len(restored) == 3 and restored[0] is None and all(restored[1:]), restored
    # What a read_uncommitted reader sees includes results of aborted transactions (a kill mid-
    # transaction): evidence of what read_committed readers are spared. Informational only, since
    # whether a kill lands inside an open transaction is a matter of timing.
    uncommitted = Results(kafka.bootstrap_servers, results_topic, isolation_level="read_uncommitted")
    uncommitted.wait_for(lambda msgs: len(msgs) >= len(results.messages), 60, "uncommitted view")
    uncommitted.poll(2)
    print(f"results: {len(results.messages)} committed, {len(uncommitted.messages)} incl. aborted transactions")
    uncommitted.close()
    producer.close()
    results.close()


def test_local_engine_lifecycle_spec_change_and_cancel(kafka, flink_env, topics, tmp_path, cleanup_engines):
    engine = make_engine("local", run_dir=tmp_path / "analytics", python=flink_env["FLINK_PYTHON"],
                         connector_jar=flink_env["FLINK_KAFKA_CONNECTOR_JAR"], supervise_interval=None)
    request = job_request(kafka, topics, "lifecycle")
    cleanup_engines.append((engine, request))

    first = engine.ensure(request, None)
    assert first.state == PENDING and first.spec_hash == request.spec_hash
    running = wait_state(engine, request, {RUNNING})
    pid = engine.pid(request)
    assert running.job_id == f"local-test-lifecycle-{request.spec_hash[:8]}"
    # Idempotent: ensure again changes nothing and starts nothing.
    again = engine.ensure(request, running)
    assert again.state == RUNNING and engine.pid(request) == pid and again.last_state_change == running.last_state_change

    changed = job_request(kafka, topics, "lifecycle", window_seconds=10)
    status = engine.ensure(changed, running)
    assert status.spec_hash == changed.spec_hash and status.job_id != running.job_id
    assert status.state == PENDING
    new_pid = engine.pid(changed)
    assert new_pid and new_pid != pid
    assert not Path(f"/proc/{pid}").exists() or b"analytics_job" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    wait_state(engine, changed, {RUNNING})
    cmdline = Path(f"/proc/{new_pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[cmdline.index(b"--window") + 1] == b"10s"

    engine.cancel(changed, status)
    assert engine.pid(changed) is None
    assert not Path(f"/proc/{new_pid}").exists() or Path(f"/proc/{new_pid}/stat").read_text().split()[2] == "Z"
    assert json.loads((engine.job_dir(changed) / "state.json").read_text())["state"] == CANCELLED
    engine.cancel(changed, status)   # idempotent
