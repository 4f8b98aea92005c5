"""The bias-free two-layer ReLU classifier of issue #8 and its training dynamics, as pure functions.

    f(x) = Σ_k a_k relu(w_k · x),    L(θ) = (1/n) Σ_i ℓ(y_i f(x_i)),    θ = (W (m, d), a (m,))

with ℓ(z) = log(1 + e^{−z}) (logistic) or e^{−z} (exponential), labels y_i = ±1 (Wang & Ma 2023;
Min, Mallada & Vidal 2024). Both layers are trained from a small init of scale ε:
- "gaussian": w_k ~ N(0, ε² I_d / d), a_k ~ N(0, ε²), independent;
- "balanced": the same w_k, a_k = ±‖w_k‖ with a fair random sign (Min et al.'s |a_k| = ‖w_k‖).

Two integrators produce the same records on the same time grid:
- gradient flow dθ/dt = −∇L(θ) with Diffrax (Tsit5, adaptive steps; float64) — `make_flow`;
- gradient descent θ ← θ − h_k ∇L(θ) with h_k = min(h_max, max(lr, lr_rel · t_k)), t_{k+1} = t_k + h_k
  — `make_descent`. With lr_rel > 0 the step grows with the time t already flowed (a fixed
  fraction of it), so a run reaches the loss's 1/t decay in O(log t) steps; the step is a function
  of k alone, the same for every run, and small steps make GD follow the flow.

`record` is what both keep at each grid time; the pattern-change count compares the activation
pattern 1[w_k · x_i > 0] with the one at the previous record.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..engine import freeze
from ..engine.devices import enable_dtype
from ..errors import ConfigError

LOSSES = ("logistic", "exponential")
INITS = ("gaussian", "balanced")
STATUS_CODES = {0: "finished", 1: "diverged", 2: "converged", 3: "solver_failed"}


class Params(NamedTuple):
    w: jnp.ndarray  # (m, d) first-layer weights, one neuron per row
    a: jnp.ndarray  # (m,) second-layer weights


def init(key, eps, width: int, d: int, how: str = "gaussian", dtype=jnp.float32) -> Params:
    kw, ka = jax.random.split(key)
    w = eps * jax.random.normal(kw, (width, d), dtype) / float(np.sqrt(d))
    if how == "balanced":
        sign = jnp.where(jax.random.bernoulli(ka, 0.5, (width,)), 1.0, -1.0).astype(dtype)
        return Params(w, sign * jnp.linalg.norm(w, axis=1))
    return Params(w, eps * jax.random.normal(ka, (width,), dtype))


def output(p: Params, x):
    """f(x_i) for every row of x (n, d)."""
    return jnp.maximum(x @ p.w.T, 0.0) @ p.a


def sample_losses(z, loss: str):
    """ℓ(z) at the margins z_i = y_i f(x_i), stable for large |z|."""
    return jnp.exp(-z) if loss == "exponential" else jax.nn.softplus(-z)


def loss_value(p: Params, x, y, loss: str):
    return jnp.mean(sample_losses(y * output(p, x), loss))


def value_and_grad(p: Params, x, y, loss: str):
    """L and ∇L written out (one pass over x): with g_i = ℓ'(y_i f_i) y_i / n,
    ∂L/∂a_k = Σ_i g_i relu(w_k·x_i) and ∂L/∂w_k = a_k Σ_i g_i 1[w_k·x_i > 0] x_i."""
    z = x @ p.w.T  # (n, m) pre-activations
    h = jnp.maximum(z, 0.0)
    margin = y * (h @ p.a)
    if loss == "exponential":
        ell = jnp.exp(-margin)
        dell = -ell
    else:
        ell = jax.nn.softplus(-margin)
        dell = -jax.nn.sigmoid(-margin)
    g = dell * y / x.shape[0]
    grad_a = h.T @ g
    grad_w = ((z > 0) * (g[:, None] * p.a[None, :])).T @ x
    return jnp.mean(ell), Params(grad_w, grad_a)


class Record(NamedTuple):
    """What is kept at each grid time (per run; per-neuron fields have a trailing width axis)."""

    loss: jnp.ndarray
    accuracy: jnp.ndarray  # fraction of samples with y_i f(x_i) > 0
    margin: jnp.ndarray  # normalised margin min_i y_i f(x_i) / ‖θ‖²
    param_norm: jnp.ndarray  # ‖θ‖
    live: jnp.ndarray  # neurons active on at least one sample
    active: jnp.ndarray  # (neuron, sample) pairs with w_k · x_i > 0
    pattern_changes: jnp.ndarray  # (neuron, sample) pairs whose activation changed since the last record
    in_s_plus: jnp.ndarray  # neurons active exactly on the positive samples (Min et al.'s S₊)
    in_s_minus: jnp.ndarray  # … exactly on the negative samples (S₋)
    stable_rank: jnp.ndarray  # ‖W‖_F² / ‖W‖₂²
    align_pos: jnp.ndarray  # min over live neurons with a_k > 0 of cos(w_k, x₊); NaN if there is none
    align_neg: jnp.ndarray  # min over live neurons with a_k < 0 of cos(w_k, x₋); NaN if there is none
    cond_pos: jnp.ndarray  # min over live a_k > 0 of cos(w_k, their mean direction): condensation; NaN if none
    cond_neg: jnp.ndarray  # the same for a_k < 0
    max_neuron_norm: jnp.ndarray  # max_k ‖(w_k, a_k)‖
    neuron_norm: jnp.ndarray  # (m,) ‖w_k‖
    neuron_a: jnp.ndarray  # (m,) a_k
    neuron_cos_pos: jnp.ndarray  # (m,) cos(w_k, x₊)
    neuron_cos_neg: jnp.ndarray  # (m,) cos(w_k, x₋)
    neuron_u: jnp.ndarray  # (m,) w_k in the plane of (x₊, x₋): coordinate along x₊
    neuron_v: jnp.ndarray  # (m,) … along the unit vector of x₋ orthogonal to x₊


def class_directions(x, y):
    """Unit vectors x₊, x₋ of the two class means, and an orthonormal basis (e₁ = x₊, e₂) of their plane."""
    x, y = np.asarray(x, float), np.asarray(y, float)

    def unit_mean(rows):  # a class whose mean is 0 (possible only for non-separable data): its first sample
        v = rows.mean(0)
        v = v if np.linalg.norm(v) > 1e-12 * max(np.abs(rows).max(), 1e-300) else rows[0]
        return v / np.linalg.norm(v)

    xp, xn = unit_mean(x[y > 0]), unit_mean(x[y < 0])
    e2 = xn - (xn @ xp) * xp
    nrm = np.linalg.norm(e2)
    if nrm < 1e-12:  # x₋ ∥ x₊: any direction orthogonal to x₊
        e2 = np.eye(len(xp))[np.argmin(np.abs(xp))]
        e2 = e2 - (e2 @ xp) * xp
        nrm = np.linalg.norm(e2)
    return xp, xn, e2 / nrm


def _min_where(v, mask):
    """min of v over the mask; NaN for an empty mask (a group with no live neuron is neither
    aligned nor condensed: there is nothing to measure)."""
    return jnp.where(jnp.any(mask), jnp.min(jnp.where(mask, v, jnp.inf)), jnp.nan)


def top_eigenvalue_psd(g, squarings: int = 24):
    """λ_max of a symmetric positive semi-definite k×k matrix G, without LAPACK.

    tr(G^p)^(1/p) with p = 2^K, by K normalised squarings (hₖ = G^(2^k)/tr G^(2^k), and the mean
    log ℓₖ = log tr(G^(2^k))/2^k accumulated as ℓₖ₊₁ = ℓₖ + log tr(hₖ²)/2^(k+1)). Since
    λ_max^p ≤ tr(G^p) ≤ k·λ_max^p, the result is in [λ_max, k^(1/p) λ_max]: relative error at most
    ln(k)/2^K (2.5e-7 for k = 64, K = 24), on top of rounding. A LAPACK call (eigvalsh) inside a
    compiled run deadlocks jaxlib 0.10's CPU thread pool when several host devices run such calls
    at once (devices.py), so the records use this instead. Returns 0 for G = 0.
    """
    t = jnp.trace(g)
    pos = t > 0
    h = g / jnp.where(pos, t, 1.0)

    def square(k, state):
        h, ell = state
        h2 = h @ h
        s = jnp.trace(h2)
        s = jnp.where(s > 0, s, 1.0)
        return h2 / s, ell + jnp.log(s) / 2.0 ** (k + 1)

    _, ell = jax.lax.fori_loop(0, squarings, square, (h, jnp.log(jnp.where(pos, t, 1.0))))
    return jnp.where(pos, jnp.exp(ell), 0.0)


def _stable_rank(w):
    """‖W‖_F² / ‖W‖₂² (0 for W = 0), with ‖W‖₂² = λ_max of the smaller Gram matrix."""
    gram = w.T @ w if w.shape[1] <= w.shape[0] else w @ w.T
    top = top_eigenvalue_psd(gram)
    return jnp.where(top > 0, jnp.trace(gram) / jnp.where(top > 0, top, 1.0), 0.0)


def record(p: Params, prev_pattern, x, y, loss: str, dirs):
    """The Record of θ = p, and its activation pattern (n, m) for the next record's change count."""
    xp, xn, e2 = dirs
    z = x @ p.w.T
    pattern = z > 0
    margins = y * (jnp.maximum(z, 0.0) @ p.a)
    norm_w = jnp.linalg.norm(p.w, axis=1)
    unit = p.w / jnp.where(norm_w > 0, norm_w, 1.0)[:, None]
    cos_pos, cos_neg = unit @ xp, unit @ xn
    live = jnp.any(pattern, axis=0)
    pos, neg = live & (p.a > 0), live & (p.a < 0)
    is_pos = (y > 0)[:, None]
    in_plus = jnp.all(pattern == is_pos, axis=0)
    in_minus = jnp.all(pattern == ~is_pos, axis=0)

    def condensation(mask):
        mean = jnp.sum(jnp.where(mask[:, None], unit, 0.0), axis=0)
        mean = mean / jnp.maximum(jnp.linalg.norm(mean), 1e-30)
        return _min_where(unit @ mean, mask)

    theta2 = jnp.sum(p.w**2) + jnp.sum(p.a**2)
    rec = Record(
        loss=jnp.mean(sample_losses(margins, loss)),
        accuracy=jnp.mean(margins > 0),
        margin=jnp.min(margins) / theta2,
        param_norm=jnp.sqrt(theta2),
        live=jnp.sum(live),
        active=jnp.sum(pattern),
        pattern_changes=jnp.sum(pattern != prev_pattern),
        in_s_plus=jnp.sum(in_plus & live),
        in_s_minus=jnp.sum(in_minus & live),
        stable_rank=_stable_rank(p.w),
        align_pos=_min_where(cos_pos, pos),
        align_neg=_min_where(cos_neg, neg),
        cond_pos=condensation(pos),
        cond_neg=condensation(neg),
        max_neuron_norm=jnp.sqrt(jnp.max(norm_w**2 + p.a**2)),
        neuron_norm=norm_w,
        neuron_a=p.a,
        neuron_cos_pos=cos_pos,
        neuron_cos_neg=cos_neg,
        neuron_u=p.w @ xp,
        neuron_v=p.w @ e2,
    )
    return rec, pattern


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlowSpec:
    """Static configuration of one run of the classifier (shapes and hyper-parameters, no data)."""

    width: int = 50
    loss: str = "logistic"
    init: str = "gaussian"
    method: str = "gd"  # "gd" (small-step gradient descent) or "gf" (Diffrax gradient flow)
    times: tuple[float, ...] = tuple(np.geomspace(0.1, 1000.0, 61))  # record times (t = Σ steps)
    lr: float = 0.05  # GD: the smallest step
    lr_rel: float = 0.01  # GD: the step grows to lr_rel · t …
    lr_max: float = 1.0  # … but no further than this
    # GF: Diffrax's PID controller. Neurons that settle on a kink w_k·x_i = 0 (a sliding mode of
    # this piecewise-smooth flow) make it reject about half its steps; rtol 1e-7 takes ~10x the steps
    rtol: float = 1e-6
    atol: float = 1e-9
    max_steps: int = 500_000  # GF: solver steps at most (status solver_failed beyond)
    dtype: str = "float32"
    diverge_factor: float = 1e6  # a loss above this × the initial loss (or non-finite): diverged
    loss_threshold: float = 0.0  # a loss at or below this: converged (frozen); 0: never
    # a frozen run keeps the parameters at which it was judged: a diverged run's records show the
    # exploded (or non-finite) loss that stopped it, a converged run's the loss that reached the threshold

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, (int, np.integer)) or self.width < 1:
            raise ConfigError(f"width must be an integer ≥ 1, got {self.width!r}")
        for name, allowed in (("loss", LOSSES), ("init", INITS), ("method", ("gd", "gf"))):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; known: {list(allowed)}")
        t = np.asarray(self.times, float)
        if t.ndim != 1 or len(t) < 2 or not np.all(np.isfinite(t)) or t[0] <= 0 or np.any(np.diff(t) <= 0):
            raise ConfigError(f"record times must be positive, finite and increasing, got {self.times!r}")
        for name in ("lr", "lr_max", "rtol", "atol", "diverge_factor"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be positive and finite, got {v!r}")
        if not (np.isfinite(self.lr_rel) and self.lr_rel >= 0):
            raise ConfigError(f"lr_rel must be non-negative and finite, got {self.lr_rel!r}")
        if self.lr_max < self.lr:
            raise ConfigError(f"lr_max = {self.lr_max} is below lr = {self.lr}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")


def descent_schedule(spec: FlowSpec):
    """GD's steps h_k and the record points: the step counts at which the time t_k = Σ_{j<k} h_j
    first reaches each of spec.times, the requested times that fall on the same step merged;
    returns (h (K,), step counts (R,), their times t (R,)). Gradient flow records at the same t."""
    t, hs = 0.0, []
    counts, reached = [], []
    for target in np.asarray(spec.times, float):
        while t < target * (1 - 1e-12):
            h = min(spec.lr_max, max(spec.lr, spec.lr_rel * t))
            hs.append(h)
            t += h
        if not counts or len(hs) > counts[-1]:
            counts.append(len(hs))
            reached.append(t)
    return np.asarray(hs), np.asarray(counts), np.asarray(reached)


def record_times(spec: FlowSpec) -> np.ndarray:
    """The times both integrators record at: those GD reaches (so GF and GD compare point by point)."""
    return descent_schedule(spec)[2]


class RunResult(NamedTuple):
    records: Record  # leading axis: record times
    times: jnp.ndarray  # the times actually reached (GD: Σ h_k at the record's step)
    status: jnp.ndarray  # 0 finished, 1 diverged, 2 converged
    stop_time: jnp.ndarray  # time the run was frozen at (the last time if it never was)
    stop_step: jnp.ndarray  # GD: the step it was frozen at (the step count if never); GF: −1
    params0: Params
    params: Params


class Descent(NamedTuple):
    """What a GD step carries: the parameters and the freeze bookkeeping (engine.freeze)."""

    params: Params
    status: jnp.ndarray  # STATUS_CODES
    stop_time: jnp.ndarray  # time the run was frozen at (the last time while it runs)
    stop_step: jnp.ndarray  # step it was frozen at (the step count while it runs)


def make_descent(spec: FlowSpec, dirs) -> callable:
    """A pure `run(key, eps, x, y) -> RunResult` of small-step GD (x, y are arguments, so one
    compile serves every data set of the same shape)."""
    enable_dtype(spec.dtype)
    hs, counts, _ = descent_schedule(spec)
    dtype = jnp.dtype(spec.dtype)
    steps = jnp.asarray(hs, dtype)
    clock = jnp.asarray(np.concatenate([[0.0], np.cumsum(hs)]), dtype)
    starts = jnp.asarray(np.concatenate([[0], counts[:-1]]), jnp.int32)
    ends = jnp.asarray(counts, jnp.int32)
    dirs = tuple(jnp.asarray(v, dtype) for v in dirs)

    def run(key, eps, x, y):
        x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
        p0 = init(key, jnp.asarray(eps, dtype), spec.width, x.shape[1], spec.init, dtype)
        loss0 = loss_value(p0, x, y, spec.loss)

        def step(i, d: Descent) -> Descent:
            loss, grad = value_and_grad(d.params, x, y, spec.loss)
            bad, done, status = freeze.judge(d.status, loss, loss0, spec.diverge_factor, spec.loss_threshold)
            stop_time = jnp.where(bad | done, clock[i], d.stop_time)
            stop_step = jnp.where(bad | done, i, d.stop_step)
            new = jax.tree_util.tree_map(lambda q, g: q - steps[i] * g, d.params, grad)
            return Descent(freeze.select(status == 0, new, d.params), status, stop_time, stop_step)

        def interval(carry, k):
            d, pattern = carry
            d = jax.lax.fori_loop(starts[k], ends[k], step, d)
            rec, pattern = record(d.params, pattern, x, y, spec.loss, dirs)
            return (d, pattern), rec

        pattern0 = (x @ p0.w.T) > 0
        d0 = Descent(p0, jnp.int32(0), clock[-1], jnp.int32(len(hs)))
        (d, _), recs = jax.lax.scan(interval, (d0, pattern0), jnp.arange(len(counts)))
        return RunResult(recs, clock[ends], d.status, d.stop_time, d.stop_step, p0, d.params)

    return run


def make_flow(spec: FlowSpec, dirs) -> callable:
    """A pure `run(key, eps, x, y) -> RunResult` of gradient flow, integrated by Diffrax (Tsit5 with
    a PID controller, float64 recommended) and saved at the record times. The ReLU's kinks make the
    vector field only piecewise smooth; the controller rejects the steps that straddle one."""
    import diffrax

    enable_dtype(spec.dtype)
    dtype = jnp.dtype(spec.dtype)
    times = jnp.asarray(record_times(spec), dtype)
    dirs = tuple(jnp.asarray(v, dtype) for v in dirs)

    def run(key, eps, x, y):
        x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
        p0 = init(key, jnp.asarray(eps, dtype), spec.width, x.shape[1], spec.init, dtype)
        loss0 = loss_value(p0, x, y, spec.loss)

        def field(t, p, args):
            return jax.tree_util.tree_map(jnp.negative, value_and_grad(p, x, y, spec.loss)[1])

        def stop_event(t, p, args, **kw):  # the flow's own divergence / convergence test
            loss = loss_value(p, x, y, spec.loss)
            done = (loss <= spec.loss_threshold) if spec.loss_threshold > 0 else False
            return (~jnp.isfinite(loss)) | (loss > spec.diverge_factor * loss0) | done

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field),
            diffrax.Tsit5(),
            t0=0.0,
            t1=times[-1],
            dt0=None,
            y0=p0,
            saveat=diffrax.SaveAt(ts=times),
            stepsize_controller=diffrax.PIDController(rtol=spec.rtol, atol=spec.atol),
            event=diffrax.Event(stop_event),
            max_steps=spec.max_steps,
            throw=False,
        )
        ps = sol.ys  # entries after an event are inf: hold the last finite state
        reached = jnp.isfinite(ps.a).all(axis=1)
        last = jnp.maximum(jnp.sum(reached) - 1, 0)
        ps = jax.tree_util.tree_map(lambda v: jnp.where(reached.reshape((-1,) + (1,) * (v.ndim - 1)), v, v[last]), ps)
        final_loss = loss_value(jax.tree_util.tree_map(lambda v: v[last], ps), x, y, spec.loss)
        stopped = ~jnp.all(reached)
        bad = stopped & ((~jnp.isfinite(final_loss)) | (final_loss > spec.loss_threshold))
        status = jnp.where(stopped, jnp.where(bad, 1, 2), jnp.where(sol.result == diffrax.RESULTS.successful, 0, 3))
        stop = jnp.where(stopped, times[last], times[-1])

        def rec(pattern, p):
            r, pattern = record(p, pattern, x, y, spec.loss, dirs)
            return pattern, r

        _, recs = jax.lax.scan(rec, (x @ p0.w.T) > 0, ps)
        final = jax.tree_util.tree_map(lambda v: v[last], ps)
        return RunResult(recs, times, status.astype(jnp.int32), stop, jnp.int32(-1), p0, final)

    return run
