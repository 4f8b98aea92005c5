"""Sweep specifications: frozen dataclasses, validated on construction, loaded from flags or TOML.

Every bad value raises `ConfigError` with one line that names it; the CLI turns that into exit 2.
No JAX here: validating a spec must be instant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from pathlib import Path


class ConfigError(ValueError):
    """A bad user-supplied value. Its message is one line naming the value."""


MAX_RUNS = 1_000_000  # runs per sweep: beyond, planning alone takes gigabytes; split the sweep
MAX_RECORDS = 100_000  # recorded times per run
MAX_STEPS = 2_000_000_000  # optimiser steps: the step counters are int32
MIN_TOLERANCE = 1e-14  # rtol / atol of the float64 ODE solve
MAX_TAU = 1e6  # projective time of the ODE solve


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


def check_run_count(n_runs: int) -> None:
    if n_runs > MAX_RUNS:
        raise ConfigError(f"the grid has {n_runs:,} runs; at most {MAX_RUNS:,} per sweep (split it into several sweeps)")


def _positive_finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{name} must be positive and finite, got {value!r}")
    return v


def _finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return v


def _finite_nonnegative(name: str, value) -> float:
    v = _finite(name, value)
    if v < 0:
        raise ConfigError(f"{name} must be non-negative, got {value!r}")
    return v


def _int_at_least(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value!r}")
    return int(value)


def _nonempty_unique(name: str, values, item) -> tuple:
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


def _seeds(value) -> tuple[int, ...]:
    """`seeds` is either a count N (seeds 0…N−1) or an explicit list of non-negative integers."""
    if isinstance(value, (list, tuple)):
        check_run_count(len(value))
        return _nonempty_unique("seeds", value, lambda n, v: _int_at_least(n, v, 0))
    n = _int_at_least("seeds", value, 1)
    check_run_count(n)
    return tuple(range(n))


def _conforms(value, tp) -> bool:
    """Whether a TOML value fits a field annotation (float takes an int; int and float never a bool)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in (str, bool):
        return isinstance(value, tp)
    if tp is type(None):
        return value is None
    if origin in (types.UnionType, typing.Union):
        return any(_conforms(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args))
    return True


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            plural = {float: "numbers", int: "integers", str: "strings", bool: "booleans"}
            return f"a list of {plural.get(args[0]) or _describe(args[0])}"
        return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
    return {float: "a number", int: "an integer", str: "a string", bool: "true or false"}.get(tp, str(tp))


