"""Integrate the effective dynamics up to its finite-time blow-up T* (Theorem 1).

Two integrators, one driver:

* the **reduced three-layer form** (shared/notes/three_layer_reduction.md): two `eigh` per start on
  the host, then 2m decoupled oscillators driven by one scalar, O(m) per step, vmapped over starts;
* the **full form** for any depth L ≥ 2 and for matrix sensing (A.8): θ = r u in projective time
  (issue #2), O(m²) per step. It is also the independent cross-check of the reduced form.

Both run in projective time τ (dτ = r^{L−2} dt), where nothing is singular: every start runs over
the same τ range with no event, in segments, until its T* estimate
    T* = t(τ) + E(τ)^{−(L−2)/L} / (L − 2)     (= t + E^{−1/3} for L = 3, Theorem 1 from t)
stops moving (that tail is exact for the balanced rank-one state the flow approaches).

Status per run, decided by what the solution does, with the mathematics where it decides
(`theory_status`, depth 3): ``blowup`` (T* converged); ``no_blowup`` (depth 2, which is linear,
or a balanced start with E(0) < 0, like the paper's Example 1: on the invariant set
aaᵀ = bbᵀ, bᵀb = ccᵀ the exact solution decays, ‖a(t)‖ = s/(1 + s t), so scale-invariant time
would follow that decay until rounding, which can only push the state off that set, fakes a
blow-up); ``max_steps`` (the step or τ budget ran out before T* converged, also for starts that
provably blow up later); ``nonfinite``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import optimistix

from ..engine.devices import enable_dtype
from ..engine.plan import pad_rows
from . import effective, theory

STATUSES = ("blowup", "no_blowup", "max_steps", "nonfinite")
SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SolverOptions:
    """Numerical settings of a blow-up solve (all tolerances relative to the start's scale)."""

    rtol: float = 1e-9
    atol: float = 1e-9
    solver: str = "tsit5"  # "tsit5" (5th order) or "dopri8" (8th order, for tight tolerances)
    # "per_start": vmap(diffeqsolve), every start has its own adaptive steps, so its numbers do not
    # depend on its chunk-mates; "shared": one diffeqsolve over the chunk with one step size (the
    # max-norm error over all starts), 10-40% faster in the benchmarks, each start still within the tolerance
    stepping: str = "per_start"
    tau_first: float = 20.0  # first projective-time segment [0, tau_first]
    tau_segment: float = 10.0  # later segments, until T* converges
    tau_max: float = 200.0  # give up (status max_steps) past this τ
    series_dtau: float = 1.0  # spacing of the recorded τ grid (vmapped saves cost O(records) each)
    max_steps: int = 4096  # solver steps per segment
    converge_rtol: float | None = None  # |ΔT*|/T* over the last `converge_window` of τ; None: 10·rtol
    converge_window: float = 5.0
    diverged_fraction: float = 0.5  # "c_i diverges": it grows at least like r^f over the last window
    record_pairs: bool = False  # Assumption 2 (2) pair counts at every record (O(m²) each)
    series_t: tuple[float, ...] | None = None  # record the series at these times t instead of the τ grid
    series_E: tuple[float, ...] | None = None  # … or where E(t) reaches these energies

    def converge_tol(self) -> float:
        return self.converge_rtol if self.converge_rtol is not None else 10.0 * self.rtol


# ---------------------------------------------------------------------------
# Host-side linear algebra for the reduced form


class ReducedStart(NamedTuple):
    """Everything the reduced solve needs, per start (leading batch axis B)."""

    y0: tuple  # (α, ξ, γ, η, ℓ, T) at τ = 0
    lam_hat: np.ndarray  # eigenvalues of D1 / r0²   (B, m)
    mu_hat: np.ndarray  # eigenvalues of D2 / r0²    (B, m)
    q: np.ndarray  # eigenvectors of D1 (B, m, m)
    p: np.ndarray  # eigenvectors of D2 (B, m, m)
    d1_hat: np.ndarray  # D1 / r0² (B, m, m)
    d2_hat: np.ndarray  # D2 / r0² (B, m, m)
    r0: np.ndarray  # ‖θ(0)‖ (B,)


def _reduce_part(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> ReducedStart:
    """`reduce_start` on a sub-batch, single-threaded BLAS (called from worker threads)."""
    r0 = np.sqrt(np.sum(a * a, 1) + np.sum(b * b, (1, 2)) + np.sum(c * c, 1))
    n, m = a.shape
    bt = np.swapaxes(b, 1, 2)
    if m < 64:  # small: one batched product
        d1 = a[:, :, None] * a[:, None, :] - b @ bt
        d2 = bt @ b - c[:, :, None] * c[:, None, :]
    else:  # large: 2-D products b bᵀ, bᵀ b go to BLAS syrk (half the flops of a batched matmul)
        d1, d2 = np.empty((n, m, m)), np.empty((n, m, m))
        for i in range(n):
            d1[i] = np.outer(a[i], a[i]) - b[i] @ bt[i]
            d2[i] = bt[i] @ b[i] - np.outer(c[i], c[i])
    scale = (r0 * r0)[:, None, None]
    d1 /= scale
    d2 /= scale
    bad = ~(np.isfinite(r0) & np.all(np.isfinite(d1), (1, 2)) & np.all(np.isfinite(d2), (1, 2)))
    d1[bad], d2[bad] = 0.0, 0.0  # LAPACK refuses non-finite input; the caller reports these `nonfinite`
    lam, q = np.linalg.eigh(d1)
    mu, p = np.linalg.eigh(d2)
    x = np.einsum("bij,bj->bi", b, c)  # x = b c
    y = np.einsum("bji,bj->bi", b, a)  # y = bᵀ a
    r = r0[:, None]
    rot = lambda m, v: np.einsum("bji,bj->bi", m, v)
    zeros = np.zeros_like(r0)
    y0 = (rot(q, a) / r, rot(q, x) / r**2, rot(p, c) / r, rot(p, y) / r**2, zeros, zeros)
    return ReducedStart(y0, lam, mu, q, p, d1, d2, r0)


def reduce_start(a: np.ndarray, b: np.ndarray, c: np.ndarray, workers: int | None = None) -> ReducedStart:
    """Rotate batched starts (a (B,m), b (B,m,m), c (B,m)) into the reduced, normalised form.

    D1 = a aᵀ − b bᵀ = Q diag(λ) Qᵀ and D2 = bᵀ b − c cᵀ = P diag(μ) Pᵀ (Prop. 1); x = b c, y = bᵀ a.
    The starts are split over `workers` threads (LAPACK releases the GIL), each with one BLAS thread.
    """
    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or len(a) < 2 * workers:
        return _reduce_part(a, b, c)
    from threadpoolctl import threadpool_limits

    cuts = np.array_split(np.arange(len(a)), workers)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda i: _reduce_part(a[i], b[i], c[i]), cuts))
    return jax.tree_util.tree_map(lambda *v: np.concatenate(v), *parts)


