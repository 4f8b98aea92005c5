"""ConfigError and the shared validators of user values: a leaf (imports nothing of the package).

Every bad value raises `ConfigError` with one line that names it; the CLI turns that into exit 2.
"""

from __future__ import annotations

import math


class ConfigError(ValueError):
    """A bad user-supplied value. Its message is one line naming the value."""


MAX_RUNS = 1_000_000  # runs per sweep: beyond, planning alone takes gigabytes; split the sweep


MAX_RECORDS = 100_000  # recorded times per run


MAX_STEPS = 2_000_000_000  # optimiser steps: the step counters are int32


MIN_TOLERANCE = 1e-14  # rtol / atol of the float64 ODE solve


MAX_TAU = 1e6  # projective time of the ODE solve


def check_run_count(n_runs: int) -> None:
    if n_runs > MAX_RUNS:
        raise ConfigError(f"the grid has {n_runs:,} runs; at most {MAX_RUNS:,} per sweep (split it into several sweeps)")


def positive_finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{name} must be positive and finite, got {value!r}")
    return v


def finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return v


def finite_nonnegative(name: str, value) -> float:
    v = finite(name, value)
    if v < 0:
        raise ConfigError(f"{name} must be non-negative, got {value!r}")
    return v


def int_at_least(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value!r}")
    return int(value)


def nonempty_unique(name: str, values, item) -> tuple:
    values = tuple(values)
    if not values:
        raise ConfigError(f"{name} is empty; give at least one value")
    out = tuple(item(f"{name} entry", v) for v in values)
    seen, dups = set(), set()
    for v in out:  # linear time: 200,000 seeds check at once
        (dups if v in seen else seen).add(v)
    dup = sorted(dups)
    if dup:
        raise ConfigError(f"{name} has duplicate values {dup}")
    return out


def seed_tuple(value) -> tuple[int, ...]:
    """`seeds` is either a count N (seeds 0…N−1) or an explicit list of non-negative integers."""
    if isinstance(value, (list, tuple)):
        check_run_count(len(value))
        return nonempty_unique("seeds", value, lambda n, v: int_at_least(n, v, 0))
    n = int_at_least("seeds", value, 1)
    check_run_count(n)
    return tuple(range(n))
