"""Load test of the gateway contract (DESIGN.md), for Locust.

Each simulated user runs the six cases of the contract in order, one iteration after another,
like a k6 VU running its default function, then waits LOADTEST_THINK_SECONDS (1 s, k6's `sleep(1)`):

    home page     GET  /                          200, an HTML page
    register      POST /api/users/register        200 {user_id, name, email, created_at}, the email echoed
    events        GET  /api/events                200, a non-empty list; every item has event_id, id,
                                                  name, date, venue, tickets_available
    book          POST /api/bookings/book         200 {booking_id, status "confirmed", user_id, event_id}
                                                  for the user just registered, 1 ticket
                                                  (LOADTEST_TICKETS_PER_BOOKING) on an event with tickets
                                                  left; 409 sold out is an expected outcome (see below)
    my bookings   GET  /api/users/<id>/bookings   200, a list that holds the booking just made
    health        GET  /api/health                200, status "ok", no backend down

LOADTEST_REGISTER=once: each user registers once when it starts, then repeats the other five cases.

A request counts as an error (a Locust failure) when it gets no answer, an unexpected status or a
failed check on its body. **409 on booking is not an error**: a sold-out event (or fewer tickets left
than asked for) is the contract's answer to a race for the last tickets, the same outcome a person
sees in the UI, so it is counted as `sold_out` in the summary and its body must still name the reason
(`{"error": ...}`). Every other 4xx/5xx is an error. (As k6's `http.expectedStatuses(..., 409)` would
do; and stricter than k6's `http_req_failed`, since a failed check also fails the request.)

Profile: the LoadTestShape below, 10 -> 50 -> 100 -> 150 -> 50 -> 0 users, ramped linearly per stage
as k6 does (stages.py: LOADTEST_QUICK=1, LOADTEST_STAGE_SECONDS, LOADTEST_USER_SCALE, LOADTEST_STAGES).
Thresholds (summary.py), checked when Locust quits: p95 < 500 ms and error rate < 10 % over the
whole run; the process exits 1 when one is broken, 0 otherwise (a few failures under the threshold
do not fail the run, unlike Locust's default `--exit-code-on-error`).
Summary JSON: `--summary-json PATH` or LOADTEST_SUMMARY=PATH.

Run it through loadtest/run.sh (or stack/loadtest.sh run), which uses .venv-loadtest.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import random
import sys
import time
import uuid
from pathlib import Path

import gevent
import locust
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.runners import WorkerRunner

import stages as lt_stages
import summary as lt_summary

log = logging.getLogger("loadtest")

STAGES, QUICK = lt_stages.stages_from_env()
THINK_SECONDS = float(os.environ.get("LOADTEST_THINK_SECONDS", "1"))
DEFAULT_URL = os.environ.get("LOADTEST_URL") or f"http://127.0.0.1:{os.environ.get('FRONTEND_PORT', '18080')}"
# Registered users are named lt-<run id>-<random>@example.com (run.sh deletes them afterwards).
RUN_ID = os.environ.get("LOADTEST_RUN_ID") or uuid.uuid4().hex[:8]
# "iteration": a new user every iteration (k6-style, the default); "once": each simulated user
# registers once when it starts and then repeats the other five cases.
REGISTER = os.environ.get("LOADTEST_REGISTER", "iteration").strip().lower()
if REGISTER not in ("iteration", "once"):
    raise SystemExit(f"LOADTEST_REGISTER must be 'iteration' or 'once', not {REGISTER!r}")
TICKETS_PER_BOOKING = int(os.environ.get("LOADTEST_TICKETS_PER_BOOKING", "1"))

# label in the stats -> (case, method, path as sent)
ENDPOINTS = {
    "GET /": "home page",
    "POST /api/users/register": "register",
    "GET /api/events": "events",
    "POST /api/bookings/book": "book",
    "GET /api/users/[id]/bookings": "my bookings",
    "GET /api/health": "health",
}
EVENT_FIELDS = ("event_id", "id", "name", "date", "venue", "tickets_available")
USER_FIELDS = ("user_id", "name", "email", "created_at")


class Run:
    """What the run records, besides Locust's own stats."""
    t0: float | None = None
    t_end: float | None = None
    samples: list[lt_summary.Sample] = []
    checks = lt_summary.Checks()
    bookings_confirmed = 0
    tickets_booked = 0
    sold_out = 0
    peak_users = 0
    tickets_at_start: int | None = None  # tickets left in the catalogue at the first events answer


