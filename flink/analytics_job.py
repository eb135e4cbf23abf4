"""TicketPlatform analytics job: tickets booked per event in tumbling event-time windows.

Reads booking messages from Kafka (default topic ``ticket-bookings``)::

    {"event_id": 7, "user_id": "u1", "ticket_count": 2,
     "timestamp": "2025-06-01T12:00:03.120Z" | 1748779203120, "booking_id": "b1"}

and writes one message per (event, window) to ``analytics-results``::

    {"event_id": 7, "window_end": "2025-06-01T12:01:00Z", "total_tickets": 5}

* Event time is the message's ``timestamp``: an ISO-8601 string (``Z``, ``+00:00`` or another
  ``±HH:MM`` offset, or none meaning UTC; fractional seconds allowed) or epoch milliseconds (a JSON
  number or a string of digits).
* ``window_end`` is ISO-8601 UTC with second precision and a ``Z`` (the window end is exclusive).
* ``event_id`` is emitted as a JSON number when it looks like an integer (``7`` and ``"7"`` are one
  event), otherwise as a JSON string. The Kafka record key of a result is the event id.
* Messages that are not JSON, or lack ``event_id``, ``ticket_count`` or a parseable ``timestamp``,
  are skipped (they never fail the job).
* A booking whose event time is behind the watermark (more than ``--out-of-orderness`` behind the
  newest event time seen) when it arrives is dropped: its window has already been emitted.
* A partition that receives nothing for ``--idle-timeout`` stops holding the watermark back.

Exactly once: checkpoints every ``--checkpoint-interval`` hold the Kafka source offsets and the open
windows; results go out in Kafka transactions that commit when the checkpoint that covers them
completes (``sink.delivery-guarantee = exactly-once``), so readers of the results topic must use
``isolation.level=read_committed``. Checkpoints are retained when the job stops or dies, and a
restarted job (``--restore auto``, the default) resumes from the newest one in ``--checkpoint-dir``:
offsets and window contents come back together, and the sink commits or aborts the transactions the
previous run left open. Nothing is lost and nothing is counted twice.

Written with PyFlink's Table API and Flink SQL only (no Python UDFs), so records never leave the JVM.
Every setting is a command-line flag with an environment-variable fallback (``TP_ANALYTICS_*``);
run ``python analytics_job.py --help``.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import re
import signal
import sys
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

log = logging.getLogger("analytics_job")

ENV_PREFIX = "TP_ANALYTICS_"


@dataclass(frozen=True)
class JobConfig:
    bootstrap_servers: str = "127.0.0.1:19092"
    source_topic: str = "ticket-bookings"
    results_topic: str = "analytics-results"
    group_id: str = "tp-analytics"
    window_seconds: int = 60
    out_of_orderness_ms: int = 5000
    idle_timeout_ms: int = 10000
    parallelism: int = 1
    checkpoint_dir: str = ""
    checkpoint_interval_ms: int = 5000
    restore: str = "auto"  # "auto" (newest retained checkpoint in checkpoint_dir), "none", or a path
    transactional_id_prefix: str = ""  # default: "<group_id>-tx"
    transaction_timeout_ms: int = 600000  # must stay below the broker's transaction.max.timeout.ms
    startup_mode: str = "group-offsets"  # or earliest-offset / latest-offset, for a run with no state
    partition_discovery_ms: int = 30000
    jars: str = ""  # ';'-separated jar paths or URLs for pipeline.jars (the Kafka connector)
    job_name: str = "ticketplatform-analytics"
    status_file: str = ""  # when set, the job's Flink status is written here as JSON (for a supervisor)

    @property
    def tx_prefix(self) -> str:
        return self.transactional_id_prefix or f"{self.group_id}-tx"


def _duration_ms(text: str) -> int:
    """'5000' (ms), '5s', '250ms', '2m' -> milliseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 5000, 5s, 250ms, 1m)")
    value, unit = float(m.group(1)), (m.group(2) or "ms")
    factor = {"ms": 1, "s": 1000, "m": 60000, "min": 60000, "h": 3600000}[unit]
    return int(round(value * factor))


def _window_seconds(text: str) -> int:
    ms = _duration_ms(text if re.search(r"[a-z]", str(text)) else f"{text}s")
    if ms <= 0 or ms % 1000:
        raise argparse.ArgumentTypeError("the window must be a whole, positive number of seconds")
    return ms // 1000