# ---------------------------------------------------------------------------
# Projective-time solves (vmapped, jitted, cached per shape and settings)


def _reduced_field(tau, y, args):
    lam_hat, mu_hat = args
    return effective.reduced_rhs(y, lam_hat, mu_hat)


def _solve(field: Callable, opts: SolverOptions, max_steps: int, y0, args, tau0, tau1, save_taus):
    """One diffeqsolve over [tau0, tau1] saving at `save_taus`; returns (ys, steps, ok, hit_max)."""
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        SOLVERS[opts.solver](),
        tau0,
        tau1,
        None,
        y0,
        args=args,
        saveat=diffrax.SaveAt(ts=save_taus),
        # max-norm error control: every component (and so ℓ = log r and T = r0 t, which carry E
        # and T*; in shared stepping, every start) is held to the tolerance, whatever the width
        stepsize_controller=diffrax.PIDController(rtol=opts.rtol, atol=opts.atol, norm=optimistix.max_norm),
        max_steps=max_steps,
        throw=False,
    )
    ok = sol.result == diffrax.RESULTS.successful
    hit_max = sol.result == diffrax.RESULTS.max_steps_reached
    return sol.ys, sol.stats["num_steps"], ok, hit_max


@functools.cache
def _segment_solver(field: Callable, opts: SolverOptions, per_start_saves: bool = False) -> Callable:
    """Compiled solve of a chunk over one τ segment, saving on one τ grid for all starts (or one
    grid per start with `per_start_saves`, which always steps per start).

    With several local devices (on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N, which
    the CLI sets to the number of cores) the chunk's starts are split over them by
    `devices.split_batch`: each device solves its share alone, nothing crosses devices.
    """
    from ..engine.devices import split_batch

    if opts.stepping == "shared" and not per_start_saves:
        batched_field = jax.vmap(field, in_axes=(None, 0, 0))  # the chunk (or a device's share) is one state

        def solve(y0, args, tau0, tau1, save_taus):
            ys, steps, ok, hit_max = _solve(batched_field, opts, opts.max_steps, y0, args, tau0, tau1, save_taus)
            n = len(jax.tree_util.tree_leaves(y0)[0])
            ys = jax.tree_util.tree_map(lambda v: jnp.swapaxes(v, 0, 1), ys)  # (K, B, …) -> (B, K, …)
            return ys, *(jnp.broadcast_to(v, (n,)) for v in (steps, ok, hit_max))

    else:
        max_steps = opts.max_steps * (int(opts.tau_max // opts.tau_segment) + 2 if per_start_saves else 1)
        one = functools.partial(_solve, field, opts, max_steps)
        solve = jax.vmap(one, in_axes=(0, 0, None, None, 0 if per_start_saves else None))
    return split_batch(solve, (True, True, False, False, per_start_saves))


def lower_first_segment(a, b, c, opts: SolverOptions):
    """The compiled call of the first τ segment of the three-layer solve of these starts, lowered
    but not run (`--dry-run`); later segments reuse it when their save grids have its length."""
    enable_dtype("float64")  # the effective ODE needs float64 (blow-up); on import nothing changes
    a, b, c = _as_batch(a, b, c)
    start = reduce_start(a, b, c)
    solve = _segment_solver(_reduced_field, opts)
    k = max(2, int(round(opts.tau_first / opts.series_dtau)) + 1)
    return solve.lower(start.y0, (start.lam_hat, start.mu_hat), 0.0, opts.tau_first, jnp.asarray(np.linspace(0.0, opts.tau_first, k)))


def _tail_tstar(t, e, depth):
    """T* = t + E^{−(L−2)/L}/(L−2): Theorem 1 applied from t (exact for balanced rank-one states)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(e > 0, t + np.power(e, -(depth - 2) / depth) / (depth - 2), np.nan)


def _run_segments(field, y0, args, t_and_energy, opts: SolverOptions, depth: int, decided=None):
    """Drive τ segments until every start's T* estimate has converged (or τ_max is reached).

    `t_and_energy(ys)` maps saved states (B, K, ...) to (t, E) arrays (B, K) in the start's units.
    Starts flagged in `decided` (no blow-up by theorem) do not hold the loop open.
    Returns the concatenated saved states, τ grid, T* estimates and per-run flags.
    """
    solve = _segment_solver(field, opts)
    tol = opts.converge_tol()
    n = len(jax.tree_util.tree_leaves(y0)[0])
    saved, taus = [], []
    tau0, state = 0.0, y0
    steps = np.zeros(n, dtype=np.int64)
    all_ok = np.ones(n, bool)
    hit_max = np.zeros(n, bool)
    converged = np.zeros(n, bool)
    while True:
        tau1 = opts.tau_first if tau0 == 0.0 else min(tau0 + opts.tau_segment, opts.tau_max)
        k = max(2, int(round((tau1 - tau0) / opts.series_dtau)) + 1)
        grid = np.linspace(tau0, tau1, k)
        ys, nsteps, ok, hmax = solve(state, args, tau0, tau1, jnp.asarray(grid))
        ys = jax.tree_util.tree_map(np.asarray, ys)
        steps += np.asarray(nsteps)
        all_ok &= np.asarray(ok)
        hit_max |= np.asarray(hmax)
        if tau0 > 0.0:  # the segment's first save repeats the previous segment's last one
            ys = jax.tree_util.tree_map(lambda v: v[:, 1:], ys)
            grid = grid[1:]
        saved.append(ys)
        taus.append(grid)
        state = jax.tree_util.tree_map(lambda v: v[:, -1], ys)
        tau0 = tau1
        if depth == 2:
            break  # linear: no blow-up to converge to; one segment records the growth
        tau_all = np.concatenate(taus)
        t, e = t_and_energy(jax.tree_util.tree_map(lambda *v: np.concatenate(v, 1), *saved))
        est = _tail_tstar(t, e, depth)
        back = np.searchsorted(tau_all, tau_all[-1] - opts.converge_window)
        change = np.abs(est[:, -1] - est[:, back]) / np.abs(est[:, -1])
        converged = np.isfinite(change) & (change <= tol)
        waiting = ~converged & all_ok & np.isfinite(t[:, -1]) & np.isfinite(e[:, -1])
        if decided is not None:
            waiting &= ~decided
        if not waiting.any() or tau0 >= opts.tau_max:
            break
    ys = jax.tree_util.tree_map(lambda *v: np.concatenate(v, 1), *saved)
    return ys, np.concatenate(taus), steps, all_ok, hit_max, converged


# ---------------------------------------------------------------------------
# Diagnostics on the recorded grid (O(m²) per recorded time, vmapped)


def _rotate_back(q, v):
    """Original coordinates M v for every recorded time: q (B, m, m), v (B, K, m) -> (B, K, m)."""
    return jnp.einsum("bij,bkj->bki", q, v)


@jax.jit
def _reduced_diagnostics(ys, q, p, r0, lam_hat):
    """Per start and recorded τ: E, norms, cos ζ and the Assumption 2 (1) counts, O(m) + one rotation.

    Back in the original coordinates a = Q ã, x = Q x̃ (= b c), c = P c̃, y = P ỹ (= bᵀ a),
    Assumption 2 (1) reads a_i x_i > 0 and c_i y_i > 0 (note, step 5). E and the norms are in the
    start's units; the τ-state is scale-free.
    """
    alpha, xi, gamma, eta, log_r, tt = ys
    r0 = r0[:, None]
    r2 = (r0 * jnp.exp(log_r)) ** 2
    e_bar = jnp.sum(alpha * xi, -1)
    na2, nc2 = jnp.sum(alpha * alpha, -1), jnp.sum(gamma * gamma, -1)
    a, x = _rotate_back(q, alpha), _rotate_back(q, xi)
    c, y = _rotate_back(p, gamma), _rotate_back(p, eta)
    return dict(
        t=tt / r0,
        energy=e_bar * r2 * jnp.sqrt(r2),
        norm_a2=r2 * na2,
        norm_b2=r2 * na2 - (r0 * r0) * jnp.sum(lam_hat, -1)[:, None],  # ‖b‖²_F = ‖a‖² − tr D1
        norm_c2=r2 * nc2,
        cos_zeta=e_bar / jnp.sqrt(na2 * jnp.sum(xi * xi, -1)),  # angle between a and ȧ = x
        # C(t) = Ė/(3E^{4/3}) with Ė = ‖ȧ‖² + ‖ċ‖² + ‖a‖²‖c‖² (proof of Theorem 2): scale-free, since
        # x and y have degree 2 and E degree 3; Theorem 1 is C ≥ 1, the balanced state has C = 1
        thm2_rate=jnp.where(
            e_bar > 0, (jnp.sum(xi * xi, -1) + jnp.sum(eta * eta, -1) + na2 * nc2) / (3.0 * jnp.cbrt(e_bar) ** 4), jnp.nan
        ),
        a2_out=jnp.sum(a * x > 0, -1),  # #i with a_i b_i c > 0
        a2_in=jnp.sum(c * y > 0, -1),  # #i with c_i aᵀ bⁱ > 0
    )


def _pair_counts(alpha, gamma, log_r, q, p, d1, d2):
    """Assumption 2 (2) at one recorded time of one start: O(m²).

    ⟨a_i b_i, a_j b_j⟩ = a_i a_j (bbᵀ)_ij with bbᵀ = aaᵀ − D1, ⟨c_i bⁱ, c_j bʲ⟩ = c_i c_j (bᵀb)_ij with
    bᵀb = ccᵀ + D2 (note, step 5). In scale-free units a = r Q α, D1 = r0² D̂1, so the sign of
    a_i a_j (bbᵀ)_ij is that of α_i α_j (e^{2ℓ} α_i α_j − D̂1_ij).
    """
    grow = jnp.exp(2.0 * log_r)
    a, c = q @ alpha, p @ gamma
    aa, cc = jnp.outer(a, a), jnp.outer(c, c)
    return jnp.sum(aa * (grow * aa - d1) > 0), jnp.sum(cc * (grow * cc + d2) > 0)


@jax.jit
def _pair_count_series(alpha, gamma, log_r, q, p, d1, d2):
    """Assumption 2 (2) counts at every recorded time (sequential per start: m² stays in cache)."""

    def per_start(x):
        al, ga, lr, q, p, d1, d2 = x
        return jax.lax.map(lambda y: _pair_counts(y[0], y[1], y[2], q, p, d1, d2), (al, ga, lr))

    return jax.lax.map(per_start, (alpha, gamma, log_r, q, p, d1, d2))


@jax.jit
def _final_stage_index(cond1, alpha, gamma, log_r, q, p, d1, d2):
    """First recorded index at which Assumption 2 holds; K if it never does by the last record.

    Proposition 2: once Assumption 2 holds it holds until T*, so the flag is monotone along the
    records and a binary search needs only O(log K) of the O(m²) pair checks.
    """
    m = alpha.shape[-1]
    k_total = alpha.shape[1]

    def holds(k, al, ga, lr, c1, q, p, d1, d2):
        n_out, n_in = _pair_counts(al[k], ga[k], lr[k], q, p, d1, d2)
        return c1[k] & (n_out == m * m) & (n_in == m * m)

    def per_start(x):
        al, ga, lr, c1, q, p, d1, d2 = x

        def step(_, lo_hi):
            lo, hi = lo_hi  # invariant: holds(hi) (or hi == K), not holds(j) for j < lo
            mid = (lo + hi) // 2
            ok = holds(mid, al, ga, lr, c1, q, p, d1, d2)
            return jnp.where(ok, lo, mid + 1), jnp.where(ok, mid, hi)

        last = holds(k_total - 1, al, ga, lr, c1, q, p, d1, d2)
        lo, hi = jax.lax.fori_loop(0, max(1, int(np.ceil(np.log2(k_total))) + 1), step, (0, k_total - 1))
        return jnp.where(last, hi, k_total)

    return jax.lax.map(per_start, (alpha, gamma, log_r, cond1, q, p, d1, d2))


@functools.partial(jax.jit, static_argnames=("fraction",))
def _reduced_final(alpha, xi, gamma, log_r, gamma_back, log_r_back, q, p, d1_hat, d2_hat, fraction):
    """Proposition 3 near T*, from the last recorded state of each start.

    * diverging (the index set C1 of (4.3)): c_i grows at least like r^f between an earlier record
      and the last one (f = 1/2, halfway between bounded, i ∈ C2, and growing like r, i ∈ C1);
    * min cos ξ_ij over i, j ∈ C1 (4.4), with cos ξ_ij = sign(c_i c_j) G_ij/√(G_ii G_jj), G = bᵀb;
    * ‖ȧ‖/‖a‖² (4.5) = ‖x‖/‖a‖²;
    * σ₁(b)²/‖b‖²_F, the share of the top singular direction (power iteration on bbᵀ from a).
    """

    def one(x):
        alpha, xi, gamma, log_r, gamma_back, log_r_back, q, p, d1, d2 = x
        grow = jnp.exp(2.0 * log_r)
        a, c, c_back = q @ alpha, p @ gamma, p @ gamma_back
        # c = r P γ, so log|c_i| grows by Δℓ + Δlog|(Pγ)_i|; C1 means that is ≥ f Δℓ
        # (components below 1e-6 of ‖c‖ are rounding-level and count as bounded)
        grows = jnp.log(jnp.abs(c)) - jnp.log(jnp.abs(c_back)) > -(1.0 - fraction) * (log_r - log_r_back)
        diverging = grows & (jnp.abs(c) > 1e-6 * jnp.linalg.norm(c))
        g = grow * jnp.outer(c, c) + d2
        dg = jnp.sqrt(jnp.clip(jnp.diag(g), 1e-300))
        cos_xi = jnp.sign(jnp.outer(c, c)) * g / jnp.outer(dg, dg)
        min_cos = jnp.min(jnp.where(jnp.outer(diverging, diverging), cos_xi, jnp.inf))

        def bbt(v):  # (aaᵀ − D1) v in scale-free units
            return grow * a * (a @ v) - d1 @ v

        def power(_, v):
            w = bbt(v)
            return w / jnp.linalg.norm(w)

        v = jax.lax.fori_loop(0, 12, power, a / jnp.linalg.norm(a))
        trace = grow * (a @ a) - jnp.trace(d1)
        return dict(
            frac_diverging=jnp.mean(diverging.astype(jnp.float64)),
            min_cos_xi=jnp.where(jnp.any(diverging), min_cos, jnp.nan),
            adot_over_a2=jnp.linalg.norm(xi) / jnp.vdot(alpha, alpha),
            b_top_share=(v @ bbt(v)) / trace,
        )

    return jax.lax.map(one, (alpha, xi, gamma, log_r, gamma_back, log_r_back, q, p, d1_hat, d2_hat))


# ---------------------------------------------------------------------------
# Public entry points


class BlowupResult(NamedTuple):
    """Per-run results (dict of (B,) arrays) and per-run series on the recorded τ grid."""

    runs: dict
    series: dict  # name -> (B, K) arrays, plus "tau" (K,)


def _as_batch(a, b, c):
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    if a.ndim == 1:
        a, b, c = a[None], b[None], c[None]
    return a, b, c


def assumption1(a, b, c, rounding: float = 64.0) -> np.ndarray:
    """Assumption 1 of the paper, to rounding: ‖a(0)‖ ≠ ‖c(0)‖ (3.12) and the non-degeneracy (3.13)."""
    a, b, c = _as_batch(a, b, c)
    eps = rounding * np.finfo(np.float64).eps
    na, nc = np.sum(a * a, 1), np.sum(c * c, 1)
    adot = np.sum(np.einsum("bij,bj->bi", b, c) ** 2, 1)
    cdot = np.sum(np.einsum("bji,bj->bi", b, a) ** 2, 1)
    unequal = np.abs(na - nc) > eps * (na + nc)
    k = np.where(na > nc, adot - cdot - nc * (nc - na), adot - cdot - na * (nc - na))  # (3.13)
    scale = adot + cdot + (na + nc) ** 2
    return unequal & (np.abs(k) > eps * scale)


THEORY_STATUSES = ("blowup", "no_blowup", "open")


def blowup_quantity(a, b, c) -> tuple[np.ndarray, np.ndarray]:
    """K = ‖ȧ(0)‖² − ‖ċ(0)‖² − min(‖a(0)‖², ‖c(0)‖²)(‖c(0)‖² − ‖a(0)‖²), (3.13)'s quantity for
    either sign of ‖a(0)‖ − ‖c(0)‖, and its scale ‖ȧ‖² + ‖ċ‖² + (‖a‖² + ‖c‖²)² (for rounding).

    It is the limit of ‖ȧ‖² − ‖ċ‖² along a solution with E ≤ 0 for ever (step 3 of the proof of
    Theorem 1: d/dt(‖ȧ‖² − ‖ċ‖²) = 2E(‖c‖² − ‖a‖²) with ‖c‖² − ‖a‖² conserved), and that limit
    must be 0 there; so K ≠ 0 means blow-up whatever E(0). The proof does not use (3.12): when
    ‖a(0)‖ = ‖c(0)‖ both norms tend to 0 together and ‖ȧ‖² − ‖ċ‖² = K is conserved.
    """
    a, b, c = _as_batch(a, b, c)
    na, nc = np.sum(a * a, 1), np.sum(c * c, 1)
    adot = np.sum(np.einsum("bij,bj->bi", b, c) ** 2, 1)
    cdot = np.sum(np.einsum("bji,bj->bi", b, a) ** 2, 1)
    return adot - cdot - np.minimum(na, nc) * (nc - na), adot + cdot + (na + nc) ** 2


def theory_status(a, b, c, rounding: float = 64.0, d_norms=None) -> np.ndarray:
    """What the mathematics decides about a three-layer start before any solve, per start:

    * ``blowup``: E(0) > 0 (Theorem 1, (3.15): T* ≤ E(0)^(−1/3)), or `blowup_quantity` K ≠ 0
      (Theorem 1's proof, which needs (3.13) only, not (3.12));
    * ``no_blowup``: balanced (aaᵀ = bbᵀ and bᵀb = ccᵀ, an invariant set: D1 and D2 are
      conserved, Prop. 1) with E(0) < 0, the paper's Example 1: there b = a wᵀ, c = −‖a‖ w and
      d‖a‖/dt = −‖a‖², so ‖a(t)‖ = ‖a(0)‖/(1 + ‖a(0)‖t) → 0 and E = −‖a‖³ → 0⁻;
    * ``open``: neither (E(0) ≤ 0, K = 0 and unbalanced: a set of measure zero); the solve decides.

    "= 0" is to `rounding` ulps of each quantity's scale: a start balanced to rounding is taken
    for the balanced start it rounds from. `d_norms`: (‖D1‖_F, ‖D2‖_F) per start when the caller
    has them (reduce_start computes D1, D2), else they are computed here (two m³ products a start).
    """
    a, b, c = _as_batch(a, b, c)
    eps = rounding * np.finfo(np.float64).eps
    e0 = np.einsum("bi,bij,bj->b", a, b, c)
    k, k_scale = blowup_quantity(a, b, c)
    na, nb, nc = np.sum(a * a, 1), np.sum(b * b, (1, 2)), np.sum(c * c, 1)
    if d_norms is None:
        bt = np.swapaxes(b, 1, 2)
        d_norms = (np.linalg.norm(a[:, :, None] * a[:, None, :] - b @ bt, axis=(1, 2)),
                   np.linalg.norm(bt @ b - c[:, :, None] * c[:, None, :], axis=(1, 2)))
    d1, d2 = d_norms
    balanced = (d1 <= eps * (na + nb)) & (d2 <= eps * (nb + nc))
    out = np.full(len(a), "open", dtype=object)
    out[(e0 > 0) | (np.abs(k) > eps * k_scale)] = "blowup"
    out[balanced & (e0 < 0)] = "no_blowup"
    return out


def _hermite_inverse(tau, q, dq, targets):
    """τ at which the monotone q(τ) reaches each target, per start, by cubic Hermite interpolation
    of the records (q and its exact τ-derivative dq). NaN where a target lies outside the records.

    tau (K,), q and dq (B, K), targets (T,) -> (B, T).
    """
    n = q.shape[0]
    out = np.full((n, len(targets)), np.nan)
    for i in range(n):
        qi = np.maximum.accumulate(np.where(np.isfinite(q[i]), q[i], -np.inf))
        k = np.searchsorted(qi, targets, side="right") - 1
        inside = (k >= 0) & (k < len(tau) - 1) & np.isfinite(qi[np.clip(k, 0, len(tau) - 1)])
        exact_end = targets == qi[-1]
        k = np.clip(k, 0, len(tau) - 2)
        h = tau[k + 1] - tau[k]
        q0, q1, d0, d1 = qi[k], qi[k + 1], dq[i, k] * h, dq[i, k + 1] * h
        lo, hi = np.zeros(len(targets)), np.ones(len(targets))
        for _ in range(60):  # bisection on the Hermite cubic (monotone between records)
            x = 0.5 * (lo + hi)
            h00, h10, h01, h11 = 2 * x**3 - 3 * x**2 + 1, x**3 - 2 * x**2 + x, -2 * x**3 + 3 * x**2, x**3 - x**2
            below = h00 * q0 + h10 * d0 + h01 * q1 + h11 * d1 < targets
            lo, hi = np.where(below, x, lo), np.where(below, hi, x)
        out[i] = np.where(inside, tau[k] + 0.5 * (lo + hi) * h, np.where(exact_end, tau[-1], np.nan))
    return out


def _grid_quantity(ys, r0, which: str):
    """q = t or E on the records, with its exact τ-derivative, from reduced states (B, K, …)."""
    alpha, xi, gamma, eta, log_r, tt = ys
    r = r0[:, None] * np.exp(log_r)
    if which == "t":
        return tt / r0[:, None], 1.0 / r  # dt/dτ = 1/r
    e = np.einsum("bki,bki->bk", alpha, xi) * r**3
    sq = lambda v: np.einsum("bki,bki->bk", v, v)
    # dE/dτ = Ė / r with Ė = ‖ȧ‖² + ‖ċ‖² + ‖a‖²‖c‖² (3.14), in scale-free units r⁴(‖ξ‖² + ‖η‖² + ‖α‖²‖γ‖²)
    return e, r**3 * (sq(xi) + sq(eta) + sq(alpha) * sq(gamma))


def _resample(start, args, ys, taus, options: SolverOptions):
    """Re-solve from τ = 0, saving where t (or E) reaches the user's grid; rows the run never
    reaches are masked. Returns the new states (B, T, …), their τ (B, T) and the validity mask."""
    which, targets = ("t", options.series_t) if options.series_t is not None else ("E", options.series_E)
    targets = np.sort(np.asarray(targets, dtype=np.float64))
    q, dq = _grid_quantity(ys, start.r0, which)
    tau_k = _hermite_inverse(taus, q, dq, targets)
    valid = np.isfinite(tau_k)
    below = targets[None, :] < q[:, :1]  # unreachable low targets sit at τ = 0, high ones at τ_end
    save = np.where(valid, tau_k, np.where(below, 0.0, taus[-1]))
    solve = _segment_solver(_reduced_field, options, per_start_saves=True)
    target = np.broadcast_to(targets, save.shape)
    for _ in range(4):  # Newton polish with the exact dq/dτ at the saved states: quadratic convergence
        save = np.maximum.accumulate(np.clip(save, 0.0, taus[-1]), axis=1)
        ys2 = jax.tree_util.tree_map(np.asarray, solve(start.y0, args, 0.0, float(taus[-1]), jnp.asarray(save))[0])
        q2, dq2 = _grid_quantity(ys2, start.r0, which)
        miss = np.where(valid, (target - q2) / dq2, 0.0)
        if np.all(np.abs(np.where(valid, target - q2, 0.0)) <= 1e-10 * np.maximum(np.abs(target), 1e-300)):
            break
        save = save + miss
    return ys2, save, valid, which, target


def solve_three_layer(a, b, c, options: SolverOptions = SolverOptions(), workers: int | None = None) -> BlowupResult:
    """Blow-up of the three-layer effective ODE (3.10) from explicit starts, batched or not.

    a: (B, m) or (m,), b: (B, m, m) or (m, m), c: (B, m) or (m,). Uses the reduced form.
    Returns per-run `t_star`, `E0`, `status`, `t_star_thm1_bound`, `t_final_stage`, the
    Proposition 3 diagnostics, and the series on the recorded τ grid.
    """
    enable_dtype("float64")  # the effective ODE needs float64 (blow-up); on import nothing changes
    a, b, c = _as_batch(a, b, c)
    start = reduce_start(a, b, c, workers)
    # A start whose reduction is not finite (e.g. ‖θ0‖² overflows) is solved as a stand-in copy of
    # a good start and reported `nonfinite`, so it cannot take its chunk down (shared steps would).
    broken = ~np.isfinite(start.r0) | ~np.all(
        [np.all(np.isfinite(v.reshape(len(a), -1)), 1) for v in jax.tree_util.tree_leaves(start)], 0
    )
    if broken.any() and not broken.all():
        good = int(np.argmin(broken))
        start = jax.tree_util.tree_map(lambda v: np.where(broken.reshape((-1,) + (1,) * (v.ndim - 1)), v[good], v), start)

    def t_and_energy(ys):
        alpha, xi, _, _, log_r, tt = ys
        e_bar = np.einsum("bki,bki->bk", alpha, xi)
        r0 = start.r0[:, None]
        return tt / r0, e_bar * (r0 * np.exp(log_r)) ** 3

    args = (start.lam_hat, start.mu_hat)
    r2 = start.r0 * start.r0
    verdict = theory_status(a, b, c, d_norms=(np.linalg.norm(start.d1_hat, axis=(1, 2)) * r2,
                                              np.linalg.norm(start.d2_hat, axis=(1, 2)) * r2))
    ys, taus, steps, ok, hit_max, converged = _run_segments(
        _reduced_field, start.y0, args, t_and_energy, options, 3, decided=verdict == "no_blowup"
    )
    diag = _reduced_diagnostics(ys, start.q, start.p, start.r0, start.lam_hat)
    series = {k: np.asarray(v) for k, v in diag.items()}
    m = a.shape[1]
    alpha, xi, gamma, _, log_r, _ = ys
    geometry = (start.q, start.p, start.d1_hat, start.d2_hat)
    cond1 = (series["a2_out"] == m) & (series["a2_in"] == m)
    k_fs = np.asarray(_final_stage_index(cond1, alpha, gamma, log_r, *geometry))
    series["final_stage"] = np.arange(len(taus))[None, :] >= k_fs[:, None]
    if options.record_pairs:
        pairs = _pair_count_series(alpha, gamma, log_r, *geometry)
        series["a2_out_pairs"], series["a2_in_pairs"] = (np.asarray(v) for v in pairs)
    if options.series_t is not None or options.series_E is not None:
        ys2, tau2, valid, which, target = _resample(start, args, ys, taus, options)
        t_fs = _first_time_holding(series["final_stage"], series["t"])
        run_series = series
        series = {k: np.asarray(v) for k, v in _reduced_diagnostics(ys2, start.q, start.p, start.r0, start.lam_hat).items()}
        series["final_stage"] = series["t"] >= t_fs[:, None]  # NaN t_fs: never
        if options.record_pairs:
            pairs = _pair_count_series(ys2[0], ys2[2], ys2[4], *geometry)
            series["a2_out_pairs"], series["a2_in_pairs"] = (np.asarray(v) for v in pairs)
        series[f"{which}_target"], series["valid"] = target, valid
    else:
        run_series, tau2 = series, taus
    back = np.searchsorted(taus, taus[-1] - options.converge_window)
    final = _reduced_final(
        alpha[:, -1], xi[:, -1], gamma[:, -1], log_r[:, -1], gamma[:, back], log_r[:, back], *geometry,
        options.diverged_fraction,
    )
    runs = _summarise(run_series, taus, steps, ok & ~broken, hit_max, converged, assumption1(a, b, c), 3, options, verdict)
    runs.update({k: np.asarray(v) for k, v in final.items()})
    runs["width"] = np.full(len(a), m)
    series["tau"] = tau2
    _add_brackets(series)
    if broken.any():  # nothing of a stand-in survives
        for k in ("t_star", "E0", "t_final_stage", "frac_diverging", "min_cos_xi", "adot_over_a2", "b_top_share"):
            runs[k] = np.where(broken, np.nan, runs[k].astype(np.float64))
        for k, v in series.items():
            if np.ndim(v) == 2 and v.dtype.kind == "f":
                series[k] = np.where(broken[:, None], np.nan, v)
    return BlowupResult(runs, series)


def _summarise(series, taus, steps, ok, hit_max, converged, assumption_1, depth, options, verdict=None):
    """Per-run table from the series: T*, status, bounds, final-stage time.

    `verdict` (theory_status, or "open" for every start) is what the mathematics decides; the rest
    is decided by the solve: ``blowup`` where T* converged, ``max_steps`` where it did not."""
    t, e = series["t"], series["energy"]
    est = _tail_tstar(t, e, depth)
    e0 = e[:, 0]
    finite = np.all(np.isfinite(t), 1) & np.all(np.isfinite(e), 1)
    if verdict is None:
        verdict = np.full(len(e0), "no_blowup" if depth == 2 else "open", dtype=object)
    status = np.full(len(e0), "blowup", dtype=object)
    status[~converged] = "max_steps"
    status[verdict == "no_blowup"] = "no_blowup"
    status[~finite | (~ok & ~hit_max)] = "nonfinite"
    t_star = np.where(status == "blowup", est[:, -1], np.where(status == "no_blowup", np.inf, np.nan))
    runs = dict(
        E0=e0,
        t_star=t_star,
        t_star_thm1_bound=theory.thm1_upper_bound(e0) if depth == 3 else np.full(len(e0), np.nan),
        status=status,
        theory_status=np.asarray(verdict, dtype=object),
        assumption1=assumption_1,
        tau_end=np.full(len(e0), taus[-1]),
        num_steps=steps,
        growth_log=np.log(np.sqrt(series["norm_a2"][:, -1] + series["norm_b2"][:, -1] + series["norm_c2"][:, -1]))
        - np.log(np.sqrt(series["norm_a2"][:, 0] + series["norm_b2"][:, 0] + series["norm_c2"][:, 0])),
    )
    if "final_stage" in series:
        runs["t_final_stage"] = _first_time_holding(series["final_stage"], t)
    return runs


def _first_time_holding(flag: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Earliest recorded t from which `flag` holds at every later record (NaN if never)."""
    holds_after = np.flip(np.logical_and.accumulate(np.flip(flag, 1), 1), 1)
    first = np.argmax(holds_after, 1)
    return np.where(holds_after.any(1), t[np.arange(len(t)), first], np.nan)


def _add_brackets(series):
    """Running bracket of T*, both ends proved at every record: `tstar_upper` = t + E^(−1/3)
    (Theorem 1 from t, where E(t) > 0) and `tstar_lower` = t + √3/‖θ(t)‖ (theory.norm_running_lower);
    and `tstar_thm2_estimate` = t + E^(−1/3)/C(t) with the running angle ζ(t) in Theorem 2's
    constant once the final stage holds: an estimate, not a bound (the theorem needs a uniform
    angle bound from a later time T₃ on)."""
    t = series["t"]
    series["tstar_upper"] = theory.thm1_running_upper(t, series["energy"])
    series["tstar_lower"] = theory.norm_running_lower(t, series["norm_a2"] + series["norm_b2"] + series["norm_c2"])
    estimate = theory.thm2_running_estimate(t, series["energy"], series["cos_zeta"])
    series["tstar_thm2_estimate"] = np.where(series.get("final_stage", True), estimate, np.nan)


# ---------------------------------------------------------------------------
# Full (a, W_{L-1}, …, W_2, c) form: any depth, and the independent check of the reduced form


def _full_field(energy_fn: Callable, degree: int) -> Callable:
    """Projective-time field of the gradient ascent of `energy_fn(params, args)`."""

    def f(tau, y, args):
        u, log_r, _ = y
        return effective.projective_rhs(u, jax.grad(energy_fn)(u, args), log_r, degree)

    return f


def _deep_energy(params, _args):
    return effective.deep_energy(params)


def _sensing_energy(params, lam):
    return effective.sensing_energy(*params, lam)


@functools.cache
def _full_field_cached(kind: str, degree: int) -> Callable:
    return _full_field(_deep_energy if kind == "deep" else _sensing_energy, degree)


@functools.cache
def _batched_energy(kind: str) -> Callable:
    """E(u) on saved states (B, K, …), compiled once per kind."""
    if kind == "deep":
        return jax.jit(jax.vmap(jax.vmap(_deep_energy, in_axes=(0, None)), in_axes=(0, None)))
    return jax.jit(jax.vmap(jax.vmap(_sensing_energy, in_axes=(0, None)), in_axes=(0, 0)))


def _solve_full(params, kind: str, degree: int, args, options: SolverOptions, decided=None):
    """Full-form solve of batched params (leading axis B) in projective time."""
    enable_dtype("float64")  # the effective ODE needs float64 (blow-up); on import nothing changes
    r0 = np.sqrt(sum(np.sum(p * p, axis=tuple(range(1, p.ndim))) for p in params))
    u0 = tuple(p / r0.reshape((-1,) + (1,) * (p.ndim - 1)) for p in params)
    zeros = np.zeros_like(r0)
    batched_energy = _batched_energy(kind)

    def t_and_energy(ys):
        u, log_r, tt = ys
        eu = np.asarray(batched_energy(u, args))
        return tt / r0[:, None] ** (degree - 2), eu * (r0[:, None] * np.exp(log_r)) ** degree

    ys, taus, steps, ok, hit_max, converged = _run_segments(
        _full_field_cached(kind, degree), ((u0, zeros, zeros)), args, t_and_energy, options, degree, decided
    )
    u, log_r, _ = ys
    t, e = t_and_energy(ys)
    growth = np.exp(2 * log_r) * (r0[:, None] ** 2)
    norms = [growth * np.sum(ui**2, axis=tuple(range(2, ui.ndim))) for ui in u]
    series = dict(t=t, energy=e, tau=taus, norm_a2=norms[0], norm_c2=norms[-1])
    series["norm_b2"] = sum(norms[1:-1]) if len(norms) > 2 else np.zeros_like(e)
    final_theta = tuple(v[:, -1] * np.sqrt(growth[:, -1]).reshape((-1,) + (1,) * (v.ndim - 2)) for v in u)
    return series, taus, steps, ok, hit_max, converged, final_theta


def solve_deep(params, options: SolverOptions = SolverOptions()) -> BlowupResult:
    """Blow-up of E = aᵀ W_{L−1} ⋯ W_2 c under gradient ascent, full form, any depth L ≥ 2.

    params: sequence (a (B,m), W_{L−1} (B,m,m), …, W_2, c (B,m)), or the same without the batch axis.
    L = 2 is linear (exponential growth, `no_blowup`); L = 3 is (3.10); L ≥ 4 blows up faster.
    Also the independent cross-check of the reduced three-layer solve.
    """
    params = [np.asarray(p, dtype=np.float64) for p in params]
    if params[0].ndim == 1:
        params = [p[None] for p in params]
    depth = len(params)
    a1 = assumption1(*params) if depth == 3 else np.ones(len(params[0]), bool)
    # depth 3: theory_status; depth 2 is linear (exponential growth, no blow-up); for L ≥ 4 the
    # paper proves nothing, so the solve decides
    n = len(params[0])
    verdict = theory_status(*params) if depth == 3 else np.full(n, "no_blowup" if depth == 2 else "open", dtype=object)
    series, taus, steps, ok, hit_max, converged, final = _solve_full(params, "deep", depth, None, options, verdict == "no_blowup")
    runs = _summarise(series, taus, steps, ok, hit_max, converged, a1, depth, options, verdict)
    runs["width"] = np.full(len(params[0]), params[0].shape[1])
    runs["depth"] = np.full(len(params[0]), depth)
    series["final_theta"] = final
    return BlowupResult(runs, series)


def solve_sensing(a, b, c, lam, options: SolverOptions = SolverOptions()) -> BlowupResult:
    """Blow-up of the matrix-sensing effective dynamics (A.8), energy E = Σ λ_i a_iᵀ b c_i (A.9).

    a: (B, m, m) with rows a_i (W̃^[3]ᵀ columns), b: (B, m, m), c: (B, m, m) with columns c_i,
    lam: (B, m) eigenvalues of V = (1/n) Σ y_i X_i. The energy is cubic, so T* follows as for L = 3.
    """
    a, b, c, lam = (np.asarray(v, dtype=np.float64) for v in (a, b, c, lam))
    if a.ndim == 2:
        a, b, c, lam = a[None], b[None], c[None], lam[None]
    # Scaling λ by κ is scaling time by 1/κ (and E by κ): solve with λ/max|λ|, then scale back.
    kappa = np.max(np.abs(lam), axis=1)
    kappa = np.where(kappa > 0, kappa, 1.0)
    series, taus, steps, ok, hit_max, converged, final = _solve_full(
        (a, b, c), "sensing", 3, lam / kappa[:, None], options
    )
    runs = _summarise(series, taus, steps, ok, hit_max, converged, np.ones(len(a), bool), 3, options)
    runs["t_star"], runs["E0"] = runs["t_star"] / kappa, runs["E0"] * kappa
    series["t"] = series["t"] / kappa[:, None]
    series["energy"] = series["energy"] * kappa[:, None]
    runs["t_star_thm1_bound"] = np.full(len(a), np.nan)  # Theorem 1 is proved for (3.10), not (A.8)
    runs["width"] = np.full(len(a), a.shape[1])
    series["final_theta"] = final
    return BlowupResult(runs, series)


def balanced_rank_one(s: float, u: np.ndarray, w: np.ndarray):
    """a = s u, b = s u wᵀ, c = s w (unit u, w): E' = 3E^{4/3} exactly, so T* = E0^{−1/3}."""
    return s * u, s * np.outer(u, w), s * w


def example1():
    """The paper's Example 1: ‖a(0)‖ = ‖c(0)‖, balanced, E(0) = −1 < 0; E → 0⁻, no blow-up."""
    return np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([-1.0, 0.0])


# ---------------------------------------------------------------------------
# Chunked driver and long-format tables


SERIES_COLUMNS = (
    "tau", "t", "energy", "norm_a2", "norm_b2", "norm_c2", "cos_zeta", "thm2_rate", "a2_out", "a2_in",
    "a2_out_pairs", "a2_in_pairs", "final_stage", "tstar_lower", "tstar_upper", "tstar_thm2_estimate", "t_target",
    "E_target",
)


def series_frame(result: BlowupResult, run_ids: np.ndarray):
    """Long-format series (one row per run and recorded τ) as a pandas DataFrame."""
    import pandas as pd

    s = result.series
    n, k = s["t"].shape
    cols = {"run_id": np.repeat(run_ids, k)}
    for name in SERIES_COLUMNS:
        if name in s:
            cols[name] = np.broadcast_to(s[name], (n, k)).reshape(-1)
    frame = pd.DataFrame(cols)
    if "valid" in s:  # records on a t or E grid that the run never reached
        frame = frame[np.asarray(s["valid"]).reshape(-1)].reset_index(drop=True)
    return frame


def bytes_per_start(width: int, depth: int = 3) -> float:
    """Working set of one start in a chunk (see auto_chunk_size)."""
    if depth == 3:
        return 8.0 * (20 * width * width + 200 * (4 * width + 2))
    return 8.0 * 200 * ((depth - 2) * width * width + 2 * width)


def auto_chunk_size(width: int, depth: int = 3, budget_bytes: float = 256e6) -> int:
    """Starts per chunk so that one chunk's working set stays near `budget_bytes`.

    Measured at m = 200 (benchmarks/ode_vs_scipy.py --memory): about 7 MiB per start for the
    reduced solve, i.e. ~20 float64 copies of the m×m matrices (Q, P, D1, D2 on host and device)
    plus the records; the full form holds (L − 2) m² per record. A power of two in [8, 1024].
    """
    n = int(budget_bytes // bytes_per_start(width, depth))
    return int(min(1024, max(8, 2 ** max(0, n.bit_length() - 1))))


def chunk_ranges(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """[lo, hi) of each fixed-size chunk of n items (the last one shorter)."""
    return [(lo, min(lo + chunk_size, n)) for lo in range(0, n, chunk_size)]


def solve_range(solve_one: Callable, arrays: list, lo: int, hi: int, chunk_size: int) -> BlowupResult:
    """`solve_one` on rows [lo, hi) of `arrays`, padded to `chunk_size` rows by repeating the first
    (so one compiled shape serves every chunk); the padding is dropped from the result."""
    res = solve_one(*(pad_rows(v[lo:hi], chunk_size) for v in arrays))
    keep = hi - lo
    runs = {k: np.asarray(v)[:keep] for k, v in res.runs.items()}
    series = {k: (v[:keep] if np.ndim(v) == 2 else v) for k, v in res.series.items() if k != "final_theta"}
    return BlowupResult(runs, series)
