"""The ODE sweep's spec (`kind = "ode"`)."""

from __future__ import annotations

import dataclasses

from ..engine.spec import SweepSpec
from ..errors import (
    MAX_RECORDS,
    MAX_TAU,
    MIN_TOLERANCE,
    ConfigError,
    check_run_count,
    finite,
    finite_nonnegative,
    int_at_least,
    nonempty_unique,
    positive_finite,
    seed_tuple,
)


@dataclasses.dataclass(frozen=True)
class OdeSweep(SweepSpec):
    """A sweep of the effective ODE (3.10) to blow-up: widths × per-layer scales × seeds.

    Each start has a_i ~ N(0, σ_a²), b_ij ~ N(0, σ_b²) (every hidden matrix for depth > 3),
    c_i ~ N(0, σ_c²), drawn from a generator seeded by (seed, width): the same seed gives the same
    directions at every scale. Unequal σ_a, σ_c is the ‖a(0)‖ ≠ ‖c(0)‖ axis of Assumption 1.
    """

    widths: tuple[int, ...] = (20,)
    seeds: tuple[int, ...] = tuple(range(16))
    scale_a: tuple[float, ...] = (1.0,)
    scale_b: tuple[float, ...] = (1.0,)
    scale_c: tuple[float, ...] = (1.0,)
    depth: int = 3
    rtol: float = 1e-9
    atol: float = 1e-9
    tau_max: float = 200.0
    series_dtau: float = 1.0
    chunk_size: int | None = None  # None: sized per width to a memory budget (blowup.auto_chunk_size)
    pair_counts: bool = False
    stepping: str = "per_start"
    series_t: tuple[float, ...] | None = None
    series_E: tuple[float, ...] | None = None
    name: str = "ode"
    KIND = "ode"
    LIST_KEYS = ("widths", "scale_a", "scale_b", "scale_c", "series_t", "series_E")

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("widths", nonempty_unique("widths", self.widths, lambda n, v: int_at_least(n, v, 1)))
        set_("seeds", seed_tuple(self.seeds))
        for k in ("scale_a", "scale_b", "scale_c"):
            set_(k, nonempty_unique(k, getattr(self, k), positive_finite))
        set_("depth", int_at_least("depth", self.depth, 2))
        for k in ("rtol", "atol", "tau_max", "series_dtau"):
            set_(k, positive_finite(k, getattr(self, k)))
        for k in ("rtol", "atol"):  # float64 resolves ~1e-16: a tighter tolerance only ends in `nonfinite`
            if not MIN_TOLERANCE <= getattr(self, k) < 1:
                raise ConfigError(f"{k} must be in [{MIN_TOLERANCE:g}, 1) (float64 arithmetic), got {getattr(self, k)!r}")
        if not 20.0 <= self.tau_max <= MAX_TAU:
            raise ConfigError(f"tau_max must be in [20, {MAX_TAU:g}] (20: the first τ segment), got {self.tau_max!r}")
        if self.tau_max / self.series_dtau > MAX_RECORDS:
            raise ConfigError(f"series_dtau = {self.series_dtau!r} records {self.tau_max / self.series_dtau:.3g} times per run "
                              f"over tau_max = {self.tau_max:g}; at most {MAX_RECORDS:,} (raise series_dtau)")
        if self.chunk_size is not None:
            set_("chunk_size", int_at_least("chunk_size", self.chunk_size, 1))
        if not isinstance(self.pair_counts, bool):
            raise ConfigError(f"pair_counts must be true or false, got {self.pair_counts!r}")
        if self.stepping not in ("per_start", "shared"):
            raise ConfigError(f"stepping must be 'per_start' or 'shared', got {self.stepping!r}")
        if (self.series_t is not None or self.series_E is not None) and self.depth != 3:
            raise ConfigError(f"series_t / series_E grids are available for depth 3 only, got depth {self.depth}")
        if self.series_t is not None and self.series_E is not None:
            raise ConfigError("give series_t or series_E, not both")
        if self.series_t is not None:
            set_("series_t", nonempty_unique("series_t", self.series_t, finite_nonnegative))
        if self.series_E is not None:
            set_("series_E", nonempty_unique("series_E", self.series_E, finite))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")
        check_run_count(self.n_runs)

    @property
    def n_runs(self) -> int:
        return len(self.widths) * len(self.seeds) * len(self.scale_a) * len(self.scale_b) * len(self.scale_c)