def parse_args(argv: list[str] | None = None,
               environ: dict[str, str] | None = None) -> tuple[JobConfig, bool]:
    env = os.environ if environ is None else environ
    d = JobConfig()

    def e(name: str, default):
        return env.get(ENV_PREFIX + name, default)

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=f"Each flag falls back to the environment variable {ENV_PREFIX}<FLAG> "
                                       "(upper case, '-' as '_'), e.g. TP_ANALYTICS_WINDOW=60s.")
    p.add_argument("--bootstrap-servers",
                   default=e("BOOTSTRAP_SERVERS", env.get("KAFKA_BOOTSTRAP_SERVERS", d.bootstrap_servers)))
    p.add_argument("--source-topic", default=e("SOURCE_TOPIC", d.source_topic))
    p.add_argument("--results-topic", default=e("RESULTS_TOPIC", d.results_topic))
    p.add_argument("--group-id", default=e("GROUP_ID", d.group_id),
                   help="consumer group of the source; also the default transactional id prefix")
    p.add_argument("--window", dest="window_seconds", type=_window_seconds,
                   default=_window_seconds(e("WINDOW", str(d.window_seconds))),
                   help="tumbling window length: seconds, or 30s / 1m (default 60)")
    p.add_argument("--out-of-orderness", dest="out_of_orderness_ms", type=_duration_ms,
                   default=_duration_ms(e("OUT_OF_ORDERNESS", "5s")),
                   help="watermark bound: how far behind the newest event time a booking may arrive "
                        "and still count (default 5s)")
    p.add_argument("--idle-timeout", dest="idle_timeout_ms", type=_duration_ms,
                   default=_duration_ms(e("IDLE_TIMEOUT", "10s")),
                   help="a partition silent this long no longer holds the watermark back (default 10s; 0 = off)")
    p.add_argument("--parallelism", type=int, default=int(e("PARALLELISM", d.parallelism)))
    p.add_argument("--checkpoint-dir", default=e("CHECKPOINT_DIR", d.checkpoint_dir),
                   help="where checkpoints go (a local path or a URL such as gs://bucket/path); required")
    p.add_argument("--checkpoint-interval", dest="checkpoint_interval_ms", type=_duration_ms,
                   default=_duration_ms(e("CHECKPOINT_INTERVAL", "5s")),
                   help="results become visible to read_committed readers at this pace (default 5s)")
    p.add_argument("--restore", default=e("RESTORE", d.restore),
                   help="'auto': resume from the newest complete checkpoint under --checkpoint-dir "
                        "(local, or remote through Flink's file systems); 'none'; or a checkpoint/savepoint path")
    p.add_argument("--transactional-id-prefix", default=e("TRANSACTIONAL_ID_PREFIX", d.transactional_id_prefix))
    p.add_argument("--transaction-timeout", dest="transaction_timeout_ms", type=_duration_ms,
                   default=_duration_ms(e("TRANSACTION_TIMEOUT", "10min")))
    p.add_argument("--startup-mode", default=e("STARTUP_MODE", d.startup_mode),
                   choices=["group-offsets", "earliest-offset", "latest-offset"],
                   help="where a run without a checkpoint starts reading (group-offsets falls back to earliest)")
    p.add_argument("--partition-discovery", dest="partition_discovery_ms", type=_duration_ms,
                   default=_duration_ms(e("PARTITION_DISCOVERY", "30s")),
                   help="how often new partitions of the source topic are picked up")
    p.add_argument("--jars", default=e("JARS", env.get("FLINK_KAFKA_CONNECTOR_JAR", d.jars)),
                   help="';'-separated connector jar paths/URLs added to pipeline.jars "
                        "(empty when the cluster already has them on its classpath)")
    p.add_argument("--job-name", default=e("JOB_NAME", d.job_name))
    p.add_argument("--status-file", default=e("STATUS_FILE", d.status_file),
                   help="write {state, flink_job_id, restored_from, time} here whenever the Flink job "
                        "status changes (and every 10 s), for a supervisor such as the operator")
    p.add_argument("--print-sql", action="store_true", help="print the SQL and exit")
    ns = p.parse_args(argv)
    if not ns.checkpoint_dir and not ns.print_sql:
        p.error("--checkpoint-dir (or TP_ANALYTICS_CHECKPOINT_DIR) is required: without it a restart "
                "could not resume, and exactly-once would not hold")
    cfg = JobConfig(**{k: v for k, v in vars(ns).items() if k != "print_sql"})
    return cfg, ns.print_sql