# -- Locust hooks ------------------------------------------------------------------------------
@events.init_command_line_parser.add_listener
def _options(parser):
    parser.add_argument("--summary-json", env_var="LOADTEST_SUMMARY", default="",
                        help="write the run's summary (rps, p50/p95/p99, error rate, per endpoint, thresholds) here")


@events.test_start.add_listener
def _test_start(environment, **_kw):
    Run.t0 = time.monotonic()
    Run.samples, Run.checks = [], lt_summary.Checks()
    if not isinstance(environment.runner, WorkerRunner):
        print(f"[loadtest] {environment.host}: {lt_stages.describe(STAGES)}, think time {THINK_SECONDS:g}s"
              f"{' (quick profile)' if QUICK else ''}", file=sys.stderr, flush=True)
        gevent.spawn(_progress, environment)


@events.test_stop.add_listener
def _test_stop(**_kw):
    if Run.t_end is None:
        Run.t_end = time.monotonic()


@events.request.add_listener
def _on_request(request_type, name, response_time, response_length, response=None, exception=None, **_kw):
    if Run.t0 is None:
        return
    t = time.monotonic() - Run.t0
    status = int(getattr(response, "status_code", 0) or 0)
    Run.samples.append(lt_summary.Sample(t, f"{request_type} {name}", float(response_time or 0.0),
                                         exception is not None, status, lt_stages.stage_index(STAGES, t)))


def _progress(environment, every: float = 10.0):
    """One line every 10 s instead of Locust's table every 2 s (run.sh passes --only-summary)."""
    seen = 0
    while True:
        gevent.sleep(every)
        runner = environment.runner
        if runner is None or Run.t0 is None:
            return
        recent = Run.samples[seen:]
        seen += len(recent)
        Run.peak_users = max(Run.peak_users, runner.user_count)
        fig = lt_summary.figures(recent, every)
        print(f"[loadtest] t={time.monotonic() - Run.t0:5.0f}s users={runner.user_count:3d} "
              f"rps={fig['requests_per_second'] or 0:6.1f} p95={fig['latency_ms']['p95'] or 0:6.0f}ms "
              f"errors={fig['failures']}/{fig['requests']}", file=sys.stderr, flush=True)


@events.quitting.add_listener
def _quitting(environment, **_kw):
    """Thresholds and the summary JSON; sets the exit code (0: thresholds held, 1: broken)."""
    if isinstance(environment.runner, WorkerRunner) or Run.t0 is None:
        return
    end = Run.t_end or time.monotonic()
    duration = max(end - Run.t0, 1e-6)
    errors = [{"endpoint": f"{e.method} {e.name}", "error": str(e.error)[:300], "occurrences": e.occurrences}
              for e in sorted(environment.stats.errors.values(), key=lambda e: -e.occurrences)][:20]
    result = lt_summary.build_summary(
        Run.samples, duration, stages=STAGES, checks=Run.checks, errors=errors,
        extra={
            "tool": f"locust {locust.__version__}",
            "target": environment.host,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - duration)),
            "profile": {"quick": QUICK, "description": lt_stages.describe(STAGES),
                        "stages": [s.as_dict() for s in STAGES], "think_time_s": THINK_SECONDS,
                        "register": REGISTER, "tickets_per_booking": TICKETS_PER_BOOKING, "run_id": RUN_ID,
                        "peak_target_users": max(s.target for s in STAGES), "peak_users_seen": Run.peak_users},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
            "cases": ENDPOINTS,
            "bookings": {"confirmed": Run.bookings_confirmed, "tickets": Run.tickets_booked,
                         "sold_out_409": Run.sold_out, "catalogue_tickets_at_start": Run.tickets_at_start},
        })
    missing = [label for label in ENDPOINTS if label not in result["endpoints"]]
    result["endpoints_without_requests"] = missing
    # A run stopped early (Ctrl-C, SIGTERM, --run-time) did not test the profile: it does not pass.
    result["completed"] = duration >= lt_stages.total_duration(STAGES) - 2.0
    if not result["completed"]:
        result["passed"] = False

    path = environment.parsed_options.summary_json if environment.parsed_options else ""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=2) + "\n")
    _print_summary(result, path)
    environment.process_exit_code = 0 if result["passed"] else 1


