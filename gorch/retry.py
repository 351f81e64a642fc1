"""Retry policies: how often, and how far apart, the engine retries a failing step.

A policy is plain data. The engine holds a default; a step overrides it with
``Step(name, action, retry=RetryPolicy(...))``.

Example:
    >>> from datetime import timedelta
    >>> p = RetryPolicy(max_attempts=4, initial=timedelta(seconds=1), jitter=0)
    >>> [p.delay(n).total_seconds() for n in (1, 2, 3)]
    [1.0, 2.0, 4.0]
"""

from __future__ import annotations

import random
from datetime import timedelta

from attrs import field, frozen

__all__ = ["RetryPolicy"]


def _seconds(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _check(policy: RetryPolicy) -> None:
    problems = []
    if policy.max_attempts < 1:
        problems.append(f"max_attempts must be at least 1 (got {policy.max_attempts})")
    if policy.initial < timedelta(0) or policy.max_interval < timedelta(0):
        problems.append("initial and max_interval must not be negative")
    if policy.backoff < 1:
        problems.append(f"backoff must be at least 1 (got {policy.backoff})")
    if not 0 <= policy.jitter <= 1:
        problems.append(f"jitter must be between 0 and 1 (got {policy.jitter})")
    if problems:
        raise ValueError("invalid RetryPolicy: " + "; ".join(problems))


@frozen
class RetryPolicy:
    """Exponential backoff with jitter.

    Attributes:
        max_attempts: attempts in all, the first one included; past the last one the instance
            becomes ``FAILED`` and waits for an operator (goto, or retry).
        initial: the delay before the second attempt.
        backoff: each further delay is this many times the one before.
        max_interval: no delay is longer than this.
        jitter: each delay is spread at random by up to this fraction either way, so that
            instances failing together do not retry together.
    """

    max_attempts: int = 5
    initial: timedelta = field(default=timedelta(seconds=1), converter=_seconds)
    backoff: float = 2.0
    max_interval: timedelta = field(default=timedelta(minutes=5), converter=_seconds)
    jitter: float = 0.2

    def __attrs_post_init__(self) -> None:
        _check(self)

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1 for the first failure)."""
        base = self.initial.total_seconds() * self.backoff ** max(attempt - 1, 0)
        base = min(base, self.max_interval.total_seconds())
        if self.jitter:
            base *= 1 + self.jitter * (2 * (rng or random).random() - 1)
        return timedelta(seconds=max(base, 0.0))