# --- SQL -------------------------------------------------------------------------------------------

def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _interval(ms: int) -> str:
    """A DAY TO SECOND interval literal (no leading-precision limit on seconds)."""
    days, rest = divmod(int(ms), 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY TO SECOND(3)"


# The event time, as TIMESTAMP_LTZ(3), from the text of the "timestamp" field (the JSON format hands
# a number over as its text, so one STRING column takes both shapes):
#  * digits only: epoch milliseconds;
#  * otherwise ISO-8601: date, 'T' or ' ', time with an optional fraction, and an optional offset
#    (Z, +00:00, or any other ±HH:MM / ±HHMM, which is subtracted to get UTC). No offset means UTC.
# Anything else gives NULL, and the row is dropped before the window.
_OFFSET_RE = r"([+-])(\d{2}):?(\d{2})$"
_EVENT_TIME_SQL = f"""CASE
      WHEN REGEXP(`timestamp`, '^[0-9]{{1,15}}$') THEN TO_TIMESTAMP_LTZ(CAST(`timestamp` AS BIGINT), 3)
      ELSE CAST(TIMESTAMPADD(MINUTE,
             -1 * COALESCE(
               TRY_CAST(CONCAT(REGEXP_EXTRACT(`timestamp`, '{_OFFSET_RE}', 1), '1') AS INT)
               * (TRY_CAST(REGEXP_EXTRACT(`timestamp`, '{_OFFSET_RE}', 2) AS INT) * 60
                  + TRY_CAST(REGEXP_EXTRACT(`timestamp`, '{_OFFSET_RE}', 3) AS INT)), 0),
             TRY_CAST(REGEXP_REPLACE(REGEXP_REPLACE(TRIM(`timestamp`), '([Zz]|[+-]\\d{{2}}:?\\d{{2}})$', ''), 'T', ' ')
                      AS TIMESTAMP(3)))
           AS TIMESTAMP_LTZ(3))
    END"""


def build_sql(cfg: JobConfig) -> list[str]:
    """The job as SQL statements: source table, sink table, a filtering view, and the INSERT."""
    source = f"""
CREATE TABLE bookings (
  event_id STRING,
  ticket_count STRING,
  `timestamp` STRING,
  event_time AS {_EVENT_TIME_SQL},
  WATERMARK FOR event_time AS event_time - {_interval(cfg.out_of_orderness_ms)}
) WITH (
  'connector' = 'kafka',
  'topic' = {_sql_str(cfg.source_topic)},
  'properties.bootstrap.servers' = {_sql_str(cfg.bootstrap_servers)},
  'properties.group.id' = {_sql_str(cfg.group_id)},
  'properties.auto.offset.reset' = 'earliest',
  'properties.isolation.level' = 'read_committed',
  'scan.startup.mode' = {_sql_str(cfg.startup_mode)},
  'scan.topic-partition-discovery.interval' = '{cfg.partition_discovery_ms} ms',
  'value.format' = 'json',
  'value.json.ignore-parse-errors' = 'true',
  'value.json.fail-on-missing-field' = 'false'
)"""
    sink = f"""
CREATE TABLE results (
  k STRING,
  v STRING
) WITH (
  'connector' = 'kafka',
  'topic' = {_sql_str(cfg.results_topic)},
  'properties.bootstrap.servers' = {_sql_str(cfg.bootstrap_servers)},
  'properties.transaction.timeout.ms' = '{cfg.transaction_timeout_ms}',
  'sink.delivery-guarantee' = 'exactly-once',
  'sink.transactional-id-prefix' = {_sql_str(cfg.tx_prefix)},
  'sink.transaction-naming-strategy' = 'POOLING',
  'key.format' = 'raw',
  'key.fields' = 'k',
  'value.format' = 'raw',
  'value.fields-include' = 'EXCEPT_KEY'
)"""
    valid = """
CREATE TEMPORARY VIEW valid_bookings AS
SELECT * FROM (
  SELECT
    CASE WHEN REGEXP(TRIM(event_id), '^-?[0-9]{1,18}$') THEN TRIM(event_id) ELSE event_id END AS event_key,
    TRY_CAST(TRIM(ticket_count) AS BIGINT) AS tickets,
    event_time
  FROM bookings)
WHERE event_key IS NOT NULL AND tickets IS NOT NULL AND event_time IS NOT NULL"""
    insert = f"""
INSERT INTO results
SELECT
  event_key,
  CONCAT(
    '{{"event_id":',
    CASE WHEN REGEXP(event_key, '^-?[0-9]{{1,18}}$') THEN CAST(CAST(event_key AS BIGINT) AS STRING)
         ELSE JSON_STRING(event_key) END,
    ',"window_end":"', DATE_FORMAT(window_end, 'yyyy-MM-dd''T''HH:mm:ss''Z'''),
    '","total_tickets":', CAST(SUM(tickets) AS STRING),
    '}}')
FROM TABLE(TUMBLE(TABLE valid_bookings, DESCRIPTOR(event_time), {_interval(cfg.window_seconds * 1000)}))
GROUP BY event_key, window_start, window_end"""
    return [source, sink, valid, insert]


# --- checkpoints -----------------------------------------------------------------------------------

def _local_path(uri: str) -> str | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else uri
    return None


def checkpoint_uri(path_or_uri: str) -> str:
    local = _local_path(path_or_uri)
    return f"file://{os.path.abspath(local)}" if local is not None else path_or_uri


def latest_checkpoint(checkpoint_dir: str) -> str | None:
    """The newest complete checkpoint (a chk-N folder with a _metadata file) under checkpoint_dir.

    Flink writes <dir>/<job id>/chk-<n>/_metadata last, once a checkpoint is complete, so a folder
    without it is one that was still being written when the job died and is skipped. Local paths are
    listed with os; other schemes (gs://, hdfs://, s3://) with Flink's own FileSystem via the JVM.
    """
    local = _local_path(checkpoint_dir)
    found: list[tuple[float, int, str]] = []
    if local is not None:
        for meta in glob.glob(os.path.join(local, "*", "chk-*", "_metadata")):
            try:
                found.append((os.path.getmtime(meta), int(meta.split("chk-")[-1].split(os.sep)[0]),
                              os.path.dirname(meta)))
            except (OSError, ValueError):
                continue
    else:
        found = _remote_checkpoints(checkpoint_dir)
    return max(found)[2] if found else None


def _remote_checkpoints(uri: str) -> list[tuple[float, int, str]]:
    try:
        from pyflink.java_gateway import get_gateway
        jvm = get_gateway().jvm
        root = jvm.org.apache.flink.core.fs.Path(uri)
        fs = root.getFileSystem()
        if not fs.exists(root):
            return []
        found = []
        for job_dir in fs.listStatus(root) or []:
            if not job_dir.isDir():
                continue
            for chk in fs.listStatus(job_dir.getPath()) or []:
                name = chk.getPath().getName()
                if not (chk.isDir() and name.startswith("chk-")):
                    continue
                meta = jvm.org.apache.flink.core.fs.Path(chk.getPath(), "_metadata")
                if fs.exists(meta):
                    found.append((fs.getFileStatus(meta).getModificationTime() / 1000.0,
                                  int(name[4:]), chk.getPath().toString()))
        return found
    except Exception as exc:  # no such filesystem here, no access: start without state
        log.warning("could not list checkpoints under %s: %s", uri, exc)
        return []


def resolve_restore(cfg: JobConfig) -> str | None:
    if cfg.restore in ("", "none"):
        return None
    if cfg.restore == "auto":
        return latest_checkpoint(cfg.checkpoint_dir)
    return cfg.restore


# --- running ----------------------------------------------------------------------------------------

def flink_config(cfg: JobConfig, restore_path: str | None) -> dict[str, str]:
    conf = {
        "parallelism.default": str(cfg.parallelism),
        "pipeline.name": cfg.job_name,
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": f"{cfg.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoint_uri(cfg.checkpoint_dir),
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "execution.checkpointing.min-pause": f"{max(100, cfg.checkpoint_interval_ms // 4)} ms",
        "execution.checkpointing.timeout": "2 min",
        "execution.checkpointing.tolerable-failed-checkpoints": "3",
        "state.backend.type": "hashmap",
        # Task failures (a broker that went away, say) restart the job in place from the last
        # checkpoint; the process exits only when Flink gives up, and then the supervisor restarts it.
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "30 s",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": "20",
        "pipeline.auto-watermark-interval": "200 ms",
        "table.exec.source.idle-timeout": f"{cfg.idle_timeout_ms} ms",
        # Local MiniCluster: keep the footprint small (2-core machines run several of these).
        "taskmanager.numberOfTaskSlots": str(max(1, cfg.parallelism)),
        "rest.bind-port": "0",
    }
    if cfg.jars:
        conf["pipeline.jars"] = ";".join(_jar_url(j) for j in cfg.jars.split(";") if j.strip())
    if restore_path:
        conf["execution.state-recovery.path"] = restore_path
        conf["execution.state-recovery.ignore-unclaimed-state"] = "false"
    return conf


def _jar_url(jar: str) -> str:
    jar = jar.strip()
    return jar if "://" in jar else f"file://{os.path.abspath(jar)}"


def write_status(path: str, state: str, job_id: str, restored_from: str | None,
                 _last: dict[str, object] = {}) -> None:
    """Write the job's status atomically, when it changed or every 10 s (a heartbeat)."""
    if not path:
        return
    now = time.time()
    if _last.get("state") == state and now - float(_last.get("time", 0)) < 10:
        return
    _last.update(state=state, time=now)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"state": state, "flink_job_id": job_id, "restored_from": restored_from,
                   "pid": os.getpid(), "time": now}, f)
    os.replace(tmp, path)


