"""The staged load profile, as k6 defines stages: each stage ramps linearly from the previous
target to its own target over its duration.

Pure Python (no Locust import), so the project's test suite can check it from the main virtualenv.

    full profile  (default)         10 -> 50 -> 100 -> 150 -> 50 -> 0 users, 60 s per stage (6 min)
    LOADTEST_QUICK=1                 same shape, 4 s per stage, users x 0.1 (1 -> 5 -> 10 -> 15 -> 5 -> 0)
    LOADTEST_STAGE_SECONDS=N         override the stage length (seconds)
    LOADTEST_USER_SCALE=F            multiply every target by F (rounded, at least 1 user while ramping)
    LOADTEST_STAGES="30s:10,1m:50"   a profile of your own (duration:target, comma separated)
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Mapping

FULL_TARGETS = (10, 50, 100, 150, 50, 0)
FULL_STAGE_SECONDS = 60.0
QUICK_STAGE_SECONDS = 4.0
QUICK_USER_SCALE = 0.1


@dataclass(frozen=True)
class Stage:
    duration: float  # seconds
    target: int      # users at the end of the stage

    def as_dict(self) -> dict:
        return {"duration_s": self.duration, "target": self.target}


def _duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise ValueError(f"bad stage duration {text!r} (use e.g. 30s, 1m, 1.5m)")
    value, unit = float(m.group(1)), m.group(2) or "s"
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


def parse_stages(text: str) -> list[Stage]:
    """``"30s:10,1m:50"`` -> stages."""
    stages = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        duration, _, target = part.partition(":")
        if not target:
            raise ValueError(f"bad stage {part!r} (use duration:target, e.g. 1m:150)")
        stages.append(Stage(_duration(duration), int(target)))
    if not stages:
        raise ValueError("no stages given")
    return stages


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def stages_from_env(env: Mapping[str, str] | None = None) -> tuple[list[Stage], bool]:
    """The stages this run uses and whether it is the quick profile."""
    env = os.environ if env is None else env
    quick = truthy(env.get("LOADTEST_QUICK"))
    if env.get("LOADTEST_STAGES"):
        return parse_stages(env["LOADTEST_STAGES"]), quick
    seconds = float(env.get("LOADTEST_STAGE_SECONDS") or (QUICK_STAGE_SECONDS if quick else FULL_STAGE_SECONDS))
    scale = float(env.get("LOADTEST_USER_SCALE") or (QUICK_USER_SCALE if quick else 1.0))
    targets = [0 if t == 0 else max(1, round(t * scale)) for t in FULL_TARGETS]
    return [Stage(seconds, t) for t in targets], quick


def total_duration(stages: list[Stage]) -> float:
    return sum(s.duration for s in stages)


def stage_index(stages: list[Stage], t: float) -> int | None:
    """Which stage second ``t`` of the run falls in (None once the profile is over)."""
    end = 0.0
    for i, s in enumerate(stages):
        end += s.duration
        if t < end:
            return i
    return None


def target_users(stages: list[Stage], t: float) -> int | None:
    """Users wanted at second ``t``: linear between the previous target (0 before the first stage)
    and the stage's target, as k6 ramps. None once every stage is done."""
    start_t, start_users = 0.0, 0
    for s in stages:
        if t < start_t + s.duration:
            frac = (t - start_t) / s.duration if s.duration > 0 else 1.0
            return int(math.ceil(start_users + (s.target - start_users) * frac - 1e-9)) if s.target >= start_users \
                else int(math.floor(start_users + (s.target - start_users) * frac + 1e-9))
        start_t, start_users = start_t + s.duration, s.target
    return None


def describe(stages: list[Stage]) -> str:
    return " -> ".join(f"{s.target}" for s in stages) + \
        f" users ({', '.join(sorted({f'{s.duration:g}s' for s in stages}))} per stage, {total_duration(stages):g}s)"