def _print_summary(r: dict, path: str) -> None:
    lat = r["latency_ms"]
    out = [f"[loadtest] {r['requests']} requests in {r['duration_s']:.0f}s: {r['requests_per_second']} req/s, "
           f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, "
           f"errors {r['failures']} ({r['error_rate']:.2%}); bookings {r['bookings']['confirmed']} confirmed, "
           f"{r['bookings']['sold_out_409']} sold out (409)"]
    if not r["completed"]:
        out.append(f"[loadtest] the profile did not complete ({r['duration_s']:.0f}s of "
                   f"{sum(s['duration_s'] for s in r['profile']['stages']):g}s): not a pass")
    for name, t in r["thresholds"].items():
        out.append(f"[loadtest] threshold {name}: {'ok' if t['ok'] else 'BROKEN'} (value {t['value']})")
    for name, c in r["checks"].items():
        if c["fails"]:
            out.append(f"[loadtest] check failed {c['fails']}x (passed {c['passes']}x): {name}")
    if path:
        out.append(f"[loadtest] summary: {path}")
    print("\n".join(out), file=sys.stderr, flush=True)


# -- the load shape ----------------------------------------------------------------------------
class StagedShape(LoadTestShape):
    """k6-style stages: linear ramps between targets; stops after the last stage."""

    spawn_rate = float(os.environ.get("LOADTEST_SPAWN_RATE", "50"))

    def tick(self):
        users = lt_stages.target_users(STAGES, self.get_run_time())
        if users is None:
            return None
        Run.peak_users = max(Run.peak_users, self.get_current_user_count())
        return users, self.spawn_rate


# -- the simulated user ------------------------------------------------------------------------
def _json(response):
    try:
        return response.json()
    except Exception:  # noqa: BLE001 - not JSON (or no body): the checks say so
        return None


def _check(response, checks: dict[str, bool]) -> bool:
    failed = [name for name, ok in checks.items() if not Run.checks.record(name, bool(ok))]
    if failed:
        if not response.status_code:  # no answer: say why (connection refused, timeout...)
            response.failure(f"no response: {getattr(response, 'error', None)!r}")
            return False
        body = (response.text or "")[:200] if getattr(response, "text", None) else ""
        response.failure(f"HTTP {response.status_code}: check failed: {', '.join(failed)}; body: {body}")
        return False
    response.success()
    return True


