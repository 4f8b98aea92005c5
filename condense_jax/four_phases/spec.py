"""The four-phase sweep's spec (`kind = "four_phases"`)."""

from __future__ import annotations

import dataclasses
import math

from ..engine.spec import SweepSpec
from ..errors import (
    MAX_RECORDS,
    ConfigError,
    check_run_count,
    finite,
    finite_nonnegative,
    int_at_least,
    nonempty_unique,
    positive_finite,
    seed_tuple,
)
from .thresholds import Detector

MAX_DESCENT_STEPS = 10_000_000  # four-phase GD steps (the schedule is a host array of them)


def descent_step_bound(t_max: float, lr: float, lr_rel: float, lr_max: float) -> float:
    """An upper bound on the GD steps h_k = min(lr_max, max(lr, lr_rel t_k)) to reach t_max (the
    four-phase schedule): h = lr up to t = lr/lr_rel, then t grows by (1 + lr_rel) per step up to
    lr_max/lr_rel, then h = lr_max. Computed in closed form, so a huge t_max is refused at once."""
    t_a = t_max if lr_rel <= 0 else min(t_max, lr / lr_rel)
    steps = t_a / lr + 1
    if lr_rel > 0 and t_max > t_a:
        t_b = min(t_max, lr_max / lr_rel)
        steps += math.log(t_b / t_a) / math.log1p(lr_rel) + 1
        if t_max > t_b:
            steps += (t_max - t_b) / lr_max + 1
    return steps


