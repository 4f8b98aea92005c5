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
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .config import ConfigError
from .models import activations, deep_linear, mlp

MODELS = ("three-layer", "two-layer", "deep-linear")
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

    def __post_init__(self):
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; known: {list(MODELS)}")
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
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")

    def recorded(self) -> np.ndarray:
        """The steps at which the loss is recorded (0 = the initial loss), sorted, unique."""
        if self.record_steps is not None:
            steps = np.asarray(self.record_steps, dtype=np.int64)
            if steps.size == 0 or steps.min() < 0 or steps.max() > self.steps:
                raise ConfigError(f"record_steps must lie in [0, {self.steps}], got {self.record_steps!r}")
            return np.unique(steps)
        return np.unique(np.concatenate([[0], np.geomspace(1, self.steps, 40).round().astype(np.int64)]))


class TrainResult(NamedTuple):
    loss: jnp.ndarray  # (K,) loss at spec.recorded() (frozen value after divergence or convergence)
    params0: dict | list
    params: dict | list  # final (or frozen) parameters
    status: jnp.ndarray  # 0 finished, 1 diverged, 2 converged (STATUS_CODES)
    stop_step: jnp.ndarray  # updates applied to the parameters the run is frozen at; spec.steps if never


def _model(spec: TrainSpec, x, y) -> tuple[Callable, Callable]:
    """(init(key, ε), loss(params)) of the model the spec names, on data (x, y)."""
    dtype = jnp.dtype(spec.dtype)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    act = activations.get(spec.activation).fn
    s = spec.layer_scales
    if spec.model == "three-layer":
        init = lambda key, eps: mlp.three_layer_init(key, x.shape[1], spec.width, (eps * s[0], eps * s[1], eps * s[2]), dtype)
        loss = lambda p: mlp.mse(mlp.three_layer_apply(p, x, act), y)
    elif spec.model == "two-layer":
        init = lambda key, eps: mlp.two_layer_init(key, x.shape[1], spec.width, eps * s[0], eps * s[1], dtype)
        loss = lambda p: mlp.mse(mlp.two_layer_apply(p, x, act, spec.alpha), y)
    else:  # deep-linear: x holds the measurement matrices (n, m, m)
        init = lambda key, eps: [eps * si * v for si, v in zip(s, deep_linear.init(key, spec.width, 1.0, len(s), dtype))]
        loss = lambda p: deep_linear.sensing_loss(p, x, y)
    return init, loss


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


def _select(flag, new, old):
    return jax.tree_util.tree_map(lambda n, o: jnp.where(flag, n, o), new, old)


def make_train(spec: TrainSpec, x, y) -> Callable:
    """A pure `train(key, scale) -> TrainResult` for `spec` on data (x, y).

    θ_i are the parameters after i updates. Step i evaluates the loss and gradient at θ_i (one
    forward and backward pass per step); if that loss is non-finite or above diverge_factor × the
    initial loss, the run is frozen at θ_{i−1} (status diverged); if it is ≤ loss_threshold the run
    is frozen at θ_i (status converged). Frozen runs keep their loss in later records.
    """
    init, loss_fn = _model(spec, x, y)
    opt = _optimizer(spec)
    recorded = jnp.asarray(spec.recorded())
    value_and_grad = jax.value_and_grad(loss_fn)

    def check(i, params, prev, loss, last_loss, loss0, status, stop):
        running = status == 0
        bad = running & (~jnp.isfinite(loss) | (loss > spec.diverge_factor * loss0))
        params = _select(bad, prev, params)
        loss = jnp.where(bad, last_loss, loss)
        done = running & ~bad & (loss <= spec.loss_threshold)
        status = jnp.where(bad, 1, jnp.where(done, 2, status)).astype(jnp.int32)
        stop = jnp.where(bad, i - 1, jnp.where(done, i, stop)).astype(jnp.int32)
        return params, loss, status, stop

    def train(key, scale):
        params0 = init(key, scale)
        loss0 = loss_fn(params0)

        def step(carry, i):
            params, prev, opt_state, last_loss, records, status, stop = carry
            loss, grads = value_and_grad(params)
            params, loss, status, stop = check(i, params, prev, loss, last_loss, loss0, status, stop)
            records = jnp.where(recorded == i, loss, records)
            go = status == 0
            updates, new_state = opt.update(grads, opt_state, params)
            prev = _select(go, params, prev)
            params = _select(go, optax.apply_updates(params, updates), params)
            opt_state = _select(go, new_state, opt_state)
            return (params, prev, opt_state, loss, records, status, stop), None

        records = jnp.full(recorded.shape, jnp.nan, loss0.dtype)
        carry = (params0, params0, opt.init(params0), loss0, records, jnp.int32(0), jnp.int32(spec.steps))
        (params, prev, _, last_loss, records, status, stop), _ = jax.lax.scan(step, carry, jnp.arange(spec.steps))
        # the last update's loss, θ_steps
        params, loss, status, stop = check(spec.steps, params, prev, loss_fn(params), last_loss, loss0, status, stop)
        records = jnp.where(recorded == spec.steps, loss, records)
        return TrainResult(records, params0, params, status, stop)

    return train
