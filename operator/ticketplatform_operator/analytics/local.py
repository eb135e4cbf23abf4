"""LocalEngine: runs flink/analytics_job.py on this machine (Flink MiniCluster from PyFlink), supervised.

One job per TicketPlatform, in a job folder ``<run dir>/<namespace>-<name>`` (run dir: constructor
argument, the operator passes ``<TP_RUN_DIR>/analytics``) holding:

    state.json        what the engine knows: pid, spec hash, state, restarts, next restart time
    status.json       written by the job itself: the Flink job status (RUNNING, RESTARTING, ...)
    job.log           the job's output (flink-*.log beside it: Flink's own log)
    checkpoints/<spec hash>/   retained Flink checkpoints of that spec's job

The job runs in its own session (process group) with the PyFlink venv's python (``.venv-flink``,
made by ``stack/flink.sh setup``) and the Kafka connector jar from the cache. Because everything
the engine needs is in the job folder, an operator that restarts adopts a job that still runs
(same pid, same command line) instead of starting a second one.

Supervision happens on every ``ensure()`` and, unless ``supervise_interval`` is None, in a small
daemon thread that re-checks every job this engine has been asked to run: a job process that died
without being cancelled is reported FAILED and started again after an exponential back-off
(``backoff_base`` doubling up to ``backoff_max``); the new process resumes from the newest retained
checkpoint, so nothing is lost or counted twice. Failures inside a running job (a broker that went
away) are handled by Flink's own restart strategy in the same process and show as RESTARTING.
A spec change stops the old process (the job is cancelled, its checkpoints retained) and starts a
new job with fresh state and a fresh checkpoint folder; it reads on from the consumer-group offsets
the old job committed at its last checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess

import threading
import time
from pathlib import Path
from typing import Any

from .base import (CANCELLED, CANCELLING, FAILED, PENDING, RESTARTING, RUNNING, UNKNOWN, JobRequest,
                   JobStatus, backoff_seconds, slug, utc_now)

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parents[3]

# Flink JobStatus names (from the job's status.json) -> our states.
_FLINK_STATES = {
    "INITIALIZING": PENDING, "CREATED": PENDING, "RUNNING": RUNNING,
    "RESTARTING": RESTARTING, "FAILING": RESTARTING, "RECONCILING": RESTARTING,
    "CANCELLING": CANCELLING, "CANCELED": CANCELLED, "FAILED": FAILED, "FINISHED": FAILED,
    "SUSPENDED": RESTARTING,
}


def _versions_env() -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        for line in (REPO_DIR / "stack" / "versions.env").read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key] = value
    except OSError:
        pass
    return values


# Defaults when the caller passes nothing (the operator passes its OperatorConfig's settings).
def default_run_dir() -> Path:
    return REPO_DIR / ".run" / "analytics"


def default_python() -> str:
    return str(REPO_DIR / ".venv-flink" / "bin" / "python")


def default_connector_jar(cache_dir: Path | None = None) -> str:
    version = _versions_env().get("FLINK_KAFKA_CONNECTOR", "5.0.0-2.2")
    cache = cache_dir or REPO_DIR / ".cache"
    return str(cache / "flink" / version / f"flink-sql-connector-kafka-{version}.jar")


def local_job_id(request: JobRequest) -> str:
    return f"local-{request.namespace}-{request.name}-{request.spec_hash[:8]}"


class _Proc:
    """Liveness of a job process, ours (a Popen we can reap) or adopted (a pid from state.json)."""

    @staticmethod
    def cmdline(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def zombie(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            return stat.rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            return True


class LocalEngine:
    name = "local"

    def __init__(self, run_dir: str | os.PathLike[str] | None = None, *, python: str | None = None,
                 connector_jar: str | None = None, cache_dir: str | os.PathLike[str] | None = None, backoff_base: float = 2.0, backoff_max: float = 120.0,
                 stable_after: float = 60.0, stop_timeout: float = 20.0,
                 supervise_interval: float | None = 2.0, jvm_args: str = "-Xms128m -Xmx768m",
                 extra_env: dict[str, str] | None = None):
        self.run_dir = Path(run_dir) if run_dir else default_run_dir()
        self.python = python or default_python()
        self.connector_jar = connector_jar or default_connector_jar(Path(cache_dir) if cache_dir else None)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.supervise_interval = supervise_interval
        self.jvm_args = jvm_args
        self.extra_env = dict(extra_env or {})
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._exit_codes: dict[int, int | None] = {}
        self._known: dict[str, JobRequest] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- the AnalyticsEngine interface ---------------------------------------------------------

    def ensure(self, request: JobRequest, current: JobStatus | None = None) -> JobStatus:
        with self._lock(request):
            self._known[request.key] = request
            status = self._reconcile(request)
        self._start_supervisor()
        return status

    def cancel(self, request: JobRequest, current: JobStatus | None = None) -> None:
        with self._lock(request):
            self._known.pop(request.key, None)
            jd = self.job_dir(request)
            st = self._load(jd)
            if st is None:
                return
            pid = st.get("pid")
            if pid and self._alive(pid, jd):
                log.info("analytics %s: stopping job pid %s", request.key, pid)
                self._stop_process(pid, jd)
            self._kill_group(st)
            self._save(jd, self._transition(st, CANCELLED, "cancelled", cancelled=True, pid=None))

    # --- helpers for callers and tests -------------------------------------------------------------

    def job_dir(self, request: JobRequest) -> Path:
        if request.work_dir:
            return Path(request.work_dir)
        plain = self.run_dir / slug(f"{request.namespace}-{request.name}", 120)
        st = self._load(plain)
        if st is None or st.get("key", request.key) == request.key:
            return plain
        # "<ns>-<name>" is ambiguous (a-b/c and a/b-c): a folder taken by another platform is not shared.
        return plain.with_name(f"{plain.name}-{hashlib.sha256(request.key.encode()).hexdigest()[:8]}")

    def pid(self, request: JobRequest) -> int | None:
        st = self._load(self.job_dir(request))
        pid = st.get("pid") if st else None
        return pid if pid and self._alive(pid, self.job_dir(request)) else None

    def shutdown(self) -> None:
        """Stop supervising (the jobs keep running, for the next operator process to adopt)."""
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None
        self._stopping.clear()

    # --- internals -----------------------------------------------------------------------------------

    def _lock(self, request: JobRequest) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(request.key, threading.RLock())

    def _start_supervisor(self) -> None:
        if self.supervise_interval is None:
            return
        with self._locks_guard:
            if self._thread and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._supervise, name="analytics-local-supervisor", daemon=True)
            self._thread.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(self.supervise_interval):
            for key, request in list(self._known.items()):
                try:
                    with self._lock(request):
                        if self._known.get(key) is request:
                            self._reconcile(request)
                except Exception:  # keep supervising the others
                    log.exception("analytics %s: supervision failed", key)

    @staticmethod
    def _load(jd: Path) -> dict[str, Any] | None:
        try:
            return json.loads((jd / "state.json").read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _save(jd: Path, st: dict[str, Any]) -> dict[str, Any]:
        jd.mkdir(parents=True, exist_ok=True)
        tmp = jd / "state.json.tmp"
        tmp.write_text(json.dumps(st, indent=1, sort_keys=True))
        os.replace(tmp, jd / "state.json")
        return st

    @staticmethod
    def _transition(st: dict[str, Any], state: str, message: str, **changes: Any) -> dict[str, Any]:
        new = {**st, **changes, "state": state, "message": message}
        if st.get("state") != state:
            new["last_state_change"] = utc_now()
        return new

    @staticmethod
    def _status(st: dict[str, Any]) -> JobStatus:
        return JobStatus(job_id=st.get("job_id"), state=st.get("state", UNKNOWN), message=st.get("message", ""),
                         last_state_change=st.get("last_state_change") or utc_now(),
                         spec_hash=st.get("spec_hash"), restarts=int(st.get("restarts", 0)))

    def _alive(self, pid: int, jd: Path) -> bool:
        child = self._children.get(pid)
        if child is not None:
            # Our own child: poll() reaps it when it has exited. (Its /proc cmdline is not checked:
            # between fork and exec it still shows this process's.)
            if child.poll() is None:
                return True
            self._children.pop(pid, None)
            self._exit_codes[pid] = child.returncode
            return False
        if _Proc.zombie(pid):
            return False
        # Guard against pid reuse: the process must be this job folder's job.
        return str(jd / "status.json") in _Proc.cmdline(pid)

    def _exit_code(self, pid: int | None) -> int | None:
        if pid is None:
            return None
        child = self._children.pop(pid, None)
        if child is not None:
            return child.poll()
        return self._exit_codes.pop(pid, None)

    def _kill_group(self, st: dict[str, Any]) -> None:
        """Whatever is left of a job's process group (the JVM of a python that died)."""
        pgid = st.get("pgid")
        if not pgid:
            return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _stop_process(self, pid: int, jd: Path) -> None:
        """SIGTERM the job (it cancels its Flink job, keeping checkpoints), then SIGKILL its group."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and self._alive(pid, jd):
            time.sleep(0.2)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child = self._children.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    @staticmethod
    def _prune_checkpoints(checkpoint_dir: str | None, keep: int = 2) -> None:
        """Each run of the job writes under its own Flink job id; a restarted run restores from the
        newest complete checkpoint, so only the newest ``keep`` job folders are worth keeping."""
        if not checkpoint_dir or not Path(checkpoint_dir).is_dir():
            return
        newest: list[tuple[float, Path]] = []
        for job_dir in Path(checkpoint_dir).iterdir():
            metas = [m.stat().st_mtime for m in job_dir.glob("chk-*/_metadata") if m.exists()]
            newest.append((max(metas) if metas else job_dir.stat().st_mtime, job_dir))
        newest.sort(reverse=True)
        for _, job_dir in newest[keep:]:
            shutil.rmtree(job_dir, ignore_errors=True)

    def _job_state(self, jd: Path) -> str | None:
        try:
            return json.loads((jd / "status.json").read_text()).get("state")
        except (OSError, ValueError):
            return None

    def _last_error(self, jd: Path) -> str:
        try:
            with open(jd / "job.log", "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            text = line.strip()
            if text and not text.startswith("at ") and any(w in text for w in ("Error", "Exception", "error:")):
                return text[:300]
        return ""

    def _reconcile(self, request: JobRequest) -> JobStatus:
        jd = self.job_dir(request)
        st = self._load(jd)
        now = time.time()

        if st and st.get("spec_hash") != request.spec_hash:
            pid = st.get("pid")
            if pid and self._alive(pid, jd):
                log.info("analytics %s: spec changed (%s -> %s), stopping job pid %s",
                         request.key, st.get("spec_hash"), request.spec_hash, pid)
                self._stop_process(pid, jd)
            self._kill_group(st)
            old_ckpt = st.get("checkpoint_dir")
            st = None
            if old_ckpt and Path(old_ckpt).is_dir():
                shutil.rmtree(old_ckpt, ignore_errors=True)

        if st is None:
            return self._status(self._start(request, jd, {"restarts": 0}, state=PENDING))

        pid = st.get("pid")
        if pid and self._alive(pid, jd):
            flink_state = self._job_state(jd)
            state = _FLINK_STATES.get(flink_state or "", PENDING)
            if state == PENDING and st.get("restarts"):
                state = RESTARTING
            message = {RUNNING: f"running (pid {pid})", PENDING: f"starting (pid {pid})",
                       RESTARTING: f"restarting (pid {pid}, Flink job {flink_state or 'starting'})"}.get(
                state, f"Flink job {flink_state} (pid {pid})")
            changes: dict[str, Any] = {}
            if state == RUNNING and st.get("restarts") and now - float(st.get("started_at", now)) >= self.stable_after:
                changes["restarts"] = 0
            if state == RUNNING and now - float(st.get("pruned_at") or 0) >= 60:
                self._prune_checkpoints(st.get("checkpoint_dir"))
                changes["pruned_at"] = now
            new = self._transition(st, state, message, **changes)
            if new != st:
                self._save(jd, new)
            return self._status(new)

        # The process is gone.
        if st.get("cancelled"):
            # cancel() stopped it, and ensure() is called again: the platform wants its job back.
            return self._status(self._start(request, jd, {**st, "restarts": 0, "cancelled": False}, state=PENDING))
        if st.get("state") != FAILED or not st.get("next_start_at"):
            code = self._exit_code(pid)
            self._kill_group(st)
            restarts = int(st.get("restarts", 0)) + 1
            delay = backoff_seconds(restarts, self.backoff_base, self.backoff_max)
            reason = self._last_error(jd) if st.get("pid") else st.get("message", "")
            message = (f"job process exited (code {code if code is not None else 'unknown'}); "
                       f"restart {restarts} in {delay:.0f}s" + (f"; last error: {reason}" if reason else ""))
            log.warning("analytics %s: %s", request.key, message)
            st = self._save(jd, self._transition(st, FAILED, message, pid=None, restarts=restarts,
                                                 next_start_at=now + delay))
        if now >= float(st.get("next_start_at") or 0):
            return self._status(self._start(request, jd, st, state=RESTARTING))
        return self._status(st)

    def _start(self, request: JobRequest, jd: Path, st: dict[str, Any], state: str) -> dict[str, Any]:
        jd.mkdir(parents=True, exist_ok=True)
        job_file = Path(request.job_file)
        if not job_file.is_absolute():
            job_file = REPO_DIR / job_file
        ckpt = jd / "checkpoints" / request.spec_hash
        base = {**st, "key": request.key, "job_id": local_job_id(request), "spec_hash": request.spec_hash,
                "checkpoint_dir": str(ckpt), "next_start_at": None}
        missing = [p for p in (self.python, self.connector_jar, str(job_file)) if not Path(p).exists()]
        if missing:
            restarts = int(st.get("restarts", 0)) + 1
            delay = backoff_seconds(restarts, self.backoff_base, self.backoff_max)
            return self._save(jd, self._transition(
                base, FAILED, f"cannot start: missing {', '.join(missing)} (run stack/flink.sh setup); "
                              f"retry in {delay:.0f}s", pid=None, restarts=restarts, next_start_at=time.time() + delay))
        status_file = jd / "status.json"
        status_file.unlink(missing_ok=True)
        log_file = jd / "job.log"
        if log_file.exists() and log_file.stat().st_size > 20 * 1024 * 1024:
            os.replace(log_file, jd / "job.log.1")
        for flink_log in jd.glob("flink-*.log"):   # Flink truncates its log on start: keep the last run's
            os.replace(flink_log, flink_log.with_name(flink_log.name + ".1"))
        cmd = [self.python, str(job_file), *request.job_args(str(ckpt)),
               "--jars", self.connector_jar, "--status-file", str(status_file), "--restore", "auto"]
        # FLINK_LOG_DIR: Flink's own log (flink-*-python-*.log) goes to the job folder, not into the venv.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "JVM_ARGS": self.jvm_args, "FLINK_LOG_DIR": str(jd),
               **self.extra_env}
        for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(var, None)
        with open(log_file, "ab") as out:
            out.write(f"\n==== {utc_now()} starting {local_job_id(request)}: {' '.join(cmd)}\n".encode())
            out.flush()
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=jd, env=env, start_new_session=True)
        self._children[proc.pid] = proc
        log.info("analytics %s: started %s (pid %s)", request.key, local_job_id(request), proc.pid)
        restarts = int(st.get("restarts", 0))
        message = f"starting (pid {proc.pid})" if not restarts else f"restarting (pid {proc.pid}, restart {restarts})"
        return self._save(jd, self._transition(base, state, message, pid=proc.pid, pgid=proc.pid,
                                               started_at=time.time(), cancelled=False))


__all__ = ["LocalEngine", "local_job_id", "default_connector_jar", "default_python", "default_run_dir"]
