"""Full-batch training from small initialisation as a pure function of (PRNG key, init scale).

`make_train(spec, x, y)` returns `train(key, scale) -> TrainResult`, which runs `spec.steps` optimiser
steps with `lax.scan` and records the loss on `spec.record_steps`. It is meant to be used as
`jit(vmap(vmap(train)))` over seeds × scales: a run whose loss becomes non-finite or grows past
`diverge_factor` × its initial loss is frozen from that step on (status `diverged`), and a run that
reaches `loss_threshold` is frozen too (status `converged`), so neither affects its batch-mates.

First increment of issue #3: the models of `models/`, plain GD or Adam through optax, piecewise-
constant learning rates. Condensation metrics and the `condense train` CLI build on this.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..engine import freeze
from ..engine.devices import enable_dtype
from ..errors import ConfigError
from . import metrics
from .models import activations, deep_linear, mlp

MODELS = ("three-layer", "two-layer", "deep-linear", "cnn")
STATUS_CODES = {0: "finished", 1: "diverged", 2: "converged"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainSpec:
    """Static configuration of one training run (shapes and hyper-parameters, no data)."""

    model: str = "three-layer"
    width: int = 20
    activation: str = "tanh"
    lr: float = 0.05
    lr_drops: tuple[tuple[int, float], ...] = ()  # (step, new lr) pairs: piecewise-constant schedule
    optimizer: str = "gd"
    steps: int = 1000
    record_steps: tuple[int, ...] | None = None  # None: ~40 log-spaced steps and the last
    layer_scales: tuple[float, ...] = (1.0, 1.0, 1.0)  # per-layer multipliers of the init scale ε
    alpha: float = 1.0  # two-layer output scale: f = (1/α) Σ a_k σ(w_k · x)
    dtype: str = "float32"
    diverge_factor: float = 1e6
    loss_threshold: float = 0.0
    escape_fraction: float = 0.5  # escape_step: first step with loss ≤ this × the initial loss
    cos_threshold: float = 0.99  # rows with |cos| ≥ this count as one direction
    cosine_steps: tuple[int, ...] | None = None  # steps whose cosine matrices are kept; None: first and last
    top_k: int = 4  # deep-linear: singular values of W recorded
    # per-run step size min(lr, lr_ntk / K₀), K₀ = (1/n) Σ_i ‖∇_θ f(x_i)‖² at θ(0) (the trace of the
    # initial tangent kernel over n, an upper bound of the loss Hessian's top eigenvalue near θ(0));
    # None: every run uses lr. For sweeps whose init scales span the lazy and the condensed regime
    lr_ntk: float | None = None
    # cnn (models/cnn.py): conv channels C_1 … C_L, m×m filters, optional hidden FC width, loss
    # "mse" (targets y (n,), the theory) or "cross_entropy" (integer labels, `classes` logits);
    # layer_scales = (conv, output) multipliers of ε: β₁ = ε s₁, β₂ = ε s₂ (eqs. 3–4)
    channels: tuple[int, ...] = (32,)
    kernel_size: int = 3
    hidden: int | None = None
    loss: str = "mse"
    classes: int = 10
    # the paper's experimental init (section 5.1): conv layer l at std ((c_in + c_out)/2 · m²)^(−γ)
    # whatever ε, the output layer at ε·layer_scales[1]; None: every layer from ε (eqs. 3–4)
    conv_fan_gamma: float | None = None
    # skip the plateau (gd/fast_forward.py): the leading-order dynamics up to the step at which the
    # effective state's norm reaches this, then GD; None: GD from step 0
    fast_forward_norm: float | None = None

    def __post_init__(self):
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known: {list(MODELS)}")
        if self.model == "cnn" and self.layer_scales == (1.0, 1.0, 1.0):  # the default, for (conv, output)
            object.__setattr__(self, "layer_scales", (1.0, 1.0))
        activations.get(self.activation)
        if self.optimizer not in ("gd", "adam"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; known: ['gd', 'adam']")
        if not (isinstance(self.width, int) and self.width >= 1):
            raise ConfigError(f"width must be an integer ≥ 1, got {self.width!r}")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ConfigError(f"steps must be an integer ≥ 1, got {self.steps!r}")
        for name, value in [("lr", self.lr), ("alpha", self.alpha), ("diverge_factor", self.diverge_factor)] + [
            (f"lr after step {s}", v) for s, v in self.lr_drops
        ]:
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be positive and finite, got {value!r}")
        if any(not (np.isfinite(v) and v > 0) for v in self.layer_scales):
            raise ConfigError(f"layer_scales must be positive and finite, got {self.layer_scales!r}")
        if not 0 < self.escape_fraction < 1:
            raise ConfigError(f"escape_fraction must lie in (0, 1), got {self.escape_fraction!r}")
        if not 0 < self.cos_threshold <= 1:
            raise ConfigError(f"cos_threshold must lie in (0, 1], got {self.cos_threshold!r}")
        if self.model != "cnn" and not (isinstance(self.top_k, int) and 1 <= self.top_k <= self.width):
            raise ConfigError(f"top_k must be an integer in [1, width], got {self.top_k!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.loss not in ("mse", "cross_entropy"):
            raise ConfigError(f"unknown loss {self.loss!r}; known: ['mse', 'cross_entropy']")
        if self.model == "cnn":
            if not self.channels or any(not (isinstance(c, int) and c >= 1) for c in self.channels):
                raise ConfigError(f"channels must be positive integers, got {self.channels!r}")
            if not (isinstance(self.kernel_size, int) and self.kernel_size >= 1):
                raise ConfigError(f"kernel_size must be an integer ≥ 1, got {self.kernel_size!r}")
            if self.hidden is not None and not (isinstance(self.hidden, int) and self.hidden >= 1):
                raise ConfigError(f"hidden must be an integer ≥ 1, got {self.hidden!r}")
            if self.conv_fan_gamma is not None and not np.isfinite(self.conv_fan_gamma):
                raise ConfigError(f"conv_fan_gamma must be finite, got {self.conv_fan_gamma!r}")
            if len(self.layer_scales) != 2:
                raise ConfigError(f"a cnn takes layer_scales (conv, output), got {self.layer_scales!r}")
        elif self.loss != "mse":
            raise ConfigError(f"loss {self.loss!r} is for the cnn; the {self.model} model trains on MSE")
        if self.lr_ntk is not None:
            if not (np.isfinite(self.lr_ntk) and self.lr_ntk > 0):
                raise ConfigError(f"lr_ntk must be positive and finite, got {self.lr_ntk!r}")
            if self.model == "deep-linear":
                raise ConfigError("lr_ntk is for the networks (two-layer, three-layer), not deep-linear")

    def recorded(self) -> np.ndarray:
        """The steps at which the loss and the measurements are recorded (0 = the initial state):
        record_steps (default ~40 log-spaced steps, 0 and the last) plus the cosine steps, sorted."""
        if self.record_steps is not None:
            steps = _steps_in_range(self.record_steps, self.steps, "record_steps")
        else:
            steps = np.concatenate([[0], np.geomspace(1, self.steps, 40).round().astype(np.int64)])
        return np.unique(np.concatenate([steps, self.cosine_recorded()]))

    def cosine_recorded(self) -> np.ndarray:
        """The steps whose row-cosine matrices are kept (default: the first and the last)."""
        if self.cosine_steps is None:
            return np.array([0, self.steps], dtype=np.int64)
        return np.unique(_steps_in_range(self.cosine_steps, self.steps, "cosine_steps"))


def _steps_in_range(steps, last: int, name: str) -> np.ndarray:
    arr = np.asarray(steps, dtype=np.int64)
    if arr.size == 0 or arr.min() < 0 or arr.max() > last:
        raise ConfigError(f"{name} must lie in [0, {last}], got {tuple(steps)!r}")
    return arr


class TrainResult(NamedTuple):
    loss: jnp.ndarray  # (K,) loss at spec.recorded() (frozen value after divergence or convergence)
    series: dict  # name → (K,) measurements of metrics.py at spec.recorded()
    cosines: dict  # layer → (C, m, m) row-cosine matrices at spec.cosine_recorded()
    params0: dict | list
    params: dict | list  # final (or frozen) parameters
    status: jnp.ndarray  # 0 finished, 1 diverged, 2 converged (STATUS_CODES)
    stop_step: jnp.ndarray  # updates applied to the parameters the run is frozen at; spec.steps if never
    escape_step: jnp.ndarray  # first step with loss ≤ escape_fraction × initial loss; −1 if never
    max_pos_sum: jnp.ndarray  # three-layer: max over steps of the Fig. 2 positive sum; −1 otherwise
    lr_factor: jnp.ndarray  # the run's step size over spec.lr: min(1, lr_ntk / (lr K₀)); 1 without lr_ntk
    fast_forward_step: jnp.ndarray  # the handover step k_h (records up to it are the effective dynamics'); 0 without


class Model(NamedTuple):
    init: Callable  # (key, ε, per-layer multipliers s) → params, layer l at scale ε·s_l
    loss: Callable  # params → R_S
    measure: Callable  # (params, params0, ε) → (series dict, cosine dict)
    positive_sum: Callable | None  # params → Fig. 2 sum, every step (three-layer only)
    # params → (R_S, ∇R_S, Fig. 2 sum or None) written out; None: jax.value_and_grad(loss)
    value_and_grad: Callable | None = None
    apply: Callable | None = None  # (params, x (n, d)) → f (n,), for the networks


def _model(spec: TrainSpec, x, y) -> Model:
    """The model the spec names, on data (x, y): init, loss and what a record measures."""
    dtype = jnp.dtype(spec.dtype)
    act = activations.get(spec.activation).fn
    if spec.model in ("three-layer", "two-layer"):
        v = jnp.asarray(_target_direction(x, y), dtype)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    thr = spec.cos_threshold
    if spec.model == "three-layer":
        init = lambda key, eps, s: mlp.three_layer_init(key, x.shape[1], spec.width, (eps * s[0], eps * s[1], eps * s[2]), dtype)
        loss = lambda p: mlp.mse(mlp.three_layer_apply(p, x, act), y)
        measure = lambda p, p0, eps: metrics.three_layer(p, p0, v, eps, thr)
        pos = lambda p: mlp.positive_sum(p["a"], p["w2"], p["w1"] @ v)
        vg = lambda p: mlp.three_layer_value_and_grad(p, x, y, spec.activation, v)  # with the positive sum
        return Model(init, loss, measure, pos, vg, lambda p, xs: mlp.three_layer_apply(p, xs, act))
    if spec.model == "two-layer":
        init = lambda key, eps, s: mlp.two_layer_init(key, x.shape[1], spec.width, eps * s[0], eps * s[1], dtype)
        loss = lambda p: mlp.mse(mlp.two_layer_apply(p, x, act, spec.alpha), y)
        measure = lambda p, p0, eps: metrics.two_layer(p, p0, v, eps, thr)
        return Model(init, loss, measure, None, None, lambda p, xs: mlp.two_layer_apply(p, xs, act, spec.alpha))
    if spec.model == "cnn":
        return _cnn_model(spec, x, y, act, dtype)
    # deep-linear: x (n, m, m) measurement matrices and y (n,) (sensing), or x an (m, m) 0/1
    # observation mask and y the (m, m) target (completion, without materialising e_j e_kᵀ)
    init = lambda key, eps, s: [eps * s[i] * w for i, w in enumerate(deep_linear.init(key, spec.width, 1.0, len(spec.layer_scales), dtype))]
    if x.ndim == 2:
        loss = lambda p: deep_linear.completion_loss(p, y, x)
        v_matrix = deep_linear.completion_matrix(y, x)
    else:
        loss = lambda p: deep_linear.sensing_loss(p, x, y)
        v_matrix = deep_linear.sensing_matrix(x, y)
    v_host = np.asarray(v_matrix)
    # V = O Λ Oᵀ (A.7) when V is symmetric, else the SVD frame; once per data set
    frame = deep_linear.effective_frame(v_host, symmetric=bool(np.allclose(v_host, v_host.T)), xp=np)
    frame = tuple(jnp.asarray(f, v_matrix.dtype) for f in frame)
    measure = lambda p, p0, eps: metrics.deep_linear(p, p0, v_matrix, frame, eps, spec.top_k)
    return Model(init, loss, measure, None)


def _cnn_model(spec: TrainSpec, x, y, act, dtype) -> Model:
    """The CNN on images x (n, H, W, C): MSE on targets y (n,) or cross-entropy on labels y (n,).
    v₁ is the top right singular vector of Z (cnn_theory), built with y as the regression target."""
    from . import cnn_theory
    from .models import cnn

    v1 = jnp.asarray(cnn_theory.spectrum(cnn_theory.z_matrix(np.asarray(x), np.asarray(y, np.float64), spec.kernel_size))["v1"], dtype)
    xs = jnp.asarray(x, dtype)
    d_out = spec.classes if spec.loss == "cross_entropy" else 1
    if spec.loss == "cross_entropy":
        labels = jnp.asarray(y, jnp.int32)
        loss = lambda p: cnn.cross_entropy(cnn.apply(p, xs, act), labels)
        accuracy = lambda p: jnp.mean(jnp.argmax(cnn.apply(p, xs, act), -1) == labels)
    else:
        ys = jnp.asarray(y, dtype)
        loss = lambda p: cnn.mse(cnn.apply(p, xs, act)[:, 0], ys)
        accuracy = lambda p: jnp.mean(jnp.round(cnn.apply(p, xs, act)[:, 0]) == jnp.round(ys))

    c_ins = (x.shape[-1], *spec.channels[:-1])
    fan_std = None if spec.conv_fan_gamma is None else jnp.asarray(
        [((ci + co) / 2 * spec.kernel_size**2) ** -spec.conv_fan_gamma for ci, co in zip(c_ins, spec.channels)], dtype)

    def init(key, eps, s):
        beta1 = eps * s[0] if fan_std is None else fan_std  # section 5.1: σ₁ = ((c_in + c_out)/2 · m²)^(−γ)
        return cnn.init(key, tuple(x.shape[1:]), spec.channels, spec.kernel_size, beta1, eps * s[1],
                        spec.hidden, d_out, dtype)

    def measure(p, p0, eps):
        series, cos = metrics.cnn(p, p0, v1, eps, spec.cos_threshold)
        return {**series, "accuracy": accuracy(p)}, cos

    vg = None
    if (len(spec.channels) == 1 and spec.hidden is None and spec.loss == "mse"
            and spec.activation in ("tanh", "sigmoid", "relu", "identity")):
        windows = cnn.patches(xs, spec.kernel_size)  # the data's windows, once
        windows = windows.reshape(windows.shape[0], -1, windows.shape[-1])
        vg = lambda p: (*cnn.two_layer_value_and_grad(p, windows, ys, spec.activation), None)
    return Model(init, loss, measure, None, vg, lambda p, xs_: cnn.apply(p, xs_, act)[:, 0])


def _target_direction(x, y):
    from .data import target_direction

    return target_direction(np.asarray(x, np.float64), np.asarray(y, np.float64))


def _optimizer(spec: TrainSpec) -> optax.GradientTransformation:
    ratios = {int(step): lr / spec.lr for step, lr in spec.lr_drops}  # lr after each step, over the base lr
    schedule = optax.piecewise_constant_schedule(spec.lr, _relative(ratios))
    return optax.sgd(schedule) if spec.optimizer == "gd" else optax.adam(schedule)


def _relative(absolute: dict[int, float]) -> dict[int, float]:
    """optax.piecewise_constant_schedule multiplies: turn absolute lr ratios into step-to-step factors."""
    out, prev = {}, 1.0
    for step in sorted(absolute):
        out[step] = absolute[step] / prev
        prev = absolute[step]
    return out


def split_scale(spec: TrainSpec, scale):
    """A run's scale argument: ε (layer multipliers spec.layer_scales), or the vector
    (ε, s_1, …, s_L) whose per-layer multipliers vary from run to run (one compiled call then
    covers a whole phase-diagram grid of per-layer scales at one width)."""
    scale = jnp.asarray(scale, jnp.dtype(spec.dtype))
    if scale.ndim == 0:
        return scale, jnp.asarray(spec.layer_scales, scale.dtype)
    if scale.shape != (1 + len(spec.layer_scales),):
        raise ConfigError(f"a per-layer scale is (ε, s_1, …, s_{len(spec.layer_scales)}); got shape {scale.shape}")
    return scale[0], scale[1:]


def tangent_kernel_trace(apply: Callable, params, x) -> jnp.ndarray:
    """K₀ = (1/n) Σ_i ‖∇_θ f(x_i)‖², one sample at a time (memory O(#params), not O(n·#params))."""

    def sq_norm(xi):
        g = jax.grad(lambda p: apply(p, xi[None])[0])(params)
        return sum(jnp.vdot(v, v) for v in jax.tree_util.tree_leaves(g))

    return jnp.mean(jax.lax.map(sq_norm, x))


class Flags(NamedTuple):
    """Per-run bookkeeping carried through the steps (int32 scalars)."""

    status: jnp.ndarray  # STATUS_CODES: 0 running (finished at the end), 1 diverged, 2 converged
    stop: jnp.ndarray  # the step the run is frozen at (spec.steps while it runs)
    escape: jnp.ndarray  # first step with loss ≤ escape_fraction × initial loss (−1: not yet)
    pos: jnp.ndarray  # running max of the Fig. 2 positive sum (−1: none)


class StepState(NamedTuple):
    """What a step carries besides the two parameter buffers."""

    opt_state: object  # optax state (rebuilt from the step index for plain GD)
    last_loss: jnp.ndarray  # the loss at the run's last accepted parameters
    flags: Flags


class Buffers(NamedTuple):
    """θ_i and θ_{i−1} (kept to freeze a diverging run at its last finite point), and the state."""

    cur: object
    prev: object
    state: StepState


def _forward_backward(model: Model, p):
    """(R_S, ∇R_S, Fig. 2 positive sum or None) at p. The written-out pass of the three-layer
    network computes the sum from its own products; otherwise it is model.positive_sum(p)."""
    if model.value_and_grad is not None:
        loss, grads, pos = model.value_and_grad(p)
    else:
        (loss, grads), pos = jax.value_and_grad(model.loss)(p), None
    if pos is None and model.positive_sum is not None:
        pos = model.positive_sum(p)
    return loss, grads, pos


def _forward(model: Model, p):
    """(R_S, positive sum) at p: the same pass, its backward dead code."""
    loss, _, pos = _forward_backward(model, p)
    return loss, pos


def _check(spec: TrainSpec, i, loss, pos_now, last_loss, loss0, flags: Flags):
    """Judge the loss at θ_i: divergence, convergence (engine.freeze), escape step, and fold in
    the positive sum at θ_i (pos_now; None for a model without one)."""
    status, stop, escape, pos = flags
    running = status == freeze.RUNNING
    bad, done, status = freeze.judge(status, loss, loss0, spec.diverge_factor, spec.loss_threshold)
    loss = jnp.where(bad, last_loss, loss)
    status = status.astype(jnp.int32)
    stop = jnp.where(bad, i - 1, jnp.where(done, i, stop)).astype(jnp.int32)
    escape = jnp.where((escape < 0) & running & ~bad & (loss <= spec.escape_fraction * loss0), i, escape).astype(jnp.int32)
    if pos_now is not None:
        pos = jnp.where(running & ~bad, jnp.maximum(pos, pos_now), pos).astype(jnp.int32)
    return bad, loss, Flags(status, stop, escape, pos)


def make_train(spec: TrainSpec, x, y) -> Callable:
    """A pure `train(key, scale) -> TrainResult` for `spec` on data (x, y).

    θ_i are the parameters after i updates. Step i evaluates the loss and gradient at θ_i (one
    forward and backward pass per step); if that loss is non-finite or above diverge_factor × the
    initial loss, the run is frozen at θ_{i−1} (status diverged); if it is ≤ loss_threshold the run
    is frozen at θ_i (status converged). Frozen runs keep their loss in later records.

    The loop is a scan over the record intervals [r_{k−1}, r_k) with an inner loop over the steps
    of each, so the measurements of metrics.py (O(m³) for the Assumption 2 pair counts) cost once
    per record, not once per step.

    For speed (benchmarks/gd_vs_torch.py): the inner loop takes two steps per iteration and keeps
    θ_i and θ_{i−1} (needed to freeze a diverging run) in two buffers that swap roles, so a step
    writes one new parameter set, update and freeze decision fused in one pass, instead of
    selecting and copying whole parameter sets several times; an odd step left over runs once at
    the end of the interval. Plain GD carries no optimiser state (its update count is the step
    index while a run runs), and the three-layer network uses its written-out forward and
    backward pass (Model.value_and_grad).
    """
    enable_dtype(spec.dtype)  # before anything is traced
    model = _model(spec, x, y)
    opt = _optimizer(spec)
    recorded = spec.recorded()
    starts = jnp.asarray(np.concatenate([[0], recorded[:-1]]))
    ends = jnp.asarray(recorded)
    slots = jnp.asarray(_slots(recorded, spec.cosine_recorded()))
    forward_backward = functools.partial(_forward_backward, model)
    forward = functools.partial(_forward, model)
    check = functools.partial(_check, spec)
    # optax's sgd state is its update count alone, which equals the step index i while a run runs
    # (a frozen run takes no update), so it is rebuilt from i instead of carried and selected.
    counted = spec.optimizer == "gd"
    # with a loss threshold, runs stop at very different steps (a phase diagram spans orders of
    # magnitude): a while loop lets a batch stop once all its runs have; without one, a fixed-count
    # loop avoids the per-step select that vmap adds to a while loop's carry
    early_stop = spec.loss_threshold > 0

    x_data = jnp.asarray(x, jnp.dtype(spec.dtype))
    leading_order = _leading_order(spec, x, y, recorded)

    def train(key, scale):
        eps, mult = split_scale(spec, scale)
        params0 = model.init(key, eps, mult)
        loss0, _ = forward(params0)
        opt0 = opt.init(params0)
        if spec.lr_ntk is not None:  # the run's step size min(lr, lr_ntk / K₀), as a factor on lr
            k0 = tangent_kernel_trace(model.apply, params0, x_data)
            factor = jnp.minimum(1.0, spec.lr_ntk / (spec.lr * k0)).astype(loss0.dtype)
        else:
            factor = jnp.ones((), loss0.dtype)
        # fast-forward: the plateau from the leading-order map (k_h = 0 and GD from the start without)
        k_h, params_h, at_records = leading_order(params0, eps, factor)
        loss_h, _ = forward(params_h)

        def step(i, cur, prev, state: StepState):
            """Step i from θ_i = cur, θ_{i−1} = prev: returns θ_{i+1}, or the parameters the run is frozen at."""
            opt_state, last_loss, flags = state
            loss, grads, pos = forward_backward(cur)
            bad, loss, flags = check(i, loss, pos, last_loss, loss0, flags)
            go = flags.status == 0
            if counted:
                updates, _ = opt.update(grads, jax.tree_util.tree_map(lambda c: jnp.asarray(i, c.dtype), opt0), cur)
            else:
                updates, new_state = opt.update(grads, opt_state, cur)
                opt_state = freeze.select(go, new_state, opt_state)
            if spec.lr_ntk is not None:
                updates = jax.tree_util.tree_map(lambda u: factor * u, updates)
            new = jax.tree_util.tree_map(
                lambda p, q, u: jnp.where(go, optax.apply_updates(p, u), jnp.where(bad, q, p)), cur, prev, updates
            )
            return new, StepState(opt_state, loss, flags)

        def interval(carry, k):
            buffers, cos_store = carry
            start, end = starts[k], ends[k]
            if at_records is not None:  # records up to k_h are the effective dynamics'; GD takes over at k_h
                effective, handover = end <= k_h, (start < k_h) & (k_h < end)
                here = jax.tree_util.tree_map(lambda r: r[k], at_records)
                cur = freeze.select(effective, here, freeze.select(handover, params_h, buffers.cur))
                last = jnp.where(handover, loss_h, buffers.state.last_loss)
                buffers = Buffers(cur, freeze.select(effective | handover, cur, buffers.prev), buffers.state._replace(last_loss=last))
                start = jnp.where(effective, end, jnp.maximum(start, k_h))

            def two_steps(j, b: Buffers) -> Buffers:  # θ_{i+1} overwrites θ_{i−1}, then θ_{i+2} overwrites θ_i
                following, state = step(start + 2 * j, b.cur, b.prev, b.state)  # θ_{i+1}
                after, state = step(start + 2 * j + 1, following, b.cur, state)  # θ_{i+2}
                return Buffers(after, following, state)

            def last_step(b: Buffers) -> Buffers:
                new, state = step(end - 1, b.cur, b.prev, b.state)
                return Buffers(new, b.cur, state)

            if early_stop:  # a converged or diverged run leaves the loop; the batch ends with its last run
                def running(j_b):
                    j, b = j_b
                    return (j < (end - start) // 2) & (b.state.flags.status == 0)

                _, b = jax.lax.while_loop(running, lambda j_b: (j_b[0] + 1, two_steps(*j_b)), (0, buffers))
            else:
                b = jax.lax.fori_loop(0, (end - start) // 2, two_steps, buffers)
            cur, prev, (opt_state, last_loss, flags) = jax.lax.cond((end - start) % 2 == 1, last_step, lambda b: b, b)
            bad, loss, flags = check(end, *forward(cur), last_loss, loss0, flags)  # the record's own θ
            cur = freeze.select(bad, prev, cur)
            series, cos = model.measure(cur, params0, eps)
            keep = slots[k] >= 0
            cos_store = {
                name: jnp.where(keep, cos_store[name].at[jnp.maximum(slots[k], 0)].set(cos[name]), cos_store[name])
                for name in cos_store
            }
            return (Buffers(cur, prev, StepState(opt_state, loss, flags)), cos_store), (loss, series)

        _, cos0 = model.measure(params0, params0, eps)
        cos_store = {name: jnp.zeros((len(spec.cosine_recorded()), *c.shape), c.dtype) for name, c in cos0.items()}
        neg = jnp.int32(-1)
        state = StepState(opt0, loss0, Flags(jnp.int32(0), jnp.int32(spec.steps), neg, neg))
        carry = (Buffers(params0, params0, state), cos_store)
        (last, cos_store), (losses, series) = jax.lax.scan(interval, carry, jnp.arange(len(recorded)))
        params, (status, stop, escape, pos) = last.cur, last.state.flags
        return TrainResult(losses, series, cos_store, params0, params, status, stop, escape, pos, factor, k_h)

    return train


def _leading_order(spec: TrainSpec, x, y, recorded: np.ndarray) -> Callable:
    """`(params0, ε, lr factor) -> (k_h, params at k_h, params at every record or None)`: the run's
    plateau from its leading-order GD map (gd/fast_forward.py), up to the handover; without
    spec.fast_forward_norm, (0, params0, None): GD from the start."""
    if spec.fast_forward_norm is None:
        return lambda params0, eps, factor: (jnp.int32(0), params0, None)
    from . import fast_forward
    from .data import effective_rate

    dtype = jnp.dtype(spec.dtype)
    act = activations.get(spec.activation)
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    last = min([spec.steps, *(int(s) for s, _ in spec.lr_drops)])  # the handover comes before the first lr drop
    if spec.model == "cnn":
        if len(spec.channels) != 1 or spec.hidden is not None or spec.loss != "mse":
            raise ConfigError("fast-forward follows the two-layer CNN (one conv layer, no hidden layer, MSE) only")
        u, s, vt = np.linalg.svd(fast_forward.cnn_z(x64, y64, spec.kernel_size), full_matrices=False)
        return lambda params0, eps, factor: fast_forward.effective_cnn(
            params0, (u, s, vt), act.slope0, spec.lr * factor, last, recorded, spec.fast_forward_norm)
    v = jnp.asarray(_target_direction(x64, y64), dtype)
    if spec.model == "three-layer":
        kappa = effective_rate(x64, y64, act.slope0)  # κ = σ'(0)²‖Σ yᵢxᵢ‖/n
        xs = jnp.asarray(x64, dtype)
        return lambda params0, eps, factor: fast_forward.effective_three_layer(
            params0, eps, v, kappa, spec.lr * factor, last, recorded, spec.fast_forward_norm, xs, act.slope0)
    # λ = σ'(0)‖z‖/α, a Python float (weakly typed: a NumPy float64 would make η·λ float64 in 64-bit mode)
    lam = float(act.slope0 * np.linalg.norm(y64 @ x64) / len(y64) / spec.alpha)
    return lambda params0, eps, factor: fast_forward.effective_two_layer(
        params0, v, lam, spec.lr * factor, last, recorded, spec.fast_forward_norm)


def _slots(recorded: np.ndarray, cosine_steps: np.ndarray) -> np.ndarray:
    """For each record, its index among the cosine steps, or −1 if its matrices are not kept."""
    where = {int(s): j for j, s in enumerate(cosine_steps)}
    return np.array([where.get(int(r), -1) for r in recorded], dtype=np.int32)


def batched(spec: TrainSpec, x, y, group: int | None = None) -> Callable:
    """`run(keys (S, 2), scales (E,)) -> TrainResult` with leading axes (S, E): `train` over
    seeds × scales in one compiled call.

    With several local devices (the CLI exposes each CPU core as one) the seeds are split across
    them by `devices.split_seeds`: each device runs its share alone, nothing crosses devices.
    The two- and three-layer networks run in groups of `group` runs (default: `group_size`, what
    fits in a core's cache), vmapped within a group and one group after another
    (`devices.in_groups`).
    """
    from ..engine.devices import in_groups, split_seeds

    train = make_train(spec, x, y)
    if spec.model in ("three-layer", "two-layer"):
        return in_groups(train, group or group_size(spec, np.shape(x)))
    per_key = jax.vmap(train, in_axes=(None, 0))
    # the seeds run one after another on each device (lax.map), the scales of a seed side by side:
    # a CNN run's activations (n × positions × channels) fill the cache on their own (1.6x faster
    # than vmapping the seeds on the 2-core CPU, benchmarks/cnn_vs_torch.py; groups of 4 and 8
    # seeds: 1.2-1.3x), and a seed is computed the same way on any device count (deep-linear too)
    return split_seeds(lambda keys, scales: jax.lax.map(lambda k: per_key(k, scales), keys), 1)


def group_size(spec: TrainSpec, x_shape: tuple[int, ...]) -> int:
    """How many runs one CPU device steps side by side (vmap) before moving to the next group.

    A step streams every run's parameters, gradient and hidden activations through the core;
    when a group's working set fits in a quarter of the core's L2 cache the elementwise passes
    and the m×m×n products read it from L2 instead of L3 (benchmarks/gd_vs_torch.py: groups of 1
    run at m = 200 and of 3-8 at m = 50 are 1.5x and 1.3x faster than all 32/128 runs of a
    core side by side; 4x that budget was slower again). Working set per run: θ_i, θ_{i−1} and
    ∇θ, and per hidden layer its output, δ and σ'. Off the CPU (a GPU wants wide batches) every
    run goes in one group.
    """
    from ..engine.devices import cache_group_size

    n, d = x_shape[0], int(np.prod(x_shape[1:]))
    m = spec.width
    params, layers = (m * m + m * d + m, 2) if spec.model == "three-layer" else (m * d + m, 1)
    return cache_group_size(jnp.dtype(spec.dtype).itemsize * (3 * params + 3 * layers * m * n))


