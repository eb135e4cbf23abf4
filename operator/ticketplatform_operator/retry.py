"""Capped exponential back-off for the steps of one platform's reconcile.

A step that raised is not tried again at every resync: it waits base, 2*base, 4*base ... seconds
(capped), and meanwhile status keeps the failure it reported. A success, or a new generation of the
spec (the user changed something, perhaps the very thing that failed), starts over at once."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Failure:
    count: int
    retry_at: float                       # time.monotonic() of the next attempt
    carried: tuple[list[Any], dict[str, Any]]  # the step's conditions and status fields meanwhile


@dataclass
class StepRetry:
    base_seconds: float = 5.0
    cap_seconds: float = 300.0
    generation: int | None = None
    failures: dict[str, Failure] = field(default_factory=dict)

    def new_generation(self, generation: int | None) -> None:
        if generation != self.generation:
            self.generation = generation
            self.failures.clear()

    def delay(self, count: int) -> float:
        return min(self.cap_seconds, self.base_seconds * 2 ** (count - 1))

    def waiting(self, step: str, now: float | None = None) -> Failure | None:
        """The step's last failure while its back-off has not run out, else None (run it)."""
        failure = self.failures.get(step)
        if failure and (now if now is not None else time.monotonic()) < failure.retry_at:
            return failure
        return None

    def failed(self, step: str, now: float | None = None) -> float:
        """Count a failure; returns the seconds until the next attempt."""
        count = self.failures[step].count + 1 if step in self.failures else 1
        delay = self.delay(count)
        self.failures[step] = Failure(count, (now if now is not None else time.monotonic()) + delay, ([], {}))
        return delay

    def carry(self, step: str, conditions: list[Any], fields: dict[str, Any]) -> None:
        if step in self.failures:
            self.failures[step].carried = (conditions, fields)

    def succeeded(self, step: str) -> None:
        self.failures.pop(step, None)

    def next_retry(self) -> float | None:
        """When the earliest step is due again (time.monotonic()), or None when nothing failed."""
        return min((f.retry_at for f in self.failures.values()), default=None)
