"""The run's figures and thresholds, from the raw samples the locustfile records.

Pure Python (no Locust import), so the project's test suite can check it from the main virtualenv.
Percentiles are exact (computed over every sample, linear interpolation), not Locust's rounded
histogram buckets.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

# The design's targets (DESIGN.md / issue 5): k6's `http_req_duration: ['p(95)<500']` and
# `http_req_failed: ['rate<0.1']`.
P95_LIMIT_MS = 500.0
ERROR_RATE_LIMIT = 0.10


@dataclass
class Sample:
    t: float           # seconds since the start of the run
    name: str          # endpoint label, e.g. "POST /api/bookings/book"
    ms: float          # response time
    failed: bool       # a Locust failure: transport error, unexpected status or a failed check
    status: int        # HTTP status (0: no response)
    stage: int | None  # index of the profile stage it was sent in


def percentile(sorted_values: list[float], p: float) -> float | None:
    """p in 0..100, linear interpolation between closest ranks; None for no values."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(math.floor(k))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def figures(samples: list[Sample], duration_s: float) -> dict:
    """requests, failures, error rate, requests/s and latency percentiles of a set of samples."""
    times = sorted(s.ms for s in samples)
    n = len(samples)
    failures = sum(1 for s in samples if s.failed)
    return {
        "requests": n,
        "failures": failures,
        "error_rate": round(failures / n, 5) if n else 0.0,
        "requests_per_second": round(n / duration_s, 2) if duration_s > 0 else None,
        "latency_ms": {
            "avg": _r(sum(times) / n) if n else None,
            "min": _r(times[0]) if n else None,
            "p50": _r(percentile(times, 50)),
            "p90": _r(percentile(times, 90)),
            "p95": _r(percentile(times, 95)),
            "p99": _r(percentile(times, 99)),
            "max": _r(times[-1]) if n else None,
        },
    }


@dataclass
class Checks:
    """k6-style named checks: how often each passed and failed."""
    passes: Counter = field(default_factory=Counter)
    fails: Counter = field(default_factory=Counter)

    def record(self, name: str, ok: bool) -> bool:
        (self.passes if ok else self.fails)[name] += 1
        return ok

    def as_dict(self) -> dict:
        names = sorted(set(self.passes) | set(self.fails))
        return {n: {"passes": self.passes[n], "fails": self.fails[n]} for n in names}


def thresholds(overall: dict, p95_limit_ms: float = P95_LIMIT_MS, error_rate_limit: float = ERROR_RATE_LIMIT) -> dict:
    p95 = overall["latency_ms"]["p95"]
    err = overall["error_rate"]
    return {
        f"p95 < {p95_limit_ms:g} ms": {"value": p95, "ok": p95 is not None and p95 < p95_limit_ms},
        f"error rate < {error_rate_limit:.0%}": {"value": err, "ok": overall["requests"] > 0 and err < error_rate_limit},
    }


def build_summary(samples: list[Sample], duration_s: float, *, stages: list | None = None,
                  checks: Checks | None = None, extra: dict | None = None,
                  errors: list[dict] | None = None) -> dict:
    overall = figures(samples, duration_s)
    by_name: dict[str, list[Sample]] = defaultdict(list)
    by_stage: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_name[s.name].append(s)
        if s.stage is not None:
            by_stage[s.stage].append(s)
    endpoints = {}
    for name in sorted(by_name):
        group = by_name[name]
        endpoints[name] = figures(group, duration_s)
        endpoints[name]["status_codes"] = {str(k): v for k, v in sorted(Counter(s.status for s in group).items())}
    per_stage = []
    if stages:
        prev = 0
        for i, st in enumerate(stages):
            entry = {"stage": i + 1, "users": f"{prev} -> {st.target}", "duration_s": st.duration}
            entry.update(figures(by_stage.get(i, []), st.duration))
            per_stage.append(entry)
            prev = st.target
    result = dict(extra or {})  # run metadata first (tool, target, profile...)
    result.update({
        "duration_s": round(duration_s, 2),
        **overall,
        "endpoints": endpoints,
        "stages": per_stage,
        "checks": checks.as_dict() if checks else {},
        "errors": errors or [],
        "thresholds": thresholds(overall),
    })
    result["passed"] = all(t["ok"] for t in result["thresholds"].values())
    return result