class GatewayUser(FastHttpUser):
    host = DEFAULT_URL
    wait_time = constant(THINK_SECONDS)
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self):
        self.user_id: str | None = None
        if REGISTER == "once":
            self.register()

    @task
    def iteration(self):
        self.home_page()
        if REGISTER == "iteration" or not self.user_id:
            user_id = self.register() or self.user_id  # a failed register: go on with the last id
        else:
            user_id = self.user_id
        catalogue = self.events()
        booking = self.book(user_id, catalogue) if user_id and catalogue else None
        if user_id:
            self.my_bookings(user_id, booking)
        self.health()

    def home_page(self):
        with self.client.get("/", name="/", catch_response=True) as r:
            ctype = r.headers.get("Content-Type", "") if r.headers else ""
            _check(r, {"home: status 200": r.status_code == 200,
                       "home: an HTML page": "text/html" in ctype and "<html" in (r.text or "")[:1000].lower()})

    def register(self) -> str | None:
        email = f"lt-{RUN_ID}-{uuid.uuid4().hex[:16]}@example.com"
        with self.client.post("/api/users/register", json={"name": "Load Test User", "email": email},
                              name="/api/users/register", catch_response=True) as r:
            b = _json(r)
            user = b if isinstance(b, dict) else {}
            ok = _check(r, {"register: status 200": r.status_code == 200,
                            "register: has user_id, name, email, created_at": all(user.get(k) for k in USER_FIELDS),
                            "register: the email is echoed": str(user.get("email", "")).lower() == email})
        if ok:
            self.user_id = user["user_id"]
            return self.user_id
        return None

    def events(self) -> list[dict]:
        with self.client.get("/api/events", name="/api/events", catch_response=True) as r:
            b = _json(r)
            items = b if isinstance(b, list) else []
            fields_ok = bool(items) and all(isinstance(e, dict) and all(k in e for k in EVENT_FIELDS) for e in items)
            ok = _check(r, {"events: status 200": r.status_code == 200,
                            "events: a non-empty list": bool(items),
                            "events: each has event_id, id, name, date, venue, tickets_available": fields_ok})
        if ok and Run.tickets_at_start is None:
            Run.tickets_at_start = sum(e["tickets_available"] for e in items if isinstance(e["tickets_available"], int))
        return items if ok else []

    def book(self, user_id: str, catalogue: list[dict]) -> dict | None:
        with_tickets = [e for e in catalogue if isinstance(e.get("tickets_available"), int) and e["tickets_available"] > 0]
        event = random.choice(with_tickets or catalogue)
        count = TICKETS_PER_BOOKING
        with self.client.post("/api/bookings/book",
                              json={"user_id": user_id, "event_id": event["event_id"], "ticket_count": count},
                              name="/api/bookings/book", catch_response=True) as r:
            b = _json(r)
            body = b if isinstance(b, dict) else {}
            if r.status_code == 409:
                # Sold out (or fewer tickets left than asked): the contract's answer, not an error.
                if _check(r, {"book: 409 names the reason": bool(body.get("error"))}):
                    Run.sold_out += 1
                return None
            ok = _check(r, {"book: status 200 (or 409 sold out)": r.status_code == 200,
                            "book: has booking_id and status": bool(body.get("booking_id")) and bool(body.get("status")),
                            "book: status confirmed": body.get("status") == "confirmed",
                            "book: user_id and event_id as asked": body.get("user_id") == user_id
                            and str(body.get("event_id")) == str(event["event_id"])})
        if ok:
            Run.bookings_confirmed += 1
            Run.tickets_booked += count
            return body
        return None

    def my_bookings(self, user_id: str, booking: dict | None):
        with self.client.get(f"/api/users/{user_id}/bookings", name="/api/users/[id]/bookings",
                             catch_response=True) as r:
            b = _json(r)
            items = b if isinstance(b, list) else None
            checks = {"my bookings: status 200": r.status_code == 200,
                      "my bookings: a list of bookings with booking_id and event_id":
                          items is not None and all(isinstance(x, dict) and x.get("booking_id") and "event_id" in x
                                                    for x in items)}
            if booking is not None:
                checks["my bookings: holds the booking just made"] = items is not None and any(
                    x.get("booking_id") == booking["booking_id"] for x in items if isinstance(x, dict))
            _check(r, checks)

    def health(self):
        with self.client.get("/api/health", name="/api/health", catch_response=True) as r:
            b = _json(r)
            body = b if isinstance(b, dict) else {}
            _check(r, {"health: status 200": r.status_code == 200,
                       "health: every backend up": body.get("status") == "ok" and body.get("down") == []
                       and isinstance(body.get("services"), dict)})