@dataclasses.dataclass(frozen=True)
class FourPhaseSweep(SweepSpec):
    """A sweep of the two-layer bias-free ReLU classifier (issue #8): widths × n × Δ × init scales ×
    seeds, each run's four phases detected (detect.py).

    Data: "angled" (two classes at angle Δ with an angular `spread`, `positive_fraction` of them
    positive, the negative class's norms × `negative_norm`; data.angled_classes), "orthogonal",
    "digits" (the pair `digits` of scikit-learn's bundled set) or a user .npz (x, y = ±1). Each
    (n, Δ) point draws its data once with `data_seed`; the seeds draw the inits. Data that no
    hyperplane through the origin separates is refused unless `allow_nonseparable`.
    `method` "gd" (small-step GD, dynamics.descent_schedule) or "gf" (Diffrax gradient flow);
    records on `n_records` log-spaced times in [t_min, t_max].
    """

    widths: tuple[int, ...] = (50,)
    init_scales: tuple[float, ...] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    seeds: tuple[int, ...] = tuple(range(16))
    data: str = "angled"
    n: tuple[int, ...] = (100,)
    delta: tuple[float, ...] = (60.0,)
    spread: float = 15.0
    d: int = 2
    positive_fraction: float = 0.75
    negative_norm: float = 1.0
    digits: tuple[int, int] = (0, 1)
    data_seed: int = 0
    allow_nonseparable: bool = False
    loss: str = "logistic"
    init: str = "gaussian"
    method: str = "gd"
    t_min: float = 0.1
    t_max: float = 2000.0
    n_records: int = 80
    lr: float = 0.05
    lr_rel: float = 0.01
    lr_max: float = 1.0
    rtol: float = 1e-6
    atol: float = 1e-9
    dtype: str = "float32"
    loss_threshold: float = 0.0
    diverge_factor: float = 1e6
    neuron_seeds: int = 2  # per-neuron series (norms, cosines, plane coordinates) for the first seeds
    # the detector's thresholds (Detector)
    cos_tol: float = Detector.cos_tol
    drop_tol: float = Detector.drop_tol
    steep_slope: float = Detector.steep_slope
    plateau_slope: float = Detector.plateau_slope
    plateau_min_loss: float = Detector.plateau_min_loss
    conv_band: tuple[float, float] = Detector.conv_band
    chunk_size: int | None = None  # seeds per compiled call; None: up to four_phases.CHUNK_RUNS runs a chunk
    name: str = "four_phases"
    KIND = "four_phases"
    LIST_KEYS = ("widths", "init_scales", "n", "delta")

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("widths", nonempty_unique("widths", self.widths, lambda n, v: int_at_least(n, v, 1)))
        set_("init_scales", nonempty_unique("init_scales", self.init_scales, positive_finite))
        set_("seeds", seed_tuple(self.seeds))
        set_("n", nonempty_unique("n", self.n, lambda n, v: int_at_least(n, v, 2)))
        set_("delta", nonempty_unique("delta", self.delta, finite))
        for dl in self.delta:
            if not 0 < dl <= 180:
                raise ConfigError(f"delta (the angle between the class centres) must lie in (0, 180] degrees, got {dl!r}")
        set_("spread", finite_nonnegative("spread", self.spread))
        if self.data == "angled" and self.spread >= min(self.delta) / 2:
            raise ConfigError(f"spread = {self.spread:g} must be below Δ/2 = {min(self.delta) / 2:g} degrees (the classes would overlap)")
        set_("d", int_at_least("d", self.d, 2))
        set_("positive_fraction", positive_finite("positive_fraction", self.positive_fraction))
        if not self.positive_fraction < 1:
            raise ConfigError(f"positive_fraction must lie in (0, 1), got {self.positive_fraction!r}")
        set_("negative_norm", positive_finite("negative_norm", self.negative_norm))
        if not (isinstance(self.digits, (list, tuple)) and len(self.digits) == 2):
            raise ConfigError(f"digits must be a pair of digits [a, b], got {self.digits!r}")
        set_("digits", tuple(int_at_least("digits entry", v, 0) for v in self.digits))
        set_("data_seed", int_at_least("data_seed", self.data_seed, 0))
        if not isinstance(self.data, str) or not (self.data in ("angled", "orthogonal", "digits") or self.data.endswith(".npz")):
            raise ConfigError(f"data must be 'angled', 'orthogonal', 'digits' or a path to an .npz file, got {self.data!r}")
        for k in ("allow_nonseparable",):
            if not isinstance(getattr(self, k), bool):
                raise ConfigError(f"{k} must be true or false, got {getattr(self, k)!r}")
        for k, allowed in (("loss", ("logistic", "exponential")), ("init", ("gaussian", "balanced")), ("method", ("gd", "gf")),
                           ("dtype", ("float32", "float64"))):
            if getattr(self, k) not in allowed:
                raise ConfigError(f"unknown {k} {getattr(self, k)!r}; known: {list(allowed)}")
        for k in ("t_min", "t_max", "lr", "lr_max", "rtol", "atol", "diverge_factor", "steep_slope", "plateau_slope"):
            set_(k, positive_finite(k, getattr(self, k)))
        for k in ("lr_rel", "loss_threshold", "plateau_min_loss"):
            set_(k, finite_nonnegative(k, getattr(self, k)))
        if self.t_max <= self.t_min:
            raise ConfigError(f"t_max = {self.t_max:g} must exceed t_min = {self.t_min:g}")
        if self.lr_max < self.lr:
            raise ConfigError(f"lr_max = {self.lr_max:g} is below lr = {self.lr:g}")
        steps = descent_step_bound(self.t_max, self.lr, self.lr_rel, self.lr_max)
        if steps > MAX_DESCENT_STEPS:  # both integrators record on GD's schedule, built step by step
            raise ConfigError(f"t_max = {self.t_max:g} takes about {steps:.3g} GD steps (lr {self.lr:g}, lr_rel "
                              f"{self.lr_rel:g}, lr_max {self.lr_max:g}); at most {MAX_DESCENT_STEPS:,}: lower t_max or raise lr_max")
        set_("n_records", int_at_least("n_records", self.n_records, 4))
        if self.n_records > MAX_RECORDS:
            raise ConfigError(f"n_records must be at most {MAX_RECORDS:,}, got {self.n_records!r}")
        set_("neuron_seeds", int_at_least("neuron_seeds", self.neuron_seeds, 0))
        if self.chunk_size is not None:
            set_("chunk_size", int_at_least("chunk_size", self.chunk_size, 1))
        if not (isinstance(self.conv_band, (list, tuple)) and len(self.conv_band) == 2):
            raise ConfigError(f"conv_band must be a pair [low, high], got {self.conv_band!r}")
        set_("conv_band", tuple(positive_finite("conv_band entry", v) for v in self.conv_band))
        set_("cos_tol", positive_finite("cos_tol", self.cos_tol))
        set_("drop_tol", positive_finite("drop_tol", self.drop_tol))
        self.detector()  # the thresholds together
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")
        check_run_count(self.n_runs)

    def detector(self) -> Detector:
        return Detector(self.cos_tol, self.drop_tol, self.steep_slope, self.plateau_slope, self.plateau_min_loss,
                        self.conv_band)

    @property
    def n_runs(self) -> int:
        n = 1 if self.data.endswith(".npz") else len(self.n)
        delta = len(self.delta) if self.data == "angled" else 1
        return len(self.widths) * n * delta * len(self.init_scales) * len(self.seeds)
