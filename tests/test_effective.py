"""The effective vector fields and closed-form bounds, checked against the mathematics.

Pure-function tests (no blow-up solves): gradient structure (3.10), (A.8), the energy identity (3.14),
the conservation laws of Proposition 1, the projective-time and reduced right-hand sides (chain rule
against the full field along an independently integrated trajectory), and the bounds of Theorems 1-2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference
from hypothesis import given, settings
from hypothesis import strategies as st

from condense_jax.ode import blowup, effective, theory

M = 6


def _rel(x, y):
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300)


def _start(seed, m=M, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(m), scale * rng.standard_normal((m, m)), scale * rng.standard_normal(m))


# ---------------------------------------------------------------------------
# Three-layer effective field (3.8)-(3.14)


@pytest.mark.parametrize("seed", [0, 1])
def test_vector_field_is_gradient_ascent_of_energy(seed):
    a, b, c = _start(seed)
    grads = jax.grad(effective.energy, argnums=(0, 1, 2))(a, b, c)
    field = effective.vector_field(a, b, c)
    for g, f in zip(grads, field):
        assert np.asarray(f).dtype == np.float64
        assert _rel(f, g) < 1e-13
    # and the written-out field of (3.10)
    for f, r in zip(field, reference.three_layer_field(a, b, c)):
        assert _rel(f, r) < 1e-13
    assert float(effective.energy(a, b, c)) == pytest.approx(float(a @ b @ c), rel=1e-13)


@pytest.mark.parametrize("seed", [0, 1])
def test_energy_rate_is_derivative_of_energy_along_field(seed):
    a, b, c = _start(seed)
    field = effective.vector_field(a, b, c)
    _, de = jax.jvp(effective.energy, (a, b, c), field)
    rate = effective.energy_rate(a, b, c)
    assert float(rate) == pytest.approx(float(de), rel=1e-12)
    # (3.14) written out
    adot, _, cdot = reference.three_layer_field(a, b, c)
    assert float(rate) == pytest.approx(adot @ adot + cdot @ cdot + (a @ a) * (c @ c), rel=1e-12)


_energy_and_rate = jax.jit(lambda a, b, c: (effective.energy(a, b, c), effective.energy_rate(a, b, c)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), log_scale=st.floats(-3, 3))
def test_energy_rate_dominates_three_e_four_thirds(seed, log_scale):
    """E' ≥ 0 always and E' ≥ 3 E^{4/3} when E > 0 (AM-GM with E = a·ȧ = c·ċ): the step behind Theorem 1."""
    a, b, c = _start(seed, m=4, scale=10.0**log_scale)
    e, rate = (float(v) for v in _energy_and_rate(a, b, c))
    assert rate >= 0.0
    if e > 0:
        assert rate >= 3.0 * e ** (4.0 / 3.0) * (1 - 1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_conservation_laws_have_zero_time_derivative(seed):
    """Proposition 1: d/dt (a aᵀ − b bᵀ) = d/dt (bᵀ b − c cᵀ) = 0 along (3.10), exactly (to rounding)."""
    a, b, c = _start(seed)
    field = effective.vector_field(a, b, c)
    _, (dd1, dd2) = jax.jvp(effective.conserved, (a, b, c), field)
    scale = float(effective.energy_rate(a, b, c))
    assert np.max(np.abs(dd1)) < 1e-13 * scale
    assert np.max(np.abs(dd2)) < 1e-13 * scale
    d1, d2 = effective.conserved(a, b, c)
    np.testing.assert_allclose(d1, np.outer(a, a) - b @ b.T, rtol=0, atol=1e-13 * np.sum(b * b))
    np.testing.assert_allclose(d2, b.T @ b - np.outer(c, c), rtol=0, atol=1e-13 * np.sum(b * b))
    assert float(jnp.trace(d1) + jnp.trace(d2)) == pytest.approx(a @ a - c @ c, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------
# Depth L


@pytest.mark.parametrize("seed", [0, 1])
def test_deep_field_at_depth_three_is_the_three_layer_field(seed):
    a, b, c = _start(seed)
    assert float(effective.deep_energy((a, b, c))) == pytest.approx(float(effective.energy(a, b, c)), rel=1e-13)
    for f, g in zip(effective.deep_vector_field((a, b, c)), effective.vector_field(a, b, c)):
        assert _rel(f, g) < 1e-13


@pytest.mark.parametrize("depth", [2, 4, 5])
def test_deep_field_matches_hand_written_gradient(depth):
    rng = np.random.default_rng(depth)
    params = [rng.standard_normal(M)] + [rng.standard_normal((M, M)) for _ in range(depth - 2)] + [rng.standard_normal(M)]
    assert float(effective.deep_energy(tuple(params))) == pytest.approx(reference.deep_energy(params), rel=1e-12)
    for f, g in zip(effective.deep_vector_field(params), reference.deep_field(params)):
        assert _rel(f, g) < 1e-12
    # Euler: ⟨θ, ∇E⟩ = L·E for an energy homogeneous of degree L
    euler = sum(float(np.vdot(p, f)) for p, f in zip(params, effective.deep_vector_field(params)))
    assert euler == pytest.approx(depth * reference.deep_energy(params), rel=1e-11)


# ---------------------------------------------------------------------------
# Matrix sensing (A.8)-(A.9)


def _sensing_start(seed, m=4):
    rng = np.random.default_rng(seed)
    lam = rng.standard_normal(m)
    return rng.standard_normal((m, m)), rng.standard_normal((m, m)), rng.standard_normal((m, m)), lam


@pytest.mark.parametrize("seed", [0, 1])
def test_sensing_field_is_gradient_of_sensing_energy(seed):
    a, b, c, lam = _sensing_start(seed)
    assert float(effective.sensing_energy(a, b, c, lam)) == pytest.approx(reference.sensing_energy(a, b, c, lam), rel=1e-12)
    grads = jax.grad(effective.sensing_energy, argnums=(0, 1, 2))(a, b, c, lam)
    field = effective.sensing_vector_field(a, b, c, lam)
    for f, g, r in zip(field, grads, reference.sensing_field(a, b, c, lam)):
        assert _rel(f, g) < 1e-13
        assert _rel(f, r) < 1e-13


def test_sensing_with_one_nonzero_eigenvalue_is_the_three_layer_model():
    """λ = e_1: only a_1 (row 0), b and c_1 (column 0) interact, through (3.10)."""
    a, b, c, _ = _sensing_start(3)
    lam = np.zeros(len(a))
    lam[0] = 1.0
    assert float(effective.sensing_energy(a, b, c, lam)) == pytest.approx(float(effective.energy(a[0], b, c[:, 0])), rel=1e-13)
    da, db, dc = effective.sensing_vector_field(a, b, c, lam)
    fa, fb, fc = effective.vector_field(a[0], b, c[:, 0])
    assert _rel(da[0], fa) < 1e-13 and _rel(db, fb) < 1e-13 and _rel(dc[:, 0], fc) < 1e-13
    assert np.all(np.asarray(da[1:]) == 0) and np.all(np.asarray(dc[:, 1:]) == 0)


# ---------------------------------------------------------------------------
# Projective time and the reduced form


@pytest.mark.parametrize("depth", [3, 4])
def test_projective_rhs_is_the_flow_in_projective_time(depth):
    """θ = r u, dτ = r^{L−2} dt: r du/dτ + θ d(log r)/dτ must equal dθ/dt · dt/dτ = ∇E(θ) r^{−(L−2)}."""
    rng = np.random.default_rng(10 + depth)
    theta = [rng.standard_normal(M)] + [rng.standard_normal((M, M)) for _ in range(depth - 2)] + [rng.standard_normal(M)]
    r = np.sqrt(sum(np.sum(p * p) for p in theta))
    log_r = np.log(r)
    u = tuple(p / r for p in theta)
    du, dlog_r, dt = effective.projective_rhs(u, effective.deep_vector_field(u), log_r, depth)
    assert float(dt) == pytest.approx(r ** (-(depth - 2)), rel=1e-13)
    assert float(dlog_r) == pytest.approx(depth * reference.deep_energy(list(u)), rel=1e-12)
    assert abs(sum(float(np.vdot(ui, di)) for ui, di in zip(u, du))) < 1e-13  # stays on the sphere
    field = reference.deep_field(theta)
    for di, fi, pi in zip(du, field, theta):
        lhs = r * np.asarray(di) + pi * float(dlog_r)
        assert _rel(lhs, fi * float(dt)) < 1e-12


@pytest.fixture(scope="module")
def later_point():
    """A start θ0 and the point θ1 = θ(t1) of the full flow (3.10), integrated independently by SciPy."""
    a, b, c = _start(7, m=5)
    r0 = np.sqrt(a @ a + np.sum(b * b) + c @ c)
    sol, shapes = reference.integrate(reference.three_layer_field, (a, b, c), stop_norm=4.0 * r0, t_end=100.0)
    assert sol.status == 1  # stopped at ‖θ‖ = 4‖θ0‖
    t1 = sol.t_events[0][0]
    a1, b1, c1 = reference._unpack(sol.y_events[0][0], shapes)
    return (a, b, c), (a1, b1, c1), t1


def test_reduce_start_reconstructs_the_start():
    a, b, c = _start(5, m=5)
    s = blowup.reduce_start(a[None], b[None], c[None])
    alpha, xi, gamma, eta, log_r, tt = (np.asarray(v)[0] for v in s.y0)
    r0 = s.r0[0]
    q, p = s.q[0], s.p[0]
    assert r0 == pytest.approx(np.sqrt(a @ a + np.sum(b * b) + c @ c), rel=1e-14)
    assert _rel(q @ alpha * r0, a) < 1e-13 and _rel(p @ gamma * r0, c) < 1e-13
    assert _rel(q @ xi * r0**2, b @ c) < 1e-13 and _rel(p @ eta * r0**2, b.T @ a) < 1e-13
    assert log_r == 0 and tt == 0
    d1, d2 = (np.asarray(v) for v in effective.conserved(a, b, c))
    assert _rel(q @ np.diag(s.lam_hat[0]) @ q.T * r0**2, d1) < 1e-12
    assert _rel(p @ np.diag(s.mu_hat[0]) @ p.T * r0**2, d2) < 1e-12


def test_reduced_rhs_is_the_full_flow_by_the_chain_rule(later_point):
    """At θ1 = θ(t1) on the true trajectory, reduced_rhs (built from θ0's D1, D2) must equal the τ-derivative
    (dτ = ‖θ‖ dt) of the reduced coordinates computed from the full field (3.10) by the chain rule."""
    (a, b, c), (a1, b1, c1), t1 = later_point
    s = blowup.reduce_start(a[None], b[None], c[None])
    q, p, r0 = s.q[0], s.p[0], s.r0[0]
    lam_hat, mu_hat = s.lam_hat[0], s.mu_hat[0]

    def reduced_coords(a, b, c, t):
        r = jnp.sqrt(a @ a + jnp.sum(b * b) + c @ c)
        return (q.T @ a / r, q.T @ (b @ c) / r**2, p.T @ c / r, p.T @ (b.T @ a) / r**2, jnp.log(r / r0), r0 * t)

    state = reduced_coords(a1, b1, c1, t1)
    r1 = np.sqrt(a1 @ a1 + np.sum(b1 * b1) + c1 @ c1)
    assert float(state[4]) == pytest.approx(np.log(4.0), rel=1e-10)
    field = effective.vector_field(a1, b1, c1)
    _, d_dt = jax.jvp(reduced_coords, (a1, b1, c1, t1), (*field, 1.0))
    expected = [np.asarray(v) / r1 for v in d_dt]  # d/dτ = (1/r) d/dt
    got = effective.reduced_rhs(state, lam_hat, mu_hat)
    for g, e in zip(got, expected):
        assert _rel(g, e) < 1e-9
    # ℓ' = 3Ē (dr²/dt = 6E) and T' = e^{−ℓ}
    assert float(got[4]) == pytest.approx(3.0 * (a1 @ b1 @ c1) / r1**3, rel=1e-12)
    assert float(got[5]) == pytest.approx(r0 / r1, rel=1e-12)


# ---------------------------------------------------------------------------
# Theorems 1 and 2 as closed forms (theory.py)


def test_thm2_constant_and_thm1_bound_values():
    assert float(theory.thm2_constant(1.0)) == pytest.approx(4.0 / 3.0, rel=1e-15)
    assert float(theory.thm2_constant(0.5)) == pytest.approx((4.0 / 3.0) * 0.5 ** (-4.0 / 3.0), rel=1e-14)
    assert np.isnan(theory.thm2_constant(0.0)) and np.isnan(theory.thm2_constant(-0.3))
    assert float(theory.thm1_upper_bound(8.0)) == pytest.approx(0.5, rel=1e-15)
    assert np.isnan(theory.thm1_upper_bound(0.0)) and np.isnan(theory.thm1_upper_bound(-1.0))


def test_bounds_on_the_exact_balanced_solution():
    """The balanced rank-one solution E(t) = (E0^{−1/3} − t)^{−3} solves E' = 3E^{4/3}: Theorem 1's envelope
    (3.15) and running bound are equalities on it, and Theorem 2's (C ≥ 4/3 > 1) lie on the right side."""
    e0 = 2.0
    t_star = e0 ** (-1.0 / 3.0)
    t = np.linspace(0.0, 0.999 * t_star, 50)
    e = (t_star - t) ** -3.0
    np.testing.assert_allclose(theory.thm1_running_upper(t, e), t_star, rtol=1e-12)
    np.testing.assert_allclose(theory.thm1_energy_lower_envelope(t, 0.0, e0), e, rtol=1e-10)
    c = float(theory.thm2_constant(1.0))
    estimate = theory.thm2_running_estimate(t, e, np.ones_like(t))
    np.testing.assert_allclose(estimate, t + (t_star - t) / c, rtol=1e-12)
    assert np.all(estimate <= t_star)
    # the norm bound is an equality on the balanced state: ‖a‖ = ‖b‖_F = ‖c‖ = s = E^{1/3}, ‖θ‖² = 3s²
    s = e ** (1.0 / 3.0)
    np.testing.assert_allclose(theory.norm_running_lower(t, 3 * s**2), t_star, rtol=1e-12)
    upper_env = theory.thm2_energy_upper_envelope(t, 0.0, e0, c)
    assert np.all(e <= upper_env * (1 + 1e-12))
    # the Theorem 2 envelope blows up at E0^{−1/3}/C, i.e. before the true T*
    assert np.isinf(theory.thm2_energy_upper_envelope(t_star / c * 1.0001, 0.0, e0, c))