def _single_instance(status_file: str):
    """With a status file (a supervised run), hold an exclusive lock beside it for the life of the
    process: a second copy of the same job (same checkpoints, same transactional ids) refuses to run."""
    if not status_file:
        return None
    import fcntl
    lock = open(f"{status_file}.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log.error("another process runs this job (lock %s.lock is held); exiting", status_file)
        sys.exit(3)
    return lock


def run(cfg: JobConfig) -> int:
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    _lock = _single_instance(cfg.status_file)  # noqa: F841 - held until the process exits
    write_status(cfg.status_file, "INITIALIZING", "", None)
    restore_path = resolve_restore(cfg)
    conf = Configuration()
    for k, v in flink_config(cfg, restore_path).items():
        conf.set_string(k, v)
    settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
    t_env = TableEnvironment.create(settings)
    statements = build_sql(cfg)
    for stmt in statements[:-1]:
        t_env.execute_sql(stmt)
    log.info("starting %s: %s", cfg.job_name, json.dumps({**asdict(cfg), "restore_path": restore_path}))
    result = t_env.execute_sql(statements[-1])
    job_client = result.get_job_client()
    job_id = str(job_client.get_job_id()) if job_client else "?"
    # One line the supervisor (LocalEngine) reads from the log.
    print(json.dumps({"analytics_job": "running", "flink_job_id": job_id, "restored_from": restore_path}),
          flush=True)

    def stop(signum, _frame):
        log.info("signal %s: cancelling the job (checkpoints are retained)", signum)
        try:
            if job_client:
                job_client.cancel().result()
            write_status(cfg.status_file, "CANCELED", job_id, restore_path)
        finally:
            sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Wait without blocking signal delivery (result.wait() would block in the JVM call).
    gateway_errors = 0
    while True:
        try:
            status = job_client.get_job_status().result().name if job_client else "FINISHED"
            gateway_errors = 0
        except Exception as exc:  # the JVM went away (killed, out of memory): nothing left to wait for
            gateway_errors += 1
            if gateway_errors >= 3:
                log.error("lost the Flink JVM: %s", exc)
                return 2
            time.sleep(1)
            continue
        write_status(cfg.status_file, status, job_id, restore_path)
        if status in ("FAILED", "CANCELED", "FINISHED"):
            log.error("job ended with status %s", status)
            try:
                result.wait()
            except Exception as exc:  # the failure cause, for the log
                log.error("job failure: %s", exc)
            return 0 if status == "FINISHED" else 1
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, print_only = parse_args(argv)
    if print_only:
        for stmt in build_sql(cfg):
            print(stmt.strip() + ";\n")
        return 0
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