class _Spec:
    """What every sweep spec shares: a plain dict (for manifests) and the hash of its numbers."""

    KIND = ""
    LIST_KEYS: tuple[str, ...] = ()  # keys a TOML table may give as one value instead of a list
    ALSO = {"seeds": int}  # keys that also take a value of another type (seeds: a count)

    @classmethod
    def from_mapping(cls, d: dict, where: str):
        """Build the spec from a TOML table, rejecting unknown keys and values of the wrong type
        (checked against the fields' annotations) with a clear message."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        # a single value for a list key is a one-element list; None (to_dict of an unset optional
        # list, e.g. on the job array's round trip) stays None
        d = {k: [v] if k in cls.LIST_KEYS and v is not None and not isinstance(v, list) else v for k, v in d.items()}
        hints = typing.get_type_hints(cls)
        for key, value in d.items():
            tp = hints[key]
            if not (_conforms(value, tp) or (key in cls.ALSO and _conforms(value, cls.ALSO[key]))):
                raise ConfigError(f"{where}: {key} must be {_describe(tp)}, got {value!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        return {"kind": self.KIND, **{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}

    def config_hash(self, extra: dict | None = None) -> str:
        """Hash of everything that changes the numbers (not the name or the chunking)."""
        d = self.to_dict()
        d.pop("name")
        d.pop("chunk_size")
        d.update(extra or {})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class OdeSweep(_Spec):
    """A sweep of the effective ODE (3.10) to blow-up: widths × per-layer scales × seeds.

    Each start has a_i ~ N(0, σ_a²), b_ij ~ N(0, σ_b²) (every hidden matrix for depth > 3),
    c_i ~ N(0, σ_c²), drawn from a generator seeded by (seed, width): the same seed gives the same
    directions at every scale. Unequal σ_a, σ_c is the ‖a(0)‖ ≠ ‖c(0)‖ axis of Assumption 1.
    """

    widths: tuple[int, ...] = (10, 20, 50)
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
        set_("widths", _nonempty_unique("widths", self.widths, lambda n, v: _int_at_least(n, v, 1)))
        set_("seeds", _seeds(self.seeds))
        for k in ("scale_a", "scale_b", "scale_c"):
            set_(k, _nonempty_unique(k, getattr(self, k), _positive_finite))
        set_("depth", _int_at_least("depth", self.depth, 2))
        for k in ("rtol", "atol", "tau_max", "series_dtau"):
            set_(k, _positive_finite(k, getattr(self, k)))
        for k in ("rtol", "atol"):  # float64 resolves ~1e-16: a tighter tolerance only ends in `nonfinite`
            if not MIN_TOLERANCE <= getattr(self, k) < 1:
                raise ConfigError(f"{k} must be in [{MIN_TOLERANCE:g}, 1) (float64 arithmetic), got {getattr(self, k)!r}")
        if not 20.0 <= self.tau_max <= MAX_TAU:
            raise ConfigError(f"tau_max must be in [20, {MAX_TAU:g}] (20: the first τ segment), got {self.tau_max!r}")
        if self.tau_max / self.series_dtau > MAX_RECORDS:
            raise ConfigError(f"series_dtau = {self.series_dtau!r} records {self.tau_max / self.series_dtau:.3g} times per run "
                              f"over tau_max = {self.tau_max:g}; at most {MAX_RECORDS:,} (raise series_dtau)")
        if self.chunk_size is not None:
            set_("chunk_size", _int_at_least("chunk_size", self.chunk_size, 1))
        if not isinstance(self.pair_counts, bool):
            raise ConfigError(f"pair_counts must be true or false, got {self.pair_counts!r}")
        if self.stepping not in ("per_start", "shared"):
            raise ConfigError(f"stepping must be 'per_start' or 'shared', got {self.stepping!r}")
        if (self.series_t is not None or self.series_E is not None) and self.depth != 3:
            raise ConfigError(f"series_t / series_E grids are available for depth 3 only, got depth {self.depth}")
        if self.series_t is not None and self.series_E is not None:
            raise ConfigError("give series_t or series_E, not both")
        if self.series_t is not None:
            set_("series_t", _nonempty_unique("series_t", self.series_t, _finite_nonnegative))
        if self.series_E is not None:
            set_("series_E", _nonempty_unique("series_E", self.series_E, _finite))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")
        check_run_count(self.n_runs)

    @property
    def n_runs(self) -> int:
        return len(self.widths) * len(self.seeds) * len(self.scale_a) * len(self.scale_b) * len(self.scale_c)


def _plain(v):
    return [_plain(x) for x in v] if isinstance(v, tuple) else v


MODELS = ("three-layer", "two-layer", "deep-linear", "cnn")


@dataclasses.dataclass(frozen=True)
class TrainSweep(_Spec):
    """A gradient-descent sweep (issue #3): widths × init scales × seeds, one model, one data set.

    The init scale ε is given directly (`init_scales`) or as exponents γ with ε = m^(−γ)
    (`scale_exponents`); for the two-layer model also as the phase-diagram coordinates
    (`gammas` × `gamma_primes`, Luo et al. 2021), which fix β₁, β₂ for the given α at each width.
    `layer_scales` multiply ε per layer (three-layer: a, W², W¹; two-layer: w, a; deep-linear:
    W¹, W², W³). `layer_exponents` (three-layer) is a list of per-layer exponent offsets
    (δ_a, δ_W², δ_W¹): each entry is one more grid axis value, with layer l initialised at
    ε · layer_scales[l] · m^(−δ_l) (the per-layer exponents of a three-layer phase diagram).
    cnn (the CNN paper): `widths` are the channels of every conv layer (M = C₁ … C_L), with
    `conv_layers` layers of `kernel_size`² filters, an optional `hidden` layer and `loss` "mse"
    (on the label value as a regression target, the theory) or "cross_entropy"; data "digits"
    (scikit-learn's bundled 8×8 digits, `n` of them sampled with data_seed) or an images .npz;
    layer_scales = (conv, output) multipliers of ε (β₁, β₂ of eqs. 3–4); `conv_fan_gamma` = γ gives
    the paper's experimental init instead: conv std ((c_in + c_out)/2 · m²)^(−γ), output std ε·s₂.
    `lr_ntk` gives each run the step size min(lr, lr_ntk / K₀) with K₀ the trace of its initial
    tangent kernel over n (train.TrainSpec), so one sweep can span lazy and condensed inits. Data: the paper's tanh regression ("tanh"), linearly separable classes
    ("separable"), Fig. 3's matrix target ("fig3", deep-linear) or a user .npz path.
    """

    model: str = "three-layer"
    widths: tuple[int, ...] = (20,)
    seeds: tuple[int, ...] = tuple(range(4))
    init_scales: tuple[float, ...] | None = None
    scale_exponents: tuple[float, ...] | None = None
    gammas: tuple[float, ...] | None = None
    gamma_primes: tuple[float, ...] | None = None
    layer_scales: tuple[float, ...] | None = None
    layer_exponents: tuple[tuple[float, ...], ...] | None = None
    alpha: float = 1.0
    activation: str = "tanh"
    bias: bool = False
    data: str = "tanh"
    n: int = 100
    grid: bool = False
    data_seed: int = 0
    lr: float = 0.05
    lr_ntk: float | None = None
    conv_layers: int = 1
    kernel_size: int = 3
    hidden: int | None = None
    loss: str = "mse"
    conv_fan_gamma: float | None = None
    lr_drops: tuple[tuple[int, float], ...] = ()
    optimizer: str = "gd"
    steps: int = 1000
    n_records: int = 40
    record_steps: tuple[int, ...] | None = None
    cosine_steps: tuple[int, ...] | None = None
    cosine_seeds: int = 2
    escape_fraction: float = 0.5
    cos_threshold: float = 0.99
    loss_threshold: float = 0.0
    diverge_factor: float = 1e6
    dtype: str = "float32"
    top_k: int = 4
    predict_escape: bool = True
    chunk_size: int | None = None  # seeds per compiled call; None: sized to a memory budget
    name: str = "train"
    KIND = "train"
    LIST_KEYS = ("widths", "init_scales", "scale_exponents", "gammas", "gamma_primes", "layer_scales")

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known: {list(MODELS)}")
        set_("widths", _nonempty_unique("widths", self.widths, lambda n, v: _int_at_least(n, v, 1)))
        set_("seeds", _seeds(self.seeds))
        given = [k for k in ("init_scales", "scale_exponents", "gammas") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ConfigError(f"give only one of init_scales, scale_exponents, gammas; got {given}")
        if not given:
            set_("init_scales", (1e-3,))
        if self.init_scales is not None:
            set_("init_scales", _nonempty_unique("init_scales", self.init_scales, _positive_finite))
        if self.scale_exponents is not None:
            set_("scale_exponents", _nonempty_unique("scale_exponents", self.scale_exponents, _finite))
        if (self.gammas is None) != (self.gamma_primes is None):
            raise ConfigError("gammas and gamma_primes go together (the two-layer phase-diagram coordinates)")
        if self.gammas is not None:
            if self.model != "two-layer":
                raise ConfigError(f"gammas / gamma_primes are two-layer coordinates; model is {self.model!r}")
            if min(self.widths) < 2:
                raise ConfigError("gammas need widths ≥ 2 (they are exponents of the width)")
            set_("gammas", _nonempty_unique("gammas", self.gammas, _finite))
            set_("gamma_primes", _nonempty_unique("gamma_primes", self.gamma_primes, _finite))
        n_layers = {"three-layer": 3, "two-layer": 2, "deep-linear": 3, "cnn": 2}[self.model]
        if self.layer_scales is None:
            set_("layer_scales", (1.0,) * n_layers)
        else:
            scales = tuple(_positive_finite("layer_scales entry", v) for v in self.layer_scales)
            if len(scales) != n_layers:
                raise ConfigError(f"layer_scales needs {n_layers} values for {self.model}, got {len(scales)}")
            set_("layer_scales", scales)
        if self.layer_exponents is not None:
            if self.model != "three-layer":
                raise ConfigError(f"layer_exponents are per-layer offsets of the three-layer model; model is {self.model!r}")
            if self.gammas is not None:
                raise ConfigError("layer_exponents cannot be combined with gammas / gamma_primes")
            offsets = []
            for item in self.layer_exponents:
                if not isinstance(item, (list, tuple)) or len(item) != 3:
                    raise ConfigError(f"layer_exponents entries must be [δ_a, δ_W2, δ_W1] triples, got {item!r}")
                offsets.append(tuple(_finite("layer_exponents entry", v) for v in item))
            if not offsets:
                raise ConfigError("layer_exponents is empty; give at least one [δ_a, δ_W2, δ_W1] triple")
            if len(set(offsets)) != len(offsets):
                raise ConfigError(f"layer_exponents has duplicate entries {offsets}")
            if min(self.widths) < 2:
                raise ConfigError("layer_exponents need widths ≥ 2 (they are exponents of the width)")
            set_("layer_exponents", tuple(offsets))
        set_("conv_layers", _int_at_least("conv_layers", self.conv_layers, 1))
        set_("kernel_size", _int_at_least("kernel_size", self.kernel_size, 1))
        if self.hidden is not None:
            set_("hidden", _int_at_least("hidden", self.hidden, 1))
        if self.loss not in ("mse", "cross_entropy"):
            raise ConfigError(f"unknown loss {self.loss!r}; known: ['mse', 'cross_entropy']")
        if self.conv_fan_gamma is not None:
            set_("conv_fan_gamma", _finite("conv_fan_gamma", self.conv_fan_gamma))
        if self.model != "cnn" and (self.loss != "mse" or self.hidden is not None or self.conv_layers != 1
                                    or self.conv_fan_gamma is not None):
            raise ConfigError(f"loss, hidden, conv_layers and conv_fan_gamma are cnn settings; model is {self.model!r}")
        set_("alpha", _positive_finite("alpha", self.alpha))
        for k in ("bias", "grid", "predict_escape"):
            if not isinstance(getattr(self, k), bool):
                raise ConfigError(f"{k} must be true or false, got {getattr(self, k)!r}")
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"data must be 'tanh', 'separable', 'fig3' or a path to an .npz file, got {self.data!r}")
        set_("n", _int_at_least("n", self.n, 1))
        set_("data_seed", _int_at_least("data_seed", self.data_seed, 0))
        set_("lr", _positive_finite("lr", self.lr))
        if self.lr_ntk is not None:
            set_("lr_ntk", _positive_finite("lr_ntk", self.lr_ntk))
            if self.model == "deep-linear":
                raise ConfigError("lr_ntk is for the networks (two-layer, three-layer), not deep-linear")
        drops = []
        for item in self.lr_drops:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise ConfigError(f"lr_drops entries must be [step, lr] pairs, got {item!r}")
            drops.append((_int_at_least("lr_drops step", item[0], 1), _positive_finite("lr_drops lr", item[1])))
        set_("lr_drops", tuple(sorted(drops)))
        if self.optimizer not in ("gd", "adam"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; known: ['gd', 'adam']")
        set_("steps", _int_at_least("steps", self.steps, 1))
        if self.steps > MAX_STEPS:
            raise ConfigError(f"steps must be at most {MAX_STEPS:,} (the step counters are 32-bit), got {self.steps!r}")
        set_("n_records", _int_at_least("n_records", self.n_records, 2))
        if self.n_records > MAX_RECORDS:
            raise ConfigError(f"n_records must be at most {MAX_RECORDS:,}, got {self.n_records!r}")
        for k in ("record_steps", "cosine_steps"):
            v = getattr(self, k)
            if v is not None:
                v = tuple(_int_at_least(f"{k} entry", s, 0) for s in v)
                if not v or max(v) > self.steps:
                    raise ConfigError(f"{k} must be non-empty and lie in [0, steps={self.steps}], got {list(v)}")
                set_(k, v)
        set_("cosine_seeds", _int_at_least("cosine_seeds", self.cosine_seeds, 0))
        for k, lo, hi in (("escape_fraction", 0, 1), ("cos_threshold", 0, 1)):
            v = _finite(k, getattr(self, k))
            if not (lo < v < hi or (k == "cos_threshold" and v == 1)):
                raise ConfigError(f"{k} must lie in ({lo}, {hi}), got {v!r}")
        set_("loss_threshold", _finite_nonnegative("loss_threshold", self.loss_threshold))
        set_("diverge_factor", _positive_finite("diverge_factor", self.diverge_factor))
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        set_("top_k", _int_at_least("top_k", self.top_k, 1))
        if self.chunk_size is not None:
            set_("chunk_size", _int_at_least("chunk_size", self.chunk_size, 1))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")
        check_run_count(self.n_runs)

    def scale_axis(self) -> tuple[str, tuple[float, ...]]:
        """The vmapped init-scale axis: ("scale", ε values), ("scale_exponent", γ) or ("gamma", γ)."""
        if self.init_scales is not None:
            return "scale", self.init_scales
        if self.scale_exponents is not None:
            return "scale_exponent", self.scale_exponents
        return "gamma", self.gammas

    def outer_axis(self) -> tuple[str, tuple]:
        """The grid axis looped over outside the compiled call (one TrainSpec each):
        ("gamma_prime", γ' values), ("layer_exponents", offset triples) or ("", (None,))."""
        if self.gamma_primes is not None:
            return "gamma_prime", self.gamma_primes
        if self.layer_exponents is not None:
            return "layer_exponents", self.layer_exponents
        return "", (None,)

    @property
    def n_runs(self) -> int:
        outer = len(self.outer_axis()[1])
        return len(self.widths) * outer * len(self.scale_axis()[1]) * len(self.seeds)




@dataclasses.dataclass(frozen=True)
class Detector:
    """Thresholds of the four-phase detector (phase_detect.py, where each is explained)."""

    cos_tol: float = 0.98
    drop_tol: float = 0.02
    steep_slope: float = 1.5
    plateau_slope: float = 0.6
    plateau_min_loss: float = 0.02
    conv_band: tuple[float, float] = (0.8, 1.6)

    def __post_init__(self):
        if not (0 < self.cos_tol <= 1):
            raise ConfigError(f"cos_tol must lie in (0, 1], got {self.cos_tol!r}")
        if not (0 < self.drop_tol < 1):
            raise ConfigError(f"drop_tol must lie in (0, 1), got {self.drop_tol!r}")
        if not (0 < self.plateau_slope < self.steep_slope):
            raise ConfigError(f"need 0 < plateau_slope < steep_slope, got {self.plateau_slope!r}, {self.steep_slope!r}")
        if not (0 <= self.plateau_min_loss < 1):
            raise ConfigError(f"plateau_min_loss must lie in [0, 1), got {self.plateau_min_loss!r}")
        lo, hi = self.conv_band
        if not (0 < lo < hi):
            raise ConfigError(f"conv_band must be (low, high) with 0 < low < high, got {self.conv_band!r}")


@dataclasses.dataclass(frozen=True)
class FourPhaseSweep(_Spec):
    """A sweep of the two-layer bias-free ReLU classifier (issue #8): widths × n × Δ × init scales ×
    seeds, each run's four phases detected (phase_detect.py).

    Data: "angled" (two classes at angle Δ with an angular `spread`, `positive_fraction` of them
    positive, the negative class's norms × `negative_norm`; two_class.angled_classes), "orthogonal",
    "digits" (the pair `digits` of scikit-learn's bundled set) or a user .npz (x, y = ±1). Each
    (n, Δ) point draws its data once with `data_seed`; the seeds draw the inits. Data that no
    hyperplane through the origin separates is refused unless `allow_nonseparable`.
    `method` "gd" (small-step GD, relu_flow.descent_schedule) or "gf" (Diffrax gradient flow);
    records on `n_records` log-spaced times in [t_min, t_max].
    """

    widths: tuple[int, ...] = (50,)
    init_scales: tuple[float, ...] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    seeds: tuple[int, ...] = tuple(range(64))
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
        set_("widths", _nonempty_unique("widths", self.widths, lambda n, v: _int_at_least(n, v, 1)))
        set_("init_scales", _nonempty_unique("init_scales", self.init_scales, _positive_finite))
        set_("seeds", _seeds(self.seeds))
        set_("n", _nonempty_unique("n", self.n, lambda n, v: _int_at_least(n, v, 2)))
        set_("delta", _nonempty_unique("delta", self.delta, _finite))
        for dl in self.delta:
            if not 0 < dl <= 180:
                raise ConfigError(f"delta (the angle between the class centres) must lie in (0, 180] degrees, got {dl!r}")
        set_("spread", _finite_nonnegative("spread", self.spread))
        if self.data == "angled" and self.spread >= min(self.delta) / 2:
            raise ConfigError(f"spread = {self.spread:g} must be below Δ/2 = {min(self.delta) / 2:g} degrees (the classes would overlap)")
        set_("d", _int_at_least("d", self.d, 2))
        set_("positive_fraction", _positive_finite("positive_fraction", self.positive_fraction))
        if not self.positive_fraction < 1:
            raise ConfigError(f"positive_fraction must lie in (0, 1), got {self.positive_fraction!r}")
        set_("negative_norm", _positive_finite("negative_norm", self.negative_norm))
        if not (isinstance(self.digits, (list, tuple)) and len(self.digits) == 2):
            raise ConfigError(f"digits must be a pair of digits [a, b], got {self.digits!r}")
        set_("digits", tuple(_int_at_least("digits entry", v, 0) for v in self.digits))
        set_("data_seed", _int_at_least("data_seed", self.data_seed, 0))
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
            set_(k, _positive_finite(k, getattr(self, k)))
        for k in ("lr_rel", "loss_threshold", "plateau_min_loss"):
            set_(k, _finite_nonnegative(k, getattr(self, k)))
        if self.t_max <= self.t_min:
            raise ConfigError(f"t_max = {self.t_max:g} must exceed t_min = {self.t_min:g}")
        if self.lr_max < self.lr:
            raise ConfigError(f"lr_max = {self.lr_max:g} is below lr = {self.lr:g}")
        steps = descent_step_bound(self.t_max, self.lr, self.lr_rel, self.lr_max)
        if steps > MAX_DESCENT_STEPS:  # both integrators record on GD's schedule, built step by step
            raise ConfigError(f"t_max = {self.t_max:g} takes about {steps:.3g} GD steps (lr {self.lr:g}, lr_rel "
                              f"{self.lr_rel:g}, lr_max {self.lr_max:g}); at most {MAX_DESCENT_STEPS:,}: lower t_max or raise lr_max")
        set_("n_records", _int_at_least("n_records", self.n_records, 4))
        if self.n_records > MAX_RECORDS:
            raise ConfigError(f"n_records must be at most {MAX_RECORDS:,}, got {self.n_records!r}")
        set_("neuron_seeds", _int_at_least("neuron_seeds", self.neuron_seeds, 0))
        if self.chunk_size is not None:
            set_("chunk_size", _int_at_least("chunk_size", self.chunk_size, 1))
        if not (isinstance(self.conv_band, (list, tuple)) and len(self.conv_band) == 2):
            raise ConfigError(f"conv_band must be a pair [low, high], got {self.conv_band!r}")
        set_("conv_band", tuple(_positive_finite("conv_band entry", v) for v in self.conv_band))
        set_("cos_tol", _positive_finite("cos_tol", self.cos_tol))
        set_("drop_tol", _positive_finite("drop_tol", self.drop_tol))
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


SPEC_KINDS = {"ode": OdeSweep, "train": TrainSweep, "four_phases": FourPhaseSweep}


def load_spec(path: str | Path, variant: str | None = None) -> tuple[OdeSweep | TrainSweep, dict]:
    """Read a sweep spec TOML file: top-level `kind` ("ode" or "train"), optional `name`, `out`,
    the `[ode]` or `[train]` table, and optional variants `[variants.NAME]` whose keys override
    the table (e.g. `quick`, a small version that shows the same phenomenon in about a minute)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read spec file {str(path)!r}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"spec file {str(path)!r} is not UTF-8 text (byte {e.start}): not a TOML spec") from None
    return parse_spec(text, str(path), variant)


def parse_spec(text: str, where: str, variant: str | None = None) -> tuple[OdeSweep | TrainSweep, dict]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where} is not valid TOML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{where} nests arrays or tables too deeply to be a sweep spec") from None
    unknown = sorted(set(doc) - {"kind", "name", "out", "variants", *SPEC_KINDS})
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {unknown}; expected kind, name, out, [ode], [train] or [four_phases], [variants.*]")
    kind = doc.get("kind")
    if kind is None:  # the kind's table says it; an empty or half-written file must not run a default sweep
        tables = [k for k in SPEC_KINDS if k in doc]
        if len(tables) != 1:
            raise ConfigError(f"{where}: no `kind` (one of {', '.join(map(repr, SPEC_KINDS))}) and no single "
                              "[ode], [train] or [four_phases] table: not a sweep spec")
        kind = tables[0]
    if not isinstance(kind, str) or kind not in SPEC_KINDS:
        raise ConfigError(f"{where}: unknown kind {kind!r} (supported: {', '.join(map(repr, SPEC_KINDS))})")
    table = doc.get(kind, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{kind}] must be a table")
    variants = doc.get("variants", {})
    if not isinstance(variants, dict):
        raise ConfigError(f"{where}: variants must be tables [variants.NAME], got {type(variants).__name__}")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"{where}: name must be a string, got {name!r}")
    if variant is not None:
        if variant not in variants or not isinstance(variants[variant], dict):
            raise ConfigError(f"{where}: no variant {variant!r}; variants: {sorted(variants)}")
        table = {**table, **variants[variant]}
        name = f"{name or kind}_{variant}"
    if name is not None:
        table = {**table, "name": name}
    spec = SPEC_KINDS[kind].from_mapping(table, where)
    extra = {"out": doc.get("out")}
    if extra["out"] is not None and (not isinstance(extra["out"], str) or not extra["out"].strip()):
        raise ConfigError(f"{where}: out must be a non-empty path string, got {extra['out']!r}")
    if extra["out"] is not None and variant is not None:
        extra["out"] = f"{extra['out']}_{variant}"
    return spec, extra
