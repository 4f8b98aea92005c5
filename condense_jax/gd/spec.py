"""The gradient-descent sweep's spec (`kind = "train"`)."""

from __future__ import annotations

import dataclasses

from ..engine.spec import SweepSpec
from ..errors import (
    MAX_RECORDS,
    MAX_STEPS,
    ConfigError,
    check_run_count,
    finite,
    finite_nonnegative,
    int_at_least,
    nonempty_unique,
    positive_finite,
    seed_tuple,
)

MODELS = ("three-layer", "two-layer", "deep-linear", "cnn")
FAST_FORWARD_MODELS = ("three-layer", "two-layer", "cnn")  # with a leading-order GD map (gd/fast_forward.py)
FAST_FORWARD_ACTIVATIONS = ("tanh", "sigmoid", "identity")  # smooth, odd, σ'(0) ≠ 0


@dataclasses.dataclass(frozen=True)
class TrainSweep(SweepSpec):
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
    tangent kernel over n (train.TrainSpec), so one sweep can span lazy and condensed inits.
    `fast_forward` replaces each run's plateau by its leading-order GD dynamics up to the handover
    (`fast_forward_norm`), then GD (gd/fast_forward.py; three-layer, two-layer and one-conv-layer CNN, odd smooth σ, plain GD). Data: the paper's tanh regression ("tanh"), linearly separable classes
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
    fast_forward: bool = False  # skip the plateau: leading-order dynamics up to the handover, then GD (gd/fast_forward.py)
    fast_forward_norm: float = 0.1  # the handover: three-layer, when the largest pre-activation or output reaches this; two-layer and CNN, ‖(a, Wv)‖
    chunk_size: int | None = None  # seeds per compiled call; None: sized to a memory budget
    name: str = "train"
    KIND = "train"
    LIST_KEYS = ("widths", "init_scales", "scale_exponents", "gammas", "gamma_primes", "layer_scales")

    def __post_init__(self):
        self._check_grid()
        self._check_layers()
        self._check_data()
        self._check_training()
        check_run_count(self.n_runs)

    def _check_grid(self) -> None:
        """Model, widths, seeds and the init-scale axis (ε, exponents γ, or two-layer (γ, γ'))."""
        set_ = lambda k, v: object.__setattr__(self, k, v)
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known: {list(MODELS)}")
        set_("widths", nonempty_unique("widths", self.widths, lambda n, v: int_at_least(n, v, 1)))
        set_("seeds", seed_tuple(self.seeds))
        given = [k for k in ("init_scales", "scale_exponents", "gammas") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ConfigError(f"give only one of init_scales, scale_exponents, gammas; got {given}")
        if not given:
            set_("init_scales", (1e-3,))
        if self.init_scales is not None:
            set_("init_scales", nonempty_unique("init_scales", self.init_scales, positive_finite))
        if self.scale_exponents is not None:
            set_("scale_exponents", nonempty_unique("scale_exponents", self.scale_exponents, finite))
        if (self.gammas is None) != (self.gamma_primes is None):
            raise ConfigError("gammas and gamma_primes go together (the two-layer phase-diagram coordinates)")
        if self.gammas is not None:
            if self.model != "two-layer":
                raise ConfigError(f"gammas / gamma_primes are two-layer coordinates; model is {self.model!r}")
            if min(self.widths) < 2:
                raise ConfigError("gammas need widths ≥ 2 (they are exponents of the width)")
            set_("gammas", nonempty_unique("gammas", self.gammas, finite))
            set_("gamma_primes", nonempty_unique("gamma_primes", self.gamma_primes, finite))

    def _check_layers(self) -> None:
        """Per-layer multipliers and exponents, and the CNN's layers, kernels and loss."""
        set_ = lambda k, v: object.__setattr__(self, k, v)
        n_layers = {"three-layer": 3, "two-layer": 2, "deep-linear": 3, "cnn": 2}[self.model]
        if self.layer_scales is None:
            set_("layer_scales", (1.0,) * n_layers)
        else:
            scales = tuple(positive_finite("layer_scales entry", v) for v in self.layer_scales)
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
                offsets.append(tuple(finite("layer_exponents entry", v) for v in item))
            if not offsets:
                raise ConfigError("layer_exponents is empty; give at least one [δ_a, δ_W2, δ_W1] triple")
            if len(set(offsets)) != len(offsets):
                raise ConfigError(f"layer_exponents has duplicate entries {offsets}")
            if min(self.widths) < 2:
                raise ConfigError("layer_exponents need widths ≥ 2 (they are exponents of the width)")
            set_("layer_exponents", tuple(offsets))
        set_("conv_layers", int_at_least("conv_layers", self.conv_layers, 1))
        set_("kernel_size", int_at_least("kernel_size", self.kernel_size, 1))
        if self.hidden is not None:
            set_("hidden", int_at_least("hidden", self.hidden, 1))
        if self.loss not in ("mse", "cross_entropy"):
            raise ConfigError(f"unknown loss {self.loss!r}; known: ['mse', 'cross_entropy']")
        if self.conv_fan_gamma is not None:
            set_("conv_fan_gamma", finite("conv_fan_gamma", self.conv_fan_gamma))
        if self.model != "cnn" and (self.loss != "mse" or self.hidden is not None or self.conv_layers != 1
                                    or self.conv_fan_gamma is not None):
            raise ConfigError(f"loss, hidden, conv_layers and conv_fan_gamma are cnn settings; model is {self.model!r}")

    def _check_data(self) -> None:
        """The output scale α, the switches, the data and its size and seed."""
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("alpha", positive_finite("alpha", self.alpha))
        for k in ("bias", "grid", "predict_escape", "fast_forward"):
            if not isinstance(getattr(self, k), bool):
                raise ConfigError(f"{k} must be true or false, got {getattr(self, k)!r}")
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"data must be 'tanh', 'separable', 'fig3' or a path to an .npz file, got {self.data!r}")
        set_("n", int_at_least("n", self.n, 1))
        set_("data_seed", int_at_least("data_seed", self.data_seed, 0))

    def _check_training(self) -> None:
        """Step sizes, optimiser, steps and records, thresholds, dtype, chunking, name."""
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("lr", positive_finite("lr", self.lr))
        if self.lr_ntk is not None:
            set_("lr_ntk", positive_finite("lr_ntk", self.lr_ntk))
            if self.model == "deep-linear":
                raise ConfigError("lr_ntk is for the networks (two-layer, three-layer), not deep-linear")
        drops = []
        for item in self.lr_drops:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise ConfigError(f"lr_drops entries must be [step, lr] pairs, got {item!r}")
            drops.append((int_at_least("lr_drops step", item[0], 1), positive_finite("lr_drops lr", item[1])))
        set_("lr_drops", tuple(sorted(drops)))
        if self.optimizer not in ("gd", "adam"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; known: ['gd', 'adam']")
        set_("steps", int_at_least("steps", self.steps, 1))
        self._check_fast_forward()
        if self.steps > MAX_STEPS:
            raise ConfigError(f"steps must be at most {MAX_STEPS:,} (the step counters are 32-bit), got {self.steps!r}")
        set_("n_records", int_at_least("n_records", self.n_records, 2))
        if self.n_records > MAX_RECORDS:
            raise ConfigError(f"n_records must be at most {MAX_RECORDS:,}, got {self.n_records!r}")
        for k in ("record_steps", "cosine_steps"):
            v = getattr(self, k)
            if v is not None:
                v = tuple(int_at_least(f"{k} entry", s, 0) for s in v)
                if not v or max(v) > self.steps:
                    raise ConfigError(f"{k} must be non-empty and lie in [0, steps={self.steps}], got {list(v)}")
                set_(k, v)
        set_("cosine_seeds", int_at_least("cosine_seeds", self.cosine_seeds, 0))
        for k, lo, hi in (("escape_fraction", 0, 1), ("cos_threshold", 0, 1)):
            v = finite(k, getattr(self, k))
            if not (lo < v < hi or (k == "cos_threshold" and v == 1)):
                raise ConfigError(f"{k} must lie in ({lo}, {hi}), got {v!r}")
        set_("loss_threshold", finite_nonnegative("loss_threshold", self.loss_threshold))
        set_("diverge_factor", positive_finite("diverge_factor", self.diverge_factor))
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        set_("top_k", int_at_least("top_k", self.top_k, 1))
        if self.chunk_size is not None:
            set_("chunk_size", int_at_least("chunk_size", self.chunk_size, 1))
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name must be a non-empty string, got {self.name!r}")

    def _check_fast_forward(self) -> None:
        """--fast-forward needs a leading-order GD map: a smooth odd σ with σ'(0) ≠ 0, plain GD."""
        v = positive_finite("fast_forward_norm", self.fast_forward_norm)
        if v > 1:
            raise ConfigError(f"fast_forward_norm must lie in (0, 1] (the leading-order map holds while the weights are "
                              f"small), got {v!r}")
        object.__setattr__(self, "fast_forward_norm", v)
        if not self.fast_forward:
            return
        if self.model not in FAST_FORWARD_MODELS:
            raise ConfigError(f"--fast-forward is for the {', '.join(FAST_FORWARD_MODELS)} networks; model "
                              f"{self.model!r} has no leading-order form here (its plateaus are saddle to saddle, "
                              "not one escape)")
        if self.model == "cnn" and (self.conv_layers != 1 or self.hidden is not None or self.loss != "mse"):
            raise ConfigError("--fast-forward follows the two-layer CNN of the paper's (9)–(10): one conv layer, no "
                              f"hidden layer, MSE; got conv_layers={self.conv_layers}, hidden={self.hidden}, loss={self.loss!r}")
        if self.activation not in FAST_FORWARD_ACTIVATIONS:
            raise ConfigError(f"--fast-forward needs a smooth odd activation with σ'(0) ≠ 0 ({', '.join(FAST_FORWARD_ACTIVATIONS)}); "
                              f"{self.activation!r} has no leading-order form at 0")
        if self.optimizer != "gd":
            raise ConfigError(f"--fast-forward follows plain gradient descent; optimizer is {self.optimizer!r}")

    def inert(self, d: dict) -> dict:
        if not self.fast_forward:  # plain GD: fast_forward_norm changes nothing either
            d = {k: v for k, v in d.items() if k not in ("fast_forward", "fast_forward_norm")}
        return d

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
